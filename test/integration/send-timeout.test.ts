/**
 * send_timeout: a client that takes no bytes of a response (it stopped reading; its HTTP/2
 * stream's window stays closed) has the response cut after send_timeout, logged
 * CLIENT_SEND_TIMEOUT, and its request's slot and upstream connection freed, as nginx's
 * send_timeout does; a slow client that keeps taking bytes is not cut; an upgrade tunnel whose
 * client takes nothing is cut and its record says so. Raw clients on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import tls from 'node:tls'
import { Flag, frame, FrameType, PREFACE, Setting, settingsFrame } from '../../src/http2/frames.ts'
import { H2Code } from '../../src/http2/errors.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { concatBytes } from '../../src/lib/bytes.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, pausedClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/**
 * A client that sends `request` and never reads: resolves when the proxy closes the connection
 * (or after `waitMs`, with false).
 */
function neverReads(port: number, request: string, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    h.track(() => void s.destroy())
    s.pause()
    const timer = setTimeout(() => resolve(false), waitMs)
    s.on('close', () => (clearTimeout(timer), resolve(true)))
    s.on('error', () => {})
    s.write(request)
  })
}

/** An origin streaming `mib` MiB in 64 KiB pieces, as fast as it is read. */
function bigOrigin(mib: number) {
  const piece = new Uint8Array(64 * 1024).fill(120)
  return h.origin({
    fetch: () => {
      let sent = 0
      return new Response(
        new ReadableStream({
          pull(c) {
            if (sent >= mib * 16) return c.close()
            sent++
            c.enqueue(piece)
          },
        }),
        { headers: { 'content-length': String(mib * 1024 * 1024) } },
      )
    },
  })
}

