/**
 * A cache hit whose reply is cut is logged as a cut proxied reply is: the status as sent, the
 * body bytes that went out, and the failure code that cut it (CLIENT_GONE, CLIENT_SEND_TIMEOUT),
 * not as a whole 200. The cut here: a client that half-closes (shutdown of its write side) right
 * after its request; Bun closes a socket once the peer's FIN has been handled, so whatever of the
 * reply the kernel had not taken by then is never sent.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness, pausedClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const BODY_BYTES = 8 * 1024 * 1024

function cachingProxy(extra: Record<string, unknown> = {}): { port: number; records: RequestRecord[]; url: string } {
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => new Response(body, { headers: { 'cache-control': 'max-age=600' } }) })
  const cache = new EdgeCache({ maxBytes: 32 << 20, maxObjectBytes: 16 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: extra })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())
  return { port: proxy.port, records, url: proxy.url }
}

/** Sends `request`, half-closes at once, and reads everything until the proxy closes; the bytes of the body received. */
function askAndHalfClose(port: number, request: string): Promise<{ head: string; bodyBytes: number }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    h.track(() => void s.destroy())
    const parts: Buffer[] = []
    s.on('data', (d: Buffer) => parts.push(d))
    s.on('error', () => {})
    s.on('close', () => {
      const all = Buffer.concat(parts)
      const end = all.indexOf('\r\n\r\n')
      resolve({ head: all.subarray(0, end).toString('latin1'), bodyBytes: all.length - end - 4 })
    })
    s.on('connect', () => {
      s.write(request)
      s.end()
    })
  })
}

test('a half-closed client whose cache hit is cut: logged with the status sent, the bytes sent and CLIENT_GONE', async () => {
  const p = cachingProxy()
  const fill = await fetch(`${p.url}/big`)
  expect((await fill.arrayBuffer()).byteLength).toBe(BODY_BYTES)
  expect(await waitFor(() => p.records.length === 1)).toBe(true)

  const got = await askAndHalfClose(p.port, `GET /big HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\n\r\n`)
  expect(got.head).toMatch(/^HTTP\/1\.1 200 /)
  expect(got.head).toContain('proxy; hit')
  // The cut itself (if loopback took the whole body, nothing here was cut and the test proves nothing).
  expect(got.bodyBytes).toBeLessThan(BODY_BYTES)
  expect(await waitFor(() => p.records.length === 2)).toBe(true)
  const hit = p.records[1]!
  expect(hit).toMatchObject({ status: 200, cache: 'hit', error: 'CLIENT_GONE' })
  expect(hit.bytes_out).toBeLessThan(BODY_BYTES)
  expect(hit.bytes_out).toBeGreaterThanOrEqual(got.bodyBytes)
}, 20_000)

test('a cache hit cut by send_timeout: logged CLIENT_SEND_TIMEOUT with the bytes sent, as a proxied reply is', async () => {
  const p = cachingProxy({ send_timeout: '1s' })
  const fill = await fetch(`${p.url}/big`)
  expect((await fill.arrayBuffer()).byteLength).toBe(BODY_BYTES)
  expect(await waitFor(() => p.records.length === 1)).toBe(true)
  const { sock, closed } = await pausedClient(h, p.port)
  sock.write(`GET /big HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\n\r\n`)
  expect(await waitFor(closed, 8000, 50)).toBe(true)
  expect(await waitFor(() => p.records.length === 2)).toBe(true)
  const hit = p.records[1]!
  expect(hit).toMatchObject({ status: 200, cache: 'hit', error: 'CLIENT_SEND_TIMEOUT' })
  expect(hit.bytes_out).toBeLessThan(BODY_BYTES)
}, 20_000)

test('a whole cache hit is logged once, whole, with no error', async () => {
  const p = cachingProxy()
  for (let i = 0; i < 2; i++) expect((await (await fetch(`${p.url}/big`)).arrayBuffer()).byteLength).toBe(BODY_BYTES)
  expect(await waitFor(() => p.records.length === 2)).toBe(true)
  await Bun.sleep(50)
  expect(p.records.length).toBe(2)
  expect(p.records[1]).toMatchObject({ status: 200, cache: 'hit', bytes_out: BODY_BYTES })
  expect(p.records[1]!.error).toBeUndefined()
})

test('the request that fills the cache, its client gone mid-body while the fill goes on: logged CLIENT_GONE with the bytes sent, not as a whole 200 (outside review, sixteenth round)', async () => {
  const PART = 100 * 1024
  // The origin sends its body in three parts 300 ms apart: the client leaves after the first.
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s) {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${3 * PART}\r\nCache-Control: max-age=600\r\n\r\n`)
        s.write(new Uint8Array(PART).fill(97))
        const later = (n: number) => setTimeout(() => s.write(new Uint8Array(PART).fill(97)), 300 * n)
        later(1)
        later(2)
      },
    },
  })
  h.track(() => origin.stop(true))
  const cache = new EdgeCache({ maxBytes: 32 << 20, maxObjectBytes: 16 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const records: RequestRecord[] = []
  const proxy = new ProxyServer(h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` } }), { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())
  const got = await new Promise<number>((resolve) => {
    const s = connect({ port: proxy.port, host: '127.0.0.1' })
    h.track(() => void s.destroy())
    const parts: Buffer[] = []
    s.on('error', () => {})
    s.on('data', (d: Buffer) => {
      parts.push(d)
      const all = Buffer.concat(parts)
      const end = all.indexOf('\r\n\r\n')
      if (end > 0 && all.length - end - 4 >= 1000) {
        s.destroy()
        resolve(all.length - end - 4) // body bytes
      }
    })
    s.on('connect', () => s.write(`GET /fill HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`))
  })
  expect(await waitFor(() => records.length === 1, 5000)).toBe(true)
  const rec = records[0]!
  expect([rec.status, rec.cache, rec.error]).toEqual([200, 'miss', 'CLIENT_GONE'])
  expect(rec.bytes_out).toBeLessThan(3 * PART)
  expect(rec.bytes_out).toBeGreaterThanOrEqual(got) // at least what arrived
  // The fill went on without its client, and is whole in the store.
  expect(await waitFor(() => cache.store.objects === 1, 5000)).toBe(true)
  const again = await fetch(`${proxy.url}/fill`)
  expect([again.headers.get('cache-status'), (await again.arrayBuffer()).byteLength]).toEqual([expect.stringContaining('hit'), 3 * PART])
}, 20_000)
