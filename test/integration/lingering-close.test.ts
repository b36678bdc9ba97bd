/**
 * A lingering close (RFC 9112 §9.6): a reply sent while the client is still uploading (a 413 for
 * a body over max_body_size) is followed by a FIN, and what the client still sends is read and
 * dropped, so that the client's writes never draw a TCP reset that could take the reply from it
 * before it read it (curl, which reads once its upload is sent, saw "Connection reset by peer"
 * instead of the 413). Raw clients on loopback, plain and TLS.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import tls from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const HEAD = 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n'
const PIECE = Buffer.alloc(16 * 1024, 'x')

/**
 * Sends a head announcing 10 MB, waits for the 413, sends 20 more pieces of the body, then ends:
 * what the client saw, how many pieces it sent, and whether the connection closed before its end.
 */
async function uploadPastTheAnswer(s: Socket, afterAnswer?: () => void): Promise<{ got: string; errors: string[]; sent: number; closedFirst: boolean }> {
  let got = ''
  let closed = false
  const errors: string[] = []
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('error', (e) => errors.push((e as { code?: string }).code ?? e.message))
  s.on('close', () => (closed = true))
  s.write(HEAD)
  s.write(PIECE)
  expect(await waitFor(() => got.includes('\r\n\r\n'), 5000)).toBe(true)
  afterAnswer?.()
  // The rest of the upload, as a client that sends its whole body before it reads: each piece is
  // given to the kernel before the next, so a reset for any of them is seen.
  let sent = 0
  for (let i = 0; i < 20 && errors.length === 0 && !closed; i++) {
    await new Promise<void>((r) => s.write(PIECE, () => r()))
    await new Promise((r) => setImmediate(r))
    if (errors.length === 0 && !closed) sent++
  }
  const closedFirst = closed
  s.end()
  expect(await waitFor(() => closed, 5000)).toBe(true)
  return { got, errors, sent, closedFirst }
}

test('a 413 before the body was read: the client may go on sending; no reset, the answer is read whole', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_body_size: '1000' } })
  // As curl: the proxy's FIN does not end the client's side (its upload goes on).
  const s = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true })
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('connect', () => r()))
  const { got, errors, sent, closedFirst } = await uploadPastTheAnswer(s)
  expect(got.startsWith('HTTP/1.1 413 ')).toBe(true)
  expect(got).toContain('connection: close')
  // It closed at once, so the next piece drew a reset (EPIPE, ECONNRESET).
  expect({ errors, sent, closedFirst }).toEqual({ errors: [], sent: 20, closedFirst: false })
  expect(await waitFor(() => proxy.clientConnections === 0, 5000)).toBe(true)
}, 20_000)

test('over TLS too: the client may go on sending after the 413, and the proxy closes once it ends', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_body_size: '1000', tls_cert: certs.certFile, tls_key: certs.keyFile, http2: false } })
  // As curl: the proxy's close_notify and FIN (sent at once, since the sixteenth round of outside reviews) do not end the client's side.
  const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', allowHalfOpen: true } as tls.ConnectionOptions)
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('secureConnect', () => r()))
  const { got, errors, sent, closedFirst } = await uploadPastTheAnswer(s)
  expect(got.startsWith('HTTP/1.1 413 ')).toBe(true)
  expect({ errors, sent, closedFirst }).toEqual({ errors: [], sent: 20, closedFirst: false })
  expect(await waitFor(() => proxy.clientConnections === 0, 5000)).toBe(true)
}, 20_000)

test('a drain (SIGTERM) during a lingering close lets it finish: the client goes on sending, no reset, the 413 is read whole', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_body_size: '1000' } })
  const s = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true })
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('connect', () => r()))
  let drained = false
  // The drain begins once the 413 is out and the connection lingers; the client's upload goes on.
  const { got, errors, sent, closedFirst } = await uploadPastTheAnswer(s, () => void proxy.drain(10_000).then(() => (drained = true)))
  expect(got.startsWith('HTTP/1.1 413 ')).toBe(true)
  const length = Number(/content-length: (\d+)/i.exec(got)?.[1])
  expect(got.length - (got.indexOf('\r\n\r\n') + 4)).toBe(length)
  // Cut at the drain's start, the next piece drew a reset (EPIPE, ECONNRESET).
  expect({ errors, sent, closedFirst }).toEqual({ errors: [], sent: 20, closedFirst: false })
  // The lingering ended with the client's end, and the drain with it (well before its 10 s).
  expect(await waitFor(() => drained, 5000)).toBe(true)
}, 20_000)

