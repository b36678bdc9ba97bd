/**
 * Cache hits whose slow readers hold a stored body: once that body is purged (or would be
 * evicted) it stays charged to max_size (/status pinned_bytes) until the hit ends, on every way a
 * hit ends on both own listeners: read to its end, the client gone mid-body, send_timeout, an
 * HTTP/2 RST_STREAM, the HTTP/2 connection closed; a HEAD hit holds nothing. Without it, each
 * slow reader kept its evicted body alive beside a full store, without bound. Raw loopback clients.
 */
import { afterEach, expect, test } from 'bun:test'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { frame, FrameType, Setting, settingsFrame } from '../../src/http2/frames.ts'
import { H2Code } from '../../src/http2/errors.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, pausedClient, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const BODY_BYTES = 1 << 20
/** Room for three of the bodies, not four. */
const MAX_BYTES = 3.5 * BODY_BYTES

async function pinProxy(opts: { tls?: boolean; server?: Record<string, string> } = {}) {
  const origin = h.origin({ fetch: (req: Request) => new Response(new Uint8Array(BODY_BYTES).fill(new URL(req.url).pathname.charCodeAt(1)), { headers: { 'cache-control': 'max-age=600' } }) })
  const cache = new EdgeCache({ maxBytes: MAX_BYTES, maxObjectBytes: 2 * BODY_BYTES, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const certs = opts.tls ? makeCerts(['proxy.test'], ['127.0.0.1']) : undefined
  const server = { ...opts.server, ...(certs ? { tls_cert: certs.certFile, tls_key: certs.keyFile } : {}) }
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}`, retries: '0' }, server })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { cache } }).start()
  h.track(() => proxy.close())
  const ca = certs ? await Bun.file(certs.caFile).text() : undefined
  const base = `${certs ? 'https' : 'http'}://127.0.0.1:${proxy.port}`
  /** Stores `path` (a whole GET through the proxy). */
  const fill = async (path: string) => {
    const res = await fetch(base + path, (ca ? { tls: { ca, serverName: 'proxy.test' } } : {}) as RequestInit)
    expect((await res.arrayBuffer()).byteLength).toBe(BODY_BYTES)
  }
  return { cache, port: proxy.port, base, ca, fill }
}

type Pinned = Awaited<ReturnType<typeof pinProxy>>

/** Stores /a, has `startHit` begin a hit on it, then purges it: the hit's body is pinned, charged as the entry was. */
async function purgedWhileRead(p: Pinned, startHit: () => void | Promise<void>): Promise<number> {
  await p.fill('/a')
  const entryBytes = p.cache.status().bytes!
  expect(entryBytes).toBeGreaterThan(BODY_BYTES)
  await startHit()
  expect(await waitFor(() => p.cache.counts.hit === 1)).toBe(true)
  expect(p.cache.purgeUrl(`${p.base}/a`)).toBe(1)
  expect(p.cache.status().bytes).toBe(0)
  expect(await waitFor(() => p.cache.status().pinned_bytes === entryBytes)).toBe(true)
  return entryBytes
}

async function slowHttp1(p: Pinned, method = 'GET', receiveBytes?: number) {
  const c = await pausedClient(h, p.port, receiveBytes)
  c.sock.write(`${method} /a HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\n\r\n`)
  return c
}

/** An HTTP/2 client whose stream windows are shut (nothing of a body can go): GET /a on stream 1 once the hit is asked for. */
async function slowHttp2(p: Pinned) {
  const c = await RawH2Tls.connect(h, p.port, p.ca!)
  c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]), c.headers(1, [[':method', 'GET'], [':scheme', 'https'], [':authority', `127.0.0.1:${p.port}`], [':path', '/a']], true))
  return c
}

function windowUpdate(streamId: number, bytes: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, bytes)
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, b)
}

