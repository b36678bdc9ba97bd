/**
 * The TLS listener's close is prompt: after the last reply (Connection: close), or at
 * client_header_timeout, the close_notify and the FIN go out at once and the socket is let go.
 * Bun's end() of a TLS socket waits for the client's own close_notify before the TCP close, so a
 * client that answers none (one not reading: most clients take the close_notify as the end and
 * then close, but not all do at once) had the socket, and its file descriptor, held about 12 s past
 * every close, outside max_connections (sixteenth round of outside reviews).
 */
import { afterEach, expect, test } from 'bun:test'
import { connect as netConnect } from 'node:net'
import { Duplex } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/**
 * A TLS client deaf once its request is sent: a Duplex between node:tls and the TCP socket stops
 * passing what arrives on to TLS, so neither the reply nor the close_notify is read, and the
 * close_notify is never answered, while the TCP socket's own bytes and FIN are seen here.
 */
async function deafClient(port: number, request: string | Uint8Array, alpn?: string[]): Promise<{ bytes: () => number; fin: () => boolean }> {
  const raw = netConnect(port, '127.0.0.1')
  h.track(() => void raw.destroy())
  raw.on('error', () => {})
  let deaf = false
  let fin = false
  let bytes = 0
  raw.on('end', () => (fin = true))
  const duplex = new Duplex({
    read() {},
    write(chunk, _enc, done) {
      raw.write(chunk, done)
    },
  })
  raw.on('data', (d: Buffer) => {
    if (!deaf) return void duplex.push(d)
    bytes += d.length
  })
  const t = tlsConnect({ socket: duplex, ca: certs.ca, servername: 'proxy.test', ...(alpn ? { ALPNProtocols: alpn } : {}) })
  t.on('error', () => {})
  t.on('secureConnect', () => {
    if (alpn && t.alpnProtocol !== alpn[0]) throw new Error(`ALPN: ${t.alpnProtocol}`)
    t.write(request)
    deaf = true
  })
  await new Promise<void>((r) => raw.on('connect', () => r()))
  return { bytes: () => bytes, fin: () => fin }
}

for (const [name, request] of [
  ['a reply with Connection: close', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'],
  ['client_header_timeout', 'GET / HTTP/1.1\r\nHost: a\r\n'],
] as const) {
  test(`the TLS listener's FIN comes at once after ${name}, whether or not the client answers the close_notify`, async () => {
    const origin = h.origin({ fetch: () => new Response('ok') })
    // Its own process, from source: in the test runner's process Bun's TLS end() closed at once, and the wait did not show.
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--admin', 'off', '--access-log', 'off', '--client-header-timeout', '1s'])
    h.track(() => void proxy.stop())
    const c = await deafClient(Number(new URL(proxy.url).port), request)
    // The reply (a 200, or the 408), and the close_notify: sealed records, unread.
    expect(await waitFor(() => c.bytes() > 100, 5000)).toBe(true)
    expect(await waitFor(() => c.fin(), 4000, 50)).toBe(true)
  }, 20_000)
}

/** An HTTP/2 frame: 9-byte header (RFC 9113 §4.1), then the payload. */
function h2Frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const f = new Uint8Array(9 + payload.length)
  f.set([(payload.length >> 16) & 255, (payload.length >> 8) & 255, payload.length & 255, type, flags, streamId >>> 24, (streamId >> 16) & 255, (streamId >> 8) & 255, streamId & 255])
  f.set(payload, 9)
  return f
}
const H2_PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
const h2Bytes = (...parts: Uint8Array[]) => Buffer.concat(parts)

for (const [name, request] of [
  // DATA on stream 0: a connection error (RFC 9113 §6.1), GOAWAY(PROTOCOL_ERROR), then the close.
  ['an HTTP/2 connection error', h2Bytes(H2_PREFACE, h2Frame(4, 0, 0), h2Frame(0, 0, 0, new Uint8Array([1])))],
  // The preface and SETTINGS, then no request: GOAWAY at client_header_timeout, then the close.
  ['an HTTP/2 client_header_timeout', h2Bytes(H2_PREFACE, h2Frame(4, 0, 0))],
] as const) {
  test(`the TLS listener's FIN comes at once after ${name}, whether or not the client answers the close_notify (HTTP/2 connections ended with Bun's end(): 12 s, seventeenth round)`, async () => {
    const origin = h.origin({ fetch: () => new Response('ok') })
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--admin', 'off', '--access-log', 'off', '--client-header-timeout', '1s'])
    h.track(() => void proxy.stop())
    const c = await deafClient(Number(new URL(proxy.url).port), request, ['h2'])
    // The server's SETTINGS, the GOAWAY and the close_notify: sealed records, unread.
    expect(await waitFor(() => c.bytes() > 30, 5000)).toBe(true)
    expect(await waitFor(() => c.fin(), 4000, 50)).toBe(true)
  }, 20_000)
}

test('a Connection: close reply over TLS to a slow reader that sends more after it: every byte arrives, then the close_notify (second opinion on the first fix: its shutdown() with an end() at once cut 8,000,000 bytes at 7.91-7.96 MB)', async () => {
  const TOTAL = 8_000_000
  const big = new Uint8Array(TOTAL).fill(0x62)
  const origin = h.origin({ fetch: () => new Response(big) })
  const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--admin', 'off', '--access-log', 'off'])
  h.track(() => void proxy.stop())
  const t = tlsConnect({ host: '127.0.0.1', port: Number(new URL(proxy.url).port), ca: certs.ca, servername: 'proxy.test' })
  h.track(() => void t.destroy())
  let got = 0
  let sentMore = false
  let ended: string | undefined
  t.on('error', (e) => (ended ??= `error: ${e.message}`))
  t.on('end', () => (ended ??= 'close_notify'))
  t.on('secureConnect', () => t.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'))
  // A slow reader: 64 KiB every 10 ms (the proxy has long written its last byte and closed by the
  // time it is near the end); once it has most of the body it sends one more request.
  t.pause()
  const reader = setInterval(() => {
    for (let chunk = t.read(65_536); chunk !== null; chunk = null) got += chunk.length
    if (!sentMore && got > TOTAL - 100_000) {
      sentMore = true
      t.write('GET /more HTTP/1.1\r\nHost: a\r\n\r\n')
    }
  }, 10)
  h.track(() => clearInterval(reader))
  t.on('readable', () => {})
  expect(await waitFor(() => ended !== undefined, 20_000, 50)).toBe(true)
  for (let chunk = t.read(); chunk !== null; chunk = t.read()) got += chunk.length
  clearInterval(reader)
  expect(sentMore).toBe(true)
  expect(ended).toBe('close_notify')
  expect(got).toBeGreaterThan(TOTAL) // the head and all of the body
}, 40_000)
