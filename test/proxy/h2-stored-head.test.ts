/**
 * A stored answer's HTTP/2 head coded from its stored fields (StoredReply.h2Head into the
 * session's HpackEncoder) must be byte for byte the block the field-list path codes (the reply's
 * `headers`, withDateAndLength, responseFields, then HpackEncoder.encode), hit after hit on one
 * connection: stored lists reused and new, names in any case, fields HTTP/2 drops, Date there or
 * not, bodiless and 304 answers, the peer's table size changing.
 */
import { afterAll, beforeAll, describe, expect, setSystemTime, test } from 'bun:test'
import { StoredReply } from '../../src/proxy/cache/stored-reply.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { responseFields } from '../../src/http2/request.ts'
import { withDateAndLength } from '../../src/proxy/downstream/h2-client.ts'
import { rng } from '../support/rng.ts'

const NAMES = ['Server', 'content-type', 'Cache-Control', 'Vary', 'Set-Cookie', 'ETag', 'Last-Modified', 'Age', 'Content-Length', 'X-Request-Id', 'Cache-Status', 'Keep-Alive', 'TE', 'Upgrade', 'Proxy-Connection', 'Expires', 'X-Custom', 'Date', 'DATE']
const STATUSES = [200, 200, 200, 203, 204, 206, 304, 404, 410, 299]

function stored(r: (n: number) => number, round: number): [string, string][] {
  const out: [string, string][] = []
  for (let i = r(9); i > 0; i--) {
    const name = NAMES[r(NAMES.length)]!
    const v = [`v${r(3)}`, `value-${round % 30}`, 'text/html; charset=utf-8', 'x'.repeat(200 + r(100)), 'Thu, 26 Nov 2026 04:00:47 GMT', ''][r(6)]!
    out.push([r(2) === 0 ? name : name.toUpperCase(), v])
  }
  return out
}

describe('StoredReply.h2Head codes the block the field-list path codes', () => {
  // One second throughout: a Date added by both paths must be the same one (a second ending between them is no difference).
  beforeAll(() => setSystemTime(new Date('2026-11-26T04:00:47Z')))
  afterAll(() => setSystemTime())
  for (const seed of [1, 2, 3]) {
    test(`3,000 generated hits on one connection (seed ${seed})`, () => {
      const r = rng(seed)
      const direct = new HpackEncoder(4096)
      const listed = new HpackEncoder(4096)
      const pool: [string, string][][] = []
      let coded = 0
      for (let round = 0; round < 3000; round++) {
        if (r(200) === 0) {
          const size = [0, 64, 256, 4096][r(4)]!
          direct.setPeerTableSize(size)
          listed.setPeerTableSize(size)
        }
        // A stored list hit again (its coded parts kept), or a new one.
        const fields = pool.length > 0 && r(3) !== 0 ? pool[r(pool.length)]! : stored(r, round)
        if (pool.length < 20 && !pool.includes(fields)) pool.push(fields)
        const status = STATUSES[r(STATUSES.length)]!
        const ageS = String(r(5000))
        const bodyLength = [undefined, 0, 5, 1234][r(4)]
        const id = r(3) === 0 ? 'client-id' : crypto.randomUUID()
        const ours = ['proxy; hit; ttl=60', 'proxy; fwd=stale'][r(2)]!
        const whole = [undefined, 0, 5][r(3)]
        const reply = new StoredReply(status, 'Reason', fields, ageS, bodyLength, id, ours, null)
        const twin = new StoredReply(status, 'Reason', fields, ageS, bodyLength, id, ours, null)
        const head = reply.h2Head(whole)
        expect(head).toBeDefined()
        const a = Buffer.from(direct.encode(head!, 9)).toString('hex')
        const b = Buffer.from(listed.encode(responseFields(status, withDateAndLength(twin.headers, whole)), 9)).toString('hex')
        coded++
        if (a !== b) throw new Error(`hit ${round} differs:\n${JSON.stringify({ fields, status, bodyLength, whole })}\n${a}\n${b}`)
      }
      expect(coded).toBe(3000)
      expect(direct.table.size).toBe(listed.table.size)
    })
  }
  test('a stored Connection or Transfer-Encoding field, or the list asked for, keeps the list path', () => {
    for (const extra of [['Connection', 'x-custom'], ['Transfer-Encoding', 'chunked']] as [string, string][]) {
      expect(new StoredReply(200, 'OK', [['X-Custom', '1'], extra], '0', 5, 'id', 'proxy; hit', null).h2Head(5)).toBeUndefined()
    }
    const asked = new StoredReply(200, 'OK', [['X-Custom', '1']], '0', 5, 'id', 'proxy; hit', null)
    void asked.headers
    expect(asked.h2Head(5)).toBeUndefined()
  })
})