test('HTTP/1.1: a purged body a slow reader still takes stays charged until the reader has it all', async () => {
  const p = await pinProxy()
  let c: Awaited<ReturnType<typeof slowHttp1>> | undefined
  // A receive buffer of 64 KiB: the body stays far from all sent while paused, and comes in a few seconds after.
  await purgedWhileRead(p, async () => void (c = await slowHttp1(p, 'GET', 64 * 1024)))
  c!.sock.resume()
  const bodyBytes = () => c!.got().length - c!.got().indexOf('\r\n\r\n') - 4
  expect(await waitFor(() => bodyBytes() === BODY_BYTES, 10_000)).toBe(true)
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
  expect(c!.got()).toContain('proxy; hit')
}, 20_000)

test('HTTP/1.1: released when the client leaves mid-body', async () => {
  const p = await pinProxy()
  let c: Awaited<ReturnType<typeof slowHttp1>> | undefined
  await purgedWhileRead(p, async () => void (c = await slowHttp1(p)))
  c!.sock.terminate()
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
}, 20_000)

test('HTTP/1.1: released when send_timeout cuts a client that takes nothing', async () => {
  const p = await pinProxy({ server: { send_timeout: '1s' } })
  let c: Awaited<ReturnType<typeof slowHttp1>> | undefined
  await purgedWhileRead(p, async () => void (c = await slowHttp1(p)))
  expect(await waitFor(c!.closed, 8000, 50)).toBe(true)
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
}, 20_000)

test('HTTP/1.1: a HEAD hit holds nothing', async () => {
  const p = await pinProxy()
  await p.fill('/a')
  const c = await slowHttp1(p, 'HEAD')
  expect(await waitFor(() => p.cache.counts.hit === 1)).toBe(true)
  expect(p.cache.purgeUrl(`${p.base}/a`)).toBe(1)
  expect(p.cache.status()).toMatchObject({ bytes: 0, pinned_bytes: 0 })
  c.sock.terminate()
}, 20_000)

test('HTTP/2: released when the reader opens its windows and takes the body to its end', async () => {
  const p = await pinProxy({ tls: true })
  let c: RawH2Tls | undefined
  await purgedWhileRead(p, async () => void (c = await slowHttp2(p)))
  c!.send(windowUpdate(0, 1 << 30), windowUpdate(1, 1 << 30))
  expect(await waitFor(() => c!.ended(1), 10_000)).toBe(true)
  expect(c!.resets(1)).toEqual([])
  expect(c!.bodyOf(1).length).toBe(BODY_BYTES)
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
}, 20_000)

test('HTTP/2: released when the client resets the stream (RST_STREAM)', async () => {
  const p = await pinProxy({ tls: true })
  let c: RawH2Tls | undefined
  await purgedWhileRead(p, async () => void (c = await slowHttp2(p)))
  const code = new Uint8Array(4)
  new DataView(code.buffer).setUint32(0, H2Code.CANCEL)
  c!.send(frame(FrameType.RST_STREAM, 0, 1, code))
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
}, 20_000)

test('HTTP/2: released when the connection closes', async () => {
  const p = await pinProxy({ tls: true })
  let c: RawH2Tls | undefined
  await purgedWhileRead(p, async () => void (c = await slowHttp2(p)))
  c!.destroy()
  expect(await waitFor(() => p.cache.status().pinned_bytes === 0)).toBe(true)
}, 20_000)

test('memory stays within max_size: a body a slow reader holds is not pushed out for others to fill the store beside it', async () => {
  const p = await pinProxy({ tls: true })
  await p.fill('/a')
  const entryBytes = p.cache.status().bytes!
  await slowHttp2(p)
  expect(await waitFor(() => p.cache.counts.hit === 1)).toBe(true)
  for (const path of ['/b', '/c', '/d', '/e', '/f']) await p.fill(path)
  // /a is still held (its reader has it): stored, or charged as pinned; either way within max_size.
  const head = await fetch(`${p.base}/a`, { method: 'HEAD', headers: { 'cache-control': 'only-if-cached' }, tls: { ca: p.ca, serverName: 'proxy.test' } } as RequestInit)
  const status = p.cache.status()
  const held = status.bytes! + (head.status === 200 ? 0 : entryBytes)
  expect(held).toBeLessThanOrEqual(MAX_BYTES)
  expect(status.bytes! + (status.pinned_bytes ?? 0)).toBeLessThanOrEqual(MAX_BYTES)
}, 20_000)
