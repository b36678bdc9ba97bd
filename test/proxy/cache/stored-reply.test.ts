/**
 * A reply from the store (proxy/cache/stored-reply.ts): its list of fields is what answerFromStore
 * always made, and the head its HTTP/1.1 copy writes is byte for byte the one the list gives
 * (encodeResponseHead), for every framing case.
 */
import { describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { encodeResponseHead } from '../../../src/http1/response-encode.ts'
import { formatCacheStatus, withCacheStatus } from '../../../src/proxy/cache/reply.ts'
import { StoredReply } from '../../../src/proxy/cache/stored-reply.ts'

const ID = '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77'
const OURS = formatCacheStatus({ hit: true, ttlS: 57 })
const sameDate = (s: string) => s.replace(/\r\ndate: [^\r]*\r\n/, '\r\ndate: X\r\n')

const storedLists: [string, string][][] = [
  [['Server', 'nginx/1.22.1'], ['Date', 'Thu, 26 Nov 2026 04:04:47 GMT'], ['Content-Type', 'text/plain'], ['ETag', '"6b07-64"'], ['Cache-Control', 'public, max-age=3600']],
  [['content-type', 'text/html'], ['Age', '30'], ['Cache-Status', 'upstream; hit'], ['cache-status', 'cdn; fwd=miss'], ['X-Obs', 'caf\xe9']],
  [['Vary', 'Accept-Encoding'], ['X-Request-Id', 'upstream-own'], ['Content-Length', '99']],
  [],
]

/** answerFromStore's list as it was written before StoredReply: stored fields but three, ours after, then Cache-Status. */
function listBefore(stored: [string, string][], ageS: string, bodyLength: number | undefined, status: number): [string, string][] {
  const headers: [string, string][] = []
  for (const pair of stored) {
    const n = pair[0].toLowerCase()
    if (n !== 'age' && n !== 'content-length' && n !== 'x-request-id') headers.push(pair)
  }
  headers.push(['age', ageS])
  if (bodyLength !== undefined && status !== 204) headers.push(['content-length', String(bodyLength)])
  headers.push(['x-request-id', ID])
  return withCacheStatus(headers, { hit: true, ttlS: 57 })
}

describe('stored replies', () => {
  let n = 0
  for (const stored of storedLists) {
    n++
    for (const status of [200, 204, 404]) {
      for (const method of ['GET', 'HEAD']) {
        for (const minor of [0, 1]) {
          for (const close of [false, true]) {
            for (const whole of [true, false]) {
              test(`list ${n}, ${status}, ${method} 1.${minor} close=${close} ${whole ? 'whole' : 'stream'}`, () => {
                const body = whole ? Buffer.from('hello') : undefined
                const make = () => new StoredReply(status, '', stored, '12', 5, ID, OURS, null)
                expect(make().headers).toEqual(listBefore(stored, '12', 5, status))
                const copied = make().encodeHead(method, minor, close, body)
                const listed = encodeResponseHead({ status, statusText: '', headers: make().headers, method, minor, bodyLength: body?.byteLength, close }, body)
                expect(copied).toBeDefined()
                expect(sameDate(Buffer.from(copied!.bytes).toString('latin1'))).toBe(sameDate(Buffer.from(listed.bytes).toString('latin1')))
                expect(copied!.chunked).toBe(listed.chunked)
                expect(copied!.close).toBe(listed.close)
              })
            }
          }
        }
      }
    }
  }

  test('the list asked for (and maybe changed), or a stored Connection field: the list is used', () => {
    const a = new StoredReply(200, 'OK', storedLists[0]!, '0', 5, ID, OURS, null)
    a.headers.push(['x-added', '1'])
    expect(a.encodeHead('GET', 1, false, Buffer.from('hello'))).toBeUndefined()
    const b = new StoredReply(200, 'OK', [['Connection', 'close']], '0', 5, ID, OURS, null)
    expect(b.encodeHead('GET', 1, false, Buffer.from('hello'))).toBeUndefined()
  })
})
