/** checkRequest: the Host header and the target's authority, table-tested on Request objects. */
import { expect, test } from 'bun:test'
import { checkRequest } from '../../../src/proxy/downstream/request-checks.ts'
import { statusFor } from '../../../src/proxy/errors.ts'

const req = (url: string, host: string | undefined) => new Request(url, { headers: host === undefined ? {} : { host } })

test.each([
  ['http://a.example/x', 'a.example', undefined],
  ['http://a.example:8080/x?q=1', 'a.example:8080', undefined],
  ['http://a.example?q=1', 'a.example', undefined],
  ['http://a.example/x', 'A.Example', undefined], // case differs: still the same authority
  ['http://[::1]:8080/', '[::1]:8080', undefined],
  ['http://b.example/x', 'a.example', 400], // the target names another host
  ['http://a.example.evil/x', 'a.example', 400], // a prefix is not a match
  ['http://a.example:81/x', 'a.example', 400],
  ['http://a.example/x', 'a.example, b.example', 400], // two Host headers, joined
  ['http://a.example/x', 'a example', 400],
  ['http://a.example/x', 'user@a.example', 400],
] as const)('%s with Host %s', (url, host, status) => {
  expect((c => c && statusFor(c.code).status)(checkRequest(req(url, host)))).toBe(status)
})

test('a valid Host seen before does not skip the authority check, and an invalid one stays invalid', () => {
  expect(checkRequest(req('http://a.example/', 'a.example'))).toBeUndefined()
  expect(checkRequest(req('http://b.example/', 'a.example'))?.code).toBe('BAD_REQUEST')
  expect(checkRequest(req('http://a.example/', 'a..example, x'))?.code).toBe('BAD_REQUEST')
  expect(checkRequest(req('http://a.example/', 'a..example, x'))?.code).toBe('BAD_REQUEST')
})

// A Request as Deno.serve hands it over: url kept as the runtime built it, body null for GET.
const denoLike = (url: string, headers: Record<string, string>, body: ReadableStream | null = null) =>
  ({ method: 'GET', url, headers: new Headers({ host: 'a.example', ...headers }), body }) as unknown as Request

test('a target with a byte that is not visible ASCII is a 400 (RFC 9112 §3.2)', () => {
  expect(checkRequest(denoLike('http://a.example/caf\u00c3\u0192\u00c2\u00a9', {}))?.code).toBe('BAD_REQUEST')
  expect(checkRequest(denoLike('http://a.example/caf%C3%A9', {}))).toBeUndefined()
})

test('a GET whose body the runtime dropped is refused with 501; an empty Content-Length is fine', () => {
  expect(checkRequest(denoLike('http://a.example/', { 'content-length': '5' }))?.code).toBe('NOT_IMPLEMENTED')
  expect(checkRequest(denoLike('http://a.example/', { 'transfer-encoding': 'chunked' }))?.code).toBe('NOT_IMPLEMENTED')
  expect(checkRequest(denoLike('http://a.example/', { 'content-length': '0' }))).toBeUndefined()
  expect(checkRequest(denoLike('http://a.example/', { 'content-length': '5' }, new ReadableStream()))).toBeUndefined()
})

test('a backslash in the path is refused, one in the query is not (Deno.serve hands both over as they came)', () => {
  // A Request would normalize the URL as a WHATWG parser does; Deno.serve's does not, so its fields are given here.
  const raw = (url: string) => ({ method: 'GET', url, body: null, headers: new Headers({ host: 'a.example' }) }) as unknown as Request
  expect(checkRequest(raw('http://a.example/a\\..\\admin'))?.code).toBe('BAD_REQUEST')
  expect(checkRequest(raw('http://a.example/x?q=c:\\d'))).toBeUndefined()
})

test('a fragment in the target is refused, in the path or after the query (Deno.serve keeps it in req.url on HTTP/1.1: a route bypass, seventeenth round)', () => {
  const raw = (url: string) => ({ method: 'GET', url, body: null, headers: new Headers({ host: 'a.example' }) }) as unknown as Request
  const rejected = checkRequest(raw('http://a.example/dead/secret#/../../ng/x'))
  expect(rejected).toEqual({ code: 'BAD_REQUEST', reason: 'a request target cannot carry a fragment' })
  expect(checkRequest(raw('http://a.example/small?q=1#frag'))?.code).toBe('BAD_REQUEST')
  expect(checkRequest(raw('http://a.example/small?q=%23'))).toBeUndefined()
})

test('a head over max_header_size is 431 HEAD_TOO_LARGE (Deno.serve keeps a larger limit of its own); at the limit, or with no limit given, it passes', () => {
  const big = (valueBytes: number) => new Request('http://a.example/x', { headers: { host: 'a.example', 'x-big': 'v'.repeat(valueBytes) } })
  const rejected = checkRequest(big(20_000), 16_384)
  expect(rejected?.code).toBe('HEAD_TOO_LARGE')
  expect(statusFor(rejected!.code).status).toBe(431)
  expect(checkRequest(big(16_000), 16_384)).toBeUndefined()
  expect(checkRequest(big(20_000))).toBeUndefined()
  // Counted as sent: "GET /x HTTP/1.1", "host: a.example", "x-big: …" and the blank line; the URL's authority is not counted twice.
  const sent = (valueBytes: number) => 'GET /x HTTP/1.1\r\n'.length + 'host: a.example\r\n'.length + 'x-big: \r\n'.length + valueBytes + 2
  expect(checkRequest(big(16_000), sent(16_000))).toBeUndefined()
  expect(checkRequest(big(16_000), sent(16_000) - 1)?.code).toBe('HEAD_TOO_LARGE')
})
