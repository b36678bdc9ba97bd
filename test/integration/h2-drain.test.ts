/**
 * An HTTP/2 client when the own TLS listener stops gracefully (a reload that moves it, as SIGHUP
 * runs it): two GOAWAYs as RFC 9113 §6.8 asks, the first of 2^31-1 at once, the second naming the
 * last stream a grace later; a request the client sent as the stop began is served, not refused;
 * a connection whose TLS handshake ends in the grace as HTTP/2 gets the same.
 * A raw h2 client on a real TLS socket (ALPN h2), reading the proxy's frames.
 */
import { afterEach, expect, test } from 'bun:test'
import net from 'node:net'
import { connect } from 'node:tls'
import { frame, Flag, FrameType, PREFACE, settingsFrame } from '../../src/http2/frames.ts'
import { HpackDecoder, HpackEncoder } from '../../src/http2/hpack.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import { makeCerts } from '../support/certs.ts'
import { freePort, Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

test('a reload that moves the TLS listener: GOAWAY 2^31-1, a stream sent as it began is served, then GOAWAY naming it', async () => {
  const origin = h.origin({ fetch: (req) => new Response(`ok ${new URL(req.url).pathname}`) })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } }
  const { proxy } = h.proxy(flags)
  const sock = connect({ host: '127.0.0.1', port: proxy.port, ca: certs.ca, servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  let closed = false
  sock.on('close', () => (closed = true))
  sock.on('error', () => {})
  await new Promise<void>((resolve) => sock.once('secureConnect', () => resolve()))
  expect(sock.alpnProtocol).toBe('h2')

  const goaways: number[] = []
  const statuses = new Map<number, string>()
  const ended = new Set<number>()
  const decoder = new HpackDecoder(4096, 65_536)
  const frames = new FrameSplitter()
  sock.on('data', (d: Buffer) =>
    frames.push(d, (f, payload) => {
      if (f.type === FrameType.GOAWAY) goaways.push(new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff)
      if (f.type === FrameType.HEADERS) statuses.set(f.streamId, decoder.decode(payload).fields.find(([n]) => n === ':status')![1])
      if (f.flags & Flag.END_STREAM) ended.add(f.streamId)
    }),
  )
  const enc = new HpackEncoder(4096)
  const get = (id: number, path: string) => frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, enc.encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', path]]))
  sock.write(new Uint8Array([...PREFACE, ...settingsFrame([]), ...get(1, '/first')]))
  expect(await waitFor(() => ended.has(1))).toBe(true)
  expect(statuses.get(1)).toBe('200')

  // Stream 3 leaves in the same turn as the reload that moves the listener and stops the old one.
  const moved = h.config({ ...flags, server: { ...flags.server, listen: `127.0.0.1:${await freePort()}` } })
  sock.write(get(3, '/second'))
  await proxy.reload(moved)
  expect(await waitFor(() => closed)).toBe(true)
  expect(goaways).toEqual([2 ** 31 - 1, 3])
  expect(statuses.get(3)).toBe('200')
  expect(ended.has(3)).toBe(true)
})

test('a TLS handshake that ends in the reload\'s grace as HTTP/2 is told to go too (GOAWAYs), not left open until its idle timeout', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } }
  const { proxy } = h.proxy(flags)
  // Accepted before the reload; its TLS handshake (ALPN h2) completes after the old listener stops.
  const tcp = net.connect(proxy.port, '127.0.0.1')
  h.track(() => void tcp.destroy())
  await new Promise<void>((r) => tcp.once('connect', () => r()))
  await proxy.reload(h.config({ ...flags, server: { ...flags.server, listen: `127.0.0.1:${await freePort()}` } }))
  const sock = connect({ socket: tcp, ca: certs.ca, servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  let closed = false
  sock.on('close', () => (closed = true))
  sock.on('error', () => {})
  const goaways: number[] = []
  const frames = new FrameSplitter()
  sock.on('data', (d: Buffer) => frames.push(d, (f, payload) => void (f.type === FrameType.GOAWAY && goaways.push(new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff))))
  await new Promise<void>((resolve) => sock.once('secureConnect', () => resolve()))
  expect(sock.alpnProtocol).toBe('h2')
  sock.write(new Uint8Array([...PREFACE, ...settingsFrame([])]))
  expect(await waitFor(() => closed)).toBe(true)
  expect(goaways).toEqual([2 ** 31 - 1, 0])
})