test('HTTP/1.1: a client that stops reading is cut after send_timeout and logged; its slot is freed for the next client', async () => {
  const origin = bigOrigin(64)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', max_concurrent_requests: 1 } })
  const stalled = connect(proxy.port, '127.0.0.1')
  h.track(() => void stalled.destroy())
  let got = 0
  let closed = false
  stalled.on('data', (d) => {
    got += d.length
    if (got >= 64 * 1024) stalled.pause() // reads a little, then nothing
  })
  stalled.on('close', () => (closed = true))
  stalled.on('error', () => {})
  stalled.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => closed, 10_000, 50)).toBe(true)
  expect(got).toBeLessThan(64 * 1024 * 1024)
  expect(await waitFor(() => h.records.some((r) => r.path === '/big'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/big')!
  expect([rec.status, rec.error]).toEqual([200, 'CLIENT_SEND_TIMEOUT'])
  // The one slot is free again: the next request is served, not refused 503.
  const next = await fetch(`${proxy.url}/small`, { headers: { range: 'bytes=0-0' } })
  expect(next.status).not.toBe(503)
  await next.body?.cancel()
}, 20_000)

test('HTTP/2: a stream whose window stays closed is reset after send_timeout and logged', async () => {
  const origin = bigOrigin(4)
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/h2big']])
  let reset = false
  let resetCode = -1
  let data = 0
  const rx = new FrameSplitter()
  sock.on('data', (d: Buffer) =>
    rx.push(new Uint8Array(d), (fh, payload) => {
      if (fh.type === FrameType.RST_STREAM && fh.streamId === 1) {
        reset = true
        resetCode = new DataView(payload.buffer, payload.byteOffset).getUint32(0)
      }
      if (fh.type === FrameType.DATA) data += payload.byteLength
    }),
  )
  sock.on('error', () => {})
  sock.once('secureConnect', () => {
    // A window of 0 for every stream, never opened: the client takes nothing.
    sock.write(concatBytes([PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
  })
  expect(await waitFor(() => reset, 10_000, 50)).toBe(true)
  // The proxy gave up on a response still wanted: INTERNAL_ERROR (RFC 9113 §7), not CANCEL.
  expect(resetCode).toBe(H2Code.INTERNAL_ERROR)
  expect(data).toBe(0)
  expect(await waitFor(() => h.records.some((r) => r.path === '/h2big'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/h2big')!.error).toBe('CLIENT_SEND_TIMEOUT')
}, 20_000)

test('HTTP/2: a small whole body on a stream whose window stays shut is reset after send_timeout, and its slot freed', async () => {
  const origin = h.origin({ fetch: () => new Response('x'.repeat(3000)) })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', max_concurrent_requests: 1, tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/small-whole']])
  let reset = false
  let resetCode = -1
  let headers = false
  const rx = new FrameSplitter()
  sock.on('data', (d: Buffer) =>
    rx.push(new Uint8Array(d), (fh, payload) => {
      if (fh.type === FrameType.RST_STREAM && fh.streamId === 1) {
        reset = true
        resetCode = new DataView(payload.buffer, payload.byteOffset).getUint32(0)
      }
      if (fh.type === FrameType.HEADERS && fh.streamId === 1) headers = true
    }),
  )
  sock.on('error', () => {})
  sock.once('secureConnect', () => {
    sock.write(concatBytes([PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
  })
  expect(await waitFor(() => headers, 3000)).toBe(true)
  expect(await waitFor(() => reset, 8000, 50)).toBe(true)
  expect(resetCode).toBe(H2Code.INTERNAL_ERROR)
  const next = await fetch(`${proxy.url}/next`, { tls: { ca: await Bun.file(certs.caFile).text(), serverName: 'proxy.test' } } as RequestInit)
  expect(next.status).toBe(200)
  await next.arrayBuffer()
}, 20_000)

test('HTTP/2: a client that stops reading altogether (its windows open) has its connection cut after send_timeout, not kept for ever', async () => {
  const origin = bigOrigin(64)
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/h2big']])
  let data = 0
  let closed = false
  const rx = new FrameSplitter()
  sock.on('data', (d: Buffer) => {
    rx.push(new Uint8Array(d), (fh, payload) => {
      if (fh.type === FrameType.DATA) data += payload.byteLength
    })
    if (data > 0) sock.pause() // took a little, then reads nothing more: the proxy's socket fills
  })
  sock.on('close', () => (closed = true))
  sock.on('error', () => {})
  sock.once('secureConnect', () => {
    // Windows of 2^30 for the stream and the connection: only the socket holds the bytes back.
    const open = new Uint8Array(4)
    new DataView(open.buffer).setUint32(0, 2 ** 30)
    sock.write(concatBytes([PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 ** 30]]), frame(FrameType.WINDOW_UPDATE, 0, 0, open), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
  })
  // Before: the stream was reset, then GOAWAY and FIN queued behind the bytes never taken: open for ever.
  expect(await waitFor(() => closed, 10_000, 50)).toBe(true)
  expect(data).toBeLessThan(64 * 1024 * 1024)
  const next = await fetch(`${proxy.url}/next`, { tls: { ca: await Bun.file(certs.caFile).text(), serverName: 'proxy.test' } } as RequestInit)
  expect(next.status).toBe(200)
  await next.body?.cancel()
}, 20_000)

test('a client that never reads a body the upstream sent in full (its last read) is cut too, and its slot freed', async () => {
  const body = new Uint8Array(200 * 1024).fill(121)
  const origin = h.origin({ fetch: () => new Response(body) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', max_concurrent_requests: 1 } })
  // A 4 KiB receive buffer: loopback's own buffers (some MiB) would otherwise take the whole reply,
  // leave nothing waiting on the client and the connection to the keep-alive timeout (a FIN it
  // would not read), and the test would see no cut.
  const { sock, closed } = await pausedClient(h, proxy.port)
  sock.write('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(closed, 8000, 50)).toBe(true)
  const next = await fetch(`${proxy.url}/after`)
  expect(next.status).toBe(200)
  await next.arrayBuffer()
}, 20_000)

test('a client that never reads a cached or cacheable body (the cache tee reads the upstream whole) is cut and its slot freed', async () => {
  const body = new Uint8Array(6 * 1024 * 1024).fill(122)
  const origin = h.origin({ fetch: () => new Response(body, { headers: { 'cache-control': 'max-age=60' } }) })
  const cache = new EdgeCache({ maxBytes: 32 << 20, maxObjectBytes: 8 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', max_concurrent_requests: 1 } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())
  // A miss that fills the cache, then a hit: neither client reads.
  expect(await neverReads(proxy.port, 'GET /cached HTTP/1.1\r\nHost: a\r\n\r\n', 8000)).toBe(true)
  expect(await waitFor(() => (cache.status().objects ?? 0) > 0, 3000)).toBe(true)
  expect(await neverReads(proxy.port, 'GET /cached HTTP/1.1\r\nHost: a\r\n\r\n', 8000)).toBe(true)
  const next = await fetch(`${proxy.url}/cached`)
  expect(next.status).toBe(200)
  expect((await next.arrayBuffer()).byteLength).toBe(body.byteLength)
}, 30_000)

test('a slow client that keeps taking bytes is not cut by send_timeout', async () => {
  const origin = bigOrigin(16)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s' } })
  const res = await fetch(`${proxy.url}/slow`)
  const reader = res.body!.getReader()
  let got = 0
  let nextPauseAt = 1024 * 1024
  // Reads with a 400 ms pause after each MiB (about 6 s in all): the proxy's side fills and waits
  // on each pause, shorter than send_timeout each time, longer in sum.
  for (;;) {
    const r = await reader.read()
    if (r.done) break
    got += r.value.byteLength
    if (got >= nextPauseAt) {
      nextPauseAt += 1024 * 1024
      await Bun.sleep(400)
    }
  }
  expect(got).toBe(16 * 1024 * 1024)
  expect(await waitFor(() => h.records.some((r) => r.path === '/slow'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/slow')!.error).toBeUndefined()
}, 30_000)

test('an upgrade tunnel whose client takes none of what the upstream sends is cut after send_timeout and logged CLIENT_SEND_TIMEOUT', async () => {
  // An origin that switches, then sends as fast as it is read, up to 64 MiB.
  const piece = Buffer.alloc(1 << 20, 120)
  let sent = 0
  let upstreamClosed = false
  const pump = (s: { write(b: Uint8Array): number }) => {
    while (sent < 64 * piece.length) {
      const n = s.write(piece)
      sent += n
      if (n < piece.length) return
    }
  }
  const origin = Bun.listen<{ switched: boolean }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { switched: false }
      },
      data(s) {
        if (s.data.switched) return
        s.data.switched = true
        s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: flood\r\n\r\n')
        pump(s)
      },
      drain: pump,
      close() {
        upstreamClosed = true
      },
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s' } })
  expect(await neverReads(proxy.port, 'GET /flood HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: flood\r\n\r\n', 10_000)).toBe(true)
  expect(await waitFor(() => upstreamClosed, 3000)).toBe(true)
  expect(sent).toBeLessThan(64 * piece.length)
  expect(await waitFor(() => h.records.some((r) => r.path === '/flood'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/flood')!
  expect([rec.status, rec.error]).toEqual([101, 'CLIENT_SEND_TIMEOUT'])
}, 20_000)
