/**
 * The proxy's own answers (a 502 for a dead upstream, a 400 for a malformed head) are logged with
 * the body bytes they sent in `bytes_out`, as nginx's $body_bytes_sent counts its error pages; a
 * HEAD's answer sends none. Until the twenty-second session every such record said 0. A request
 * whose body the listener refuses (malformed chunked: 400; stalled: 408) logged the length of the
 * table's shorter reason (85 where 105 went out), until the twenty-sixth session.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { freePort, Harness, rawExchange, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})

test('a 502 and a listener\'s 400 log the body bytes sent; a HEAD\'s 502 logs 0', async () => {
  const dead = await freePort() // nothing listens there: 502 CONNECT_REFUSED
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${dead}`, retries: 0 } })
  const get = await fetch(`${proxy.url}/get`)
  const body = await get.arrayBuffer()
  expect(get.status).toBe(502)
  const head = await fetch(`${proxy.url}/head`, { method: 'HEAD' })
  expect(head.status).toBe(502)
  const raw = await rawExchange(proxy.port, 'GET /twice HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
  expect(raw).toStartWith('HTTP/1.1 400 ')
  const rawBody = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  expect(await waitFor(() => h.records.length === 3, 3000)).toBe(true)
  const by = (path: string) => h.records.find((r) => r.path === path)
  expect(by('/get')).toMatchObject({ status: 502, bytes_out: body.byteLength })
  expect(body.byteLength).toBeGreaterThan(0)
  expect(by('/head')).toMatchObject({ status: 502, bytes_out: 0 })
  expect(by('/twice')).toMatchObject({ status: 400, bytes_out: Buffer.byteLength(rawBody) })
})

test('a client gone mid-upload is logged 499 with bytes_out 0 (nothing was sent; it logged the 80 bytes of a reply never written)', async () => {
  // An origin that takes the upload and never answers: the client leaves first.
  const origin = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
  const gone = await new Promise<void>((resolve) => {
    const s = connect(proxy.port, '127.0.0.1', () => {
      s.write(`POST /gone HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(70000)}`)
      setTimeout(() => s.destroy(), 200)
    })
    s.on('error', () => {})
    s.on('close', () => resolve())
  })
  void gone
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  expect(h.records[0]).toMatchObject({ path: '/gone', status: 499, bytes_out: 0 })
})

test('the listener\'s 400 for a HEAD\'s malformed body sends no content (RFC 9110 §9.3.2), and logs 0', async () => {
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${await freePort()}` }, server: { listener: 'own' } })
  const reply = await rawExchange(proxy.port, 'HEAD /head-body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
  expect(reply).toStartWith('HTTP/1.1 400 ')
  expect(reply.slice(reply.indexOf('\r\n\r\n') + 4)).toBe('')
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  expect(h.records[0]).toMatchObject({ status: 400, bytes_out: 0 })
})

const BIG = 'x'.repeat(70_000) // past the 64 KiB read-ahead: the upstream exchange has begun when the body fails
test.each([
  ['malformed chunked', 'POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n', 400],
  ['stalled', 'POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', 408],
  ['malformed chunked (streamed)', `POST /bad-big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${BIG.length.toString(16)}\r\n${BIG}\r\nzz\r\n`, 400],
  ['stalled (streamed)', `POST /stall-big HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${BIG}`, 408],
] as const)('the listener\'s answer to a %s body is logged with the bytes it sent', async (_, request, status) => {
  // The origin reads the request and never answers.
  const origin = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own', client_body_timeout: '1s' } })
  const reply = await rawExchange(proxy.port, request)
  expect(reply).toStartWith(`HTTP/1.1 ${status} `)
  const body = reply.slice(reply.indexOf('\r\n\r\n') + 4)
  expect(body.length).toBeGreaterThan(0)
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  expect(h.records[0]).toMatchObject({ status, bytes_out: Buffer.byteLength(body) })
})

test.each([
  ['a head above max_header_size', `HEAD /a HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`, 431],
  ['a request line above max_header_size', `HEAD /${'a'.repeat(17_000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
  ['bare LF line ends', 'HEAD /a HTTP/1.1\nHost: a\n\n', 400],
  ['bare LF line ends after empty lines', '\r\n\nHEAD /a HTTP/1.1\nHost: a\n\n', 400],
] as const)('the listener\'s answer to a HEAD whose head it could not parse (%s) has no content (RFC 9110 §9.3.2; outside review, fifteenth round: 77-113 bytes of it went out)', async (_, request, status) => {
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${await freePort()}` }, server: { listener: 'own' } })
  const reply = await rawExchange(proxy.port, request)
  expect(reply).toStartWith(`HTTP/1.1 ${status} `)
  expect(reply.slice(reply.indexOf('\r\n\r\n') + 4)).toBe('')
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  expect(h.records[0]).toMatchObject({ status, bytes_out: 0 })
})

test('a GET refused the same way still gets its answer\'s text', async () => {
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${await freePort()}` }, server: { listener: 'own' } })
  const reply = await rawExchange(proxy.port, 'GET /a HTTP/1.1\nHost: a\n\n')
  expect(reply).toStartWith('HTTP/1.1 400 ')
  expect(reply.slice(reply.indexOf('\r\n\r\n') + 4).length).toBeGreaterThan(0)
})
