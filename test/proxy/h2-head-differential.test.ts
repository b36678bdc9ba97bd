/**
 * An upstream's answer coded straight from its bytes (ForwardedReply.h2Head into the session's
 * HpackEncoder) must be byte for byte the block the field-list path codes (clientResponseHeaders,
 * withDateAndLength, responseFields, then HpackEncoder.encode), answer after answer on one
 * connection: generated heads whose values repeat, change and alternate, so that the encoder's
 * per-name last indexed value is hit, missed, evicted (small tables, the peer's table size
 * changing) and dropped with its maps (many distinct values).
 */
import { afterAll, beforeAll, describe, expect, setSystemTime, test } from 'bun:test'
import { parseResponseHead, type RawFields } from '../../src/http1/response-head.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { responseFields } from '../../src/http2/request.ts'
import { withDateAndLength } from '../../src/proxy/downstream/h2-client.ts'
import { ForwardedReply } from '../../src/proxy/forwarded-reply.ts'
import { clientResponseHeaders } from '../../src/proxy/headers.ts'
import { rng } from '../support/rng.ts'

const NAMES = [
  'Server', 'content-type', 'Content-Encoding', 'Cache-Control', 'Vary', 'Set-Cookie', 'ETag', 'Last-Modified', 'Age', 'Via',
  'Location', 'Link', 'Alt-Svc', 'Expires', 'Accept-Ranges', 'X-Frame-Options', 'X-Custom', 'x-trace', 'Keep-Alive',
  'Transfer-Encoding', 'Upgrade', 'X-Request-Id', 'Content-Language', 'Strict-Transport-Security', 'X-Listed',
]
const STATUSES = [200, 200, 200, 204, 206, 301, 304, 404, 500, 503, 203, 299, 418, 999]

function value(r: (n: number) => number, round: number): string {
  switch (r(6)) {
    case 0: return ''
    case 1: return `v${r(3)}`
    case 2: return `value-${round % 40}`
    case 3: return 'x'.repeat(200 + r(120))
    case 4: return String.fromCharCode(0x80 + r(0x7f), 0x41 + r(26), 0xff)
    default: return ['gzip', 'text/html; charset=utf-8', 'nginx/1.22.1', 'max-age=60', 'Accept-Encoding'][r(5)]!
  }
}

function head(r: (n: number) => number, round: number): string {
  const lines = [`HTTP/1.1 ${STATUSES[r(STATUSES.length)]} ${r(4) === 0 ? '' : 'Reason'}`.trimEnd()]
  const count = r(9)
  const date = `${['Date', 'date', 'DATE'][r(3)]}: Thu, 26 Nov 2026 04:0${r(3)}:47 GMT`
  const dateAt = r(count + 1)
  for (let i = 0; i < count; i++) {
    if (i === dateAt) lines.push(date)
    const name = NAMES[r(NAMES.length)]!
    const v = name === 'Transfer-Encoding' ? 'chunked' : value(r, round)
    lines.push(`${r(2) === 0 ? name : name.toUpperCase()}:${r(3) === 0 ? '' : ' '}${v}`)
  }
  if (dateAt === count) lines.push(date)
  if (r(4) === 0) lines.push(`Connection: ${['keep-alive', 'close, X-Listed', 'x-custom, Upgrade'][r(3)]}`)
  if (r(3) === 0) lines.push(`Content-Length: ${['5', '0', '5, 5', '1234567'][r(4)]}`)
  return lines.join('\r\n')
}

describe('h2Head codes the block the field-list path codes', () => {
  // Both paths add a Date to an answer without one: a second ending between the two codings
  // would make them differ (a flake, not a defect), so the clock stands still.
  beforeAll(() => setSystemTime(new Date('2026-11-26T04:00:47Z')))
  afterAll(() => setSystemTime())
  for (const seed of [1, 2, 3, 4]) {
    test(`3,000 generated answers on one connection (seed ${seed})`, () => {
      const r = rng(seed)
      const direct = new HpackEncoder(4096)
      const listed = new HpackEncoder(4096)
      let coded = 0
      for (let round = 0; round < 3000; round++) {
        // The peer's SETTINGS_HEADER_TABLE_SIZE now and then: entries evicted, a size update coded.
        if (r(200) === 0) {
          const size = [0, 64, 256, 4096][r(4)]!
          direct.setPeerTableSize(size)
          listed.setPeerTableSize(size)
        }
        const text = head(r, round)
        let parsed
        try {
          parsed = parseResponseHead(text, 'GET')
        } catch {
          // A head the proxy refuses (502) is never coded.
          continue
        }
        const id = r(3) === 0 ? 'client-id' : crypto.randomUUID()
        const keepLength = r(4) !== 0
        const whole = [undefined, 0, 5][r(3)]
        const reply = new ForwardedReply(parsed, parsed.raw as RawFields, id, keepLength, null)
        const fields = responseFields(parsed.status, withDateAndLength(clientResponseHeaders(parsed.headers, id, keepLength), whole))
        const a = Buffer.from(direct.encode(reply.h2Head(whole)!, 9)).toString('hex')
        const b = Buffer.from(listed.encode(fields, 9)).toString('hex')
        coded++
        if (a !== b) throw new Error(`answer ${round} differs:\n${JSON.stringify(text)}\n${a}\n${b}`)
      }
      expect(coded).toBeGreaterThan(2500)
      expect(direct.table.size).toBe(listed.table.size)
    })
  }
})
