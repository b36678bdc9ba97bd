/** toRequest (src/http2/request.ts): a request's fields as an HTTP/2 stream carries them, checked (RFC 9113 §8). */
import { expect, test } from 'bun:test'
import { toRequest } from '../../src/http2/request.ts'

const post = (contentLength: string) => toRequest(1, [':method', ':scheme', ':path', ':authority', 'content-length'], ['POST', 'https', '/', 'a.example', contentLength])

test('content-length is read by its value, leading zeros too, as in HTTP/1.1 (RFC 9110 §8.6; eighteenth round of review)', () => {
  expect(post('5').contentLength).toBe(5)
  expect(post('0000000000000005').contentLength).toBe(5)
  expect(post('0000000000000005').headers).toContainEqual(['content-length', '5'])
})

// A list is malformed on HTTP/2 even when its members agree (http2-downgrade.test.ts).
test.each(['', '+5', '0x5', '5.0', '1234567890123456', '5, 6', '5, 5'])('content-length %p is a malformed request', (value) => {
  expect(() => post(value)).toThrow('bad content-length')
})