test('a drain does not wait past its drain_timeout for a client that lingers on: it is cut then', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_body_size: '1000' } })
  const s = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true })
  h.track(() => void s.destroy())
  let got = ''
  let closed = false
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('error', () => {})
  s.on('close', () => (closed = true))
  await new Promise<void>((r) => s.once('connect', () => r()))
  s.write(HEAD)
  s.write(PIECE)
  expect(await waitFor(() => got.includes('\r\n\r\n'), 5000)).toBe(true)
  // The client goes on sending (never ends) while the drain runs, bounded in pieces and time.
  let drained = false
  void proxy.drain(300).then(() => (drained = true))
  for (let i = 0; i < 200 && !drained && !closed; i++) {
    s.write(PIECE)
    await Bun.sleep(20)
  }
  expect(drained).toBe(true)
  expect(await waitFor(() => closed, 5000)).toBe(true)
  expect(proxy.clientConnections ?? 0).toBe(0)
}, 20_000)

test.each([
  ['HTTP/1.1 with Connection: close', 'GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 without keep-alive', 'GET /big HTTP/1.0\r\nHost: a\r\n\r\n'],
])('a last reply (%s) with a request pipelined after it: a lingering close, so what the client still sends draws no reset that could take the reply (outside review, fifteenth round: 1.90-1.97 MB of 2 MB, then ECONNRESET)', async (_, first) => {
  const origin = h.origin({ fetch: () => new Response(new Uint8Array(100_000).fill(0x62)) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const s = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true })
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('connect', () => r()))
  let got = ''
  let finned = false
  let closed = false
  const errors: string[] = []
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('end', () => (finned = true))
  s.on('error', (e) => errors.push((e as { code?: string }).code ?? e.message))
  s.on('close', () => (closed = true))
  // The closing request, and after it one with a body the proxy will never read (a client that
  // ignores Connection: close); then more of that body once the reply is in and the FIN came.
  s.write(first + `POST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n`)
  s.write(PIECE)
  expect(await waitFor(() => finned, 5000)).toBe(true)
  expect(got).toMatch(/^HTTP\/1\.1 200 /)
  expect(got.length - got.indexOf('\r\n\r\n') - 4).toBe(100_000)
  let sent = 0
  for (let i = 0; i < 20 && errors.length === 0 && !closed; i++) {
    await new Promise<void>((r) => s.write(PIECE, () => r()))
    await new Promise((r) => setImmediate(r))
    if (errors.length === 0 && !closed) sent++
  }
  // Closed at once (before), the next pieces drew a reset (EPIPE, ECONNRESET).
  expect({ errors, sent }).toEqual({ errors: [], sent: 20 })
  s.end()
  expect(await waitFor(() => closed, 5000)).toBe(true)
  expect(await waitFor(() => proxy.clientConnections === 0, 5000)).toBe(true)
}, 20_000)

test('over TLS, a last reply with bytes after it (a stray CRLF) ends at once: a lingering close there held back the end (and its close_notify) that a reply without length is read to (second opinion, fifteenth round: 5 s, then no close_notify)', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, http2: false } })
  const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test' })
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('secureConnect', () => r()))
  let got = ''
  let closed = false
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('error', () => {})
  s.on('close', () => (closed = true))
  s.write('GET / HTTP/1.0\r\nHost: a\r\n\r\n\r\n')
  expect(await waitFor(() => got.endsWith('ok'), 5000)).toBe(true)
  // The lingering close waits 5 s for the client's next bytes; the end comes well before that.
  expect(await waitFor(() => closed, 2000)).toBe(true)
})
