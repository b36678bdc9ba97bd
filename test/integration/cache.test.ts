/**
 * The edge cache through real sockets: a Bun origin, the proxy with its cache on, real clients.
 * The cache's clock is the wall clock plus an offset the tests move forward, so nothing sleeps
 * for freshness to run out.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { AdminServer } from '../../src/proxy/observe/admin.ts'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { RequestMetrics } from '../../src/proxy/observe/metrics.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

interface Started {
  url: string
  cache: EdgeCache
  records: RequestRecord[]
  /** Moves the cache's clock forward. */
  advance(ms: number): void
  admin: AdminServer
}

function start(originPort: number | undefined, opts: { staleIfErrorMs?: number; maxObjectBytes?: number; routes?: unknown[] } = {}): Started {
  let offsetMs = 0
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: opts.maxObjectBytes ?? 1 << 20, staleIfErrorMs: opts.staleIfErrorMs ?? 0, clocks: { monoMs: () => performance.now() + offsetMs, wallMs: () => Date.now() + offsetMs } })
  h.track(() => cache.close())
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort!}`, retries: '0' }, admin: { listen: '127.0.0.1:0' } })
  const withRoutes = opts.routes ? { ...config, routes: [...(opts.routes as typeof config.routes), ...config.routes] } : config
  const records: RequestRecord[] = []
  const metrics = new RequestMetrics()
  const proxy = new ProxyServer(withRoutes, {
    sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]),
    hooks: {
      onRecord: (r) => {
        records.push({ ...r })
        metrics.observe(r)
      },
      cache,
    },
  }).start()
  h.track(() => proxy.close())
  const admin = new AdminServer(withRoutes.admin, { proxy: () => proxy, metrics, startedAtMonoMs: performance.now(), cache }).start()
  h.track(() => admin.close())
  return { url: proxy.url, cache, records, advance: (ms) => void (offsetMs += ms), admin }
}

describe('edge cache over real sockets', () => {
  test('collapsed forwarding: 100 concurrent misses on a slow origin make exactly 1 upstream request', async () => {
    let upstream = 0
    const origin = h.origin({
      async fetch() {
        upstream++
        await Bun.sleep(300)
        return new Response('x'.repeat(10_000), { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    const { url, cache } = start(origin.port)
    const replies = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await fetch(`${url}/feed`)
        return { status: res.status, cacheStatus: res.headers.get('cache-status'), length: (await res.text()).length }
      }),
    )
    expect(upstream).toBe(1)
    expect(replies.every((r) => r.status === 200 && r.length === 10_000)).toBe(true)
    const statuses = replies.map((r) => r.cacheStatus)
    expect(statuses.filter((s) => s === 'proxy; fwd=uri-miss; stored').length).toBe(1)
    expect(statuses.filter((s) => s === 'proxy; fwd=uri-miss; collapsed').length).toBe(99)
    expect(cache.counts.collapsed).toBe(99)
    const after = await fetch(`${url}/feed`)
    await after.text()
    expect(after.headers.get('cache-status')).toMatch(/^proxy; hit; ttl=\d+$/)
    expect(upstream).toBe(1)
  })

  test('collapsed requests get the body as it streams, before the origin has finished it', async () => {
    let upstream = 0
    let finish!: () => void
    const finished = new Promise<void>((r) => (finish = r))
    const origin = h.origin({
      fetch() {
        upstream++
        const body = new ReadableStream<Uint8Array>({
          async start(ctl) {
            ctl.enqueue(new TextEncoder().encode('first;'))
            await finished
            ctl.enqueue(new TextEncoder().encode('last'))
            ctl.close()
          },
        })
        return new Response(body, { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    const { url } = start(origin.port)
    const readers = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const res = await fetch(`${url}/stream`)
        const reader = res.body!.getReader()
        const first = new TextDecoder().decode((await reader.read()).value)
        return { reader, first }
      }),
    )
    // Every client has its first bytes while the origin still holds the rest.
    expect(readers.map((r) => r.first)).toEqual(Array(5).fill('first;'))
    finish()
    for (const r of readers) {
      let rest = ''
      for (let i = 0; i < 100; i++) {
        const { done, value } = await r.reader.read()
        if (done) break
        rest += new TextDecoder().decode(value)
      }
      expect(rest).toBe('last')
    }
    expect(upstream).toBe(1)
  })

  test('stale-while-revalidate: the stale response is served at once, with one background refresh', async () => {
    let upstream = 0
    let version = 1
    let release: (() => void) | undefined
    const origin = h.origin({
      async fetch() {
        upstream++
        const v = version
        if (upstream > 1) await new Promise<void>((r) => (release = r))
        // The cache's clock runs 5 s ahead of the origin's Date by then: v2 lives long enough to be fresh.
        return new Response(`v${v}`, { headers: { 'cache-control': v === 1 ? 'max-age=1, stale-while-revalidate=60' : 'max-age=600' } })
      },
    })
    const { url, advance, cache } = start(origin.port)
    expect(await (await fetch(`${url}/p`)).text()).toBe('v1')
    version = 2
    advance(5000)
    for (let i = 0; i < 5; i++) {
      // The refresh is held at the origin, yet these answer.
      const res = await fetch(`${url}/p`)
      expect(await res.text()).toBe('v1')
      expect(res.headers.get('cache-status')).toContain('detail=stale-while-revalidate')
    }
    expect(await waitFor(() => release !== undefined)).toBe(true)
    expect(upstream).toBe(2)
    release!()
    expect(await waitFor(() => cache.stores === 2)).toBe(true) // the refresh is stored
    const fresh = await fetch(`${url}/p`)
    expect(await fresh.text()).toBe('v2')
    expect(fresh.headers.get('cache-status')).toMatch(/^proxy; hit/)
    expect(upstream).toBe(2)
  })

  test('stale-if-error with the origin stopped: the stale response answers', async () => {
    const origin = h.origin({ fetch: () => new Response('kept', { headers: { 'cache-control': 'max-age=1, stale-if-error=300' } }) })
    const { url, advance, records } = start(origin.port)
    expect(await (await fetch(`${url}/s`)).text()).toBe('kept')
    origin.stop(true)
    advance(10_000)
    const res = await fetch(`${url}/s`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('kept')
    expect(res.headers.get('cache-status')).toMatch(/^proxy; fwd=stale; ttl=-\d+; detail=stale-if-error$/)
    expect(await waitFor(() => records.length === 2)).toBe(true)
    expect(records[1]!.cache).toBe('stale')
    expect(records[1]!.error).toBe('CONNECT_REFUSED')
    // The stored body went to the client: its bytes are logged (they were 0).
    expect(records[1]!.bytes_out).toBe(4)
    // Beyond the window: the error comes through, with the cache's Cache-Status as every answer
    // it forwarded for (RFC 9211; it had none before the twentieth session), and so does a miss's.
    advance(400_000)
    const failed = await fetch(`${url}/s`)
    expect(failed.status).toBe(502)
    expect(failed.headers.get('cache-status')).toBe('proxy; fwd=stale')
    const miss = await fetch(`${url}/never-stored`)
    expect(miss.status).toBe(502)
    expect(miss.headers.get('cache-status')).toBe('proxy; fwd=uri-miss')
  })

  test('a stored response that answers instead of the upstream (after a 304, stale for a 5xx) is logged with its own bytes, not the 304\'s or the 5xx\'s', async () => {
    let status = 200
    const origin = h.origin({
      fetch: (req) => {
        if (status === 503) return new Response('down', { status: 503 })
        if (req.headers.get('if-none-match') === '"v1"') return new Response(null, { status: 304, headers: { etag: '"v1"', 'cache-control': 'max-age=0, stale-if-error=300' } })
        return new Response('stored body', { headers: { etag: '"v1"', 'cache-control': 'max-age=0, stale-if-error=300' } })
      },
    })
    const { url, advance, records } = start(origin.port)
    expect(await (await fetch(`${url}/r`)).text()).toBe('stored body')
    advance(1000)
    const revalidated = await fetch(`${url}/r`)
    expect(await revalidated.text()).toBe('stored body')
    expect(await waitFor(() => records.length === 2)).toBe(true)
    expect([records[1]!.cache, records[1]!.upstream_status, records[1]!.status, records[1]!.bytes_out]).toEqual(['revalidated', 304, 200, 11])
    status = 503
    advance(1000)
    const stale = await fetch(`${url}/r`)
    expect(await stale.text()).toBe('stored body')
    expect(await waitFor(() => records.length === 3)).toBe(true)
    expect([records[2]!.cache, records[2]!.upstream_status, records[2]!.status, records[2]!.bytes_out]).toEqual(['stale', 503, 200, 11])
  })

  test('purge: by URL and by prefix on the admin listener, answering {"purged": N}', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch() {
        upstream++
        return new Response('c', { headers: { 'cache-control': 'max-age=600' } })
      },
    })
    const { url, admin } = start(origin.port)
    for (const p of ['/a', '/a', '/dir/1', '/dir/2', '/dir/2']) await (await fetch(`${url}${p}`)).text()
    expect(upstream).toBe(3)
    const base = url // the key uses the Host the client sent: 127.0.0.1:port
    const one = await fetch(`${admin.url}/cache?url=${encodeURIComponent(`${base}/a`)}`, { method: 'DELETE' })
    expect(await one.json()).toEqual({ purged: 1 })
    const dir = await fetch(`${admin.url}/cache?prefix=${encodeURIComponent(`${base}/dir/`)}`, { method: 'DELETE' })
    expect(await dir.json()).toEqual({ purged: 2 })
    expect((await fetch(`${admin.url}/cache?url=nope`, { method: 'DELETE' })).status).toBe(400)
    expect((await fetch(`${admin.url}/cache?url=${encodeURIComponent(`${base}/a`)}`)).status).toBe(405)
    for (const p of ['/a', '/dir/1']) await (await fetch(`${url}${p}`)).text()
    expect(upstream).toBe(5)
    const status = (await (await fetch(`${admin.url}/status`)).json()) as { cache: { objects: number; bytes: number } }
    expect(status.cache.objects).toBe(2)
    expect(status.cache.bytes).toBeGreaterThan(0)
    const metrics = await (await fetch(`${admin.url}/metrics`)).text()
    expect(metrics).toContain('proxy_cache_requests_total{result="hit"} 2')
    expect(metrics).toContain('proxy_cache_purged_total 3')
    expect(metrics).toContain('proxy_cache_stored_objects 2')
  })

  test('private responses and responses to Authorization are never served to another client', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch(req) {
        upstream++
        const who = req.headers.get('authorization') ?? req.headers.get('cookie') ?? 'anonymous'
        const path = new URL(req.url).pathname
        const cc = path === '/private' ? 'private, max-age=600' : 'max-age=600'
        return new Response(`for ${who}`, { headers: { 'cache-control': cc } })
      },
    })
    const { url } = start(origin.port)
    expect(await (await fetch(`${url}/private`, { headers: { cookie: 'alice' } })).text()).toBe('for alice')
    expect(await (await fetch(`${url}/private`, { headers: { cookie: 'bob' } })).text()).toBe('for bob')
    expect(await (await fetch(`${url}/auth`, { headers: { authorization: 'Bearer alice' } })).text()).toBe('for Bearer alice')
    const anon = await fetch(`${url}/auth`)
    expect(await anon.text()).toBe('for anonymous')
    expect(anon.headers.get('cache-status')).toBe('proxy; fwd=uri-miss; stored')
    expect(upstream).toBe(4)
  })

  test('a POST that succeeds invalidates the stored GET of its URI', async () => {
    let gets = 0
    const origin = h.origin({
      fetch(req) {
        if (req.method === 'GET') gets++
        return new Response(req.method === 'GET' ? `v${gets}` : 'ok', { headers: { 'cache-control': 'max-age=600' } })
      },
    })
    const { url } = start(origin.port)
    expect(await (await fetch(`${url}/item`)).text()).toBe('v1')
    expect(await (await fetch(`${url}/item`)).text()).toBe('v1')
    const post = await fetch(`${url}/item`, { method: 'POST', body: 'x' })
    expect(post.headers.get('cache-status')).toBe('proxy; fwd=method')
    await post.text()
    expect(await (await fetch(`${url}/item`)).text()).toBe('v2')
    expect(gets).toBe(2)
  })

  test('HEAD from a stored GET, Age and the access log field; a route with cache = false bypasses', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch() {
        upstream++
        return new Response('body!', { headers: { 'cache-control': 'max-age=600' } })
      },
    })
    const { url, records, advance } = start(origin.port, { routes: [{ host: undefined, pathPrefix: '/nocache/', upstream: 'default', cache: false }] })
    await (await fetch(`${url}/h`)).text()
    advance(7000)
    const head = await fetch(`${url}/h`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe('5')
    expect(head.headers.get('age')).toBe('7')
    expect(head.headers.get('cache-status')).toMatch(/^proxy; hit; ttl=59\d$/)
    await (await fetch(`${url}/nocache/x`)).text()
    const bypassed = await fetch(`${url}/nocache/x`)
    await bypassed.text()
    expect(bypassed.headers.get('cache-status')).toBe('proxy; fwd=bypass')
    expect(upstream).toBe(3)
    expect(await waitFor(() => records.length === 4)).toBe(true)
    expect(records.map((r) => r.cache)).toEqual(['miss', 'hit', 'bypass', 'bypass'])
  })

  test('a Range request is answered from the stored 200 with a 206 of that part, through the HTTP/1.1 writer', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch() {
        upstream++
        return new Response('01234567890', { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    const { url } = start(origin.port)
    expect(await (await fetch(`${url}/r`)).text()).toBe('01234567890')
    const res = await fetch(`${url}/r`, { headers: { range: 'bytes=2-4' } })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe('bytes 2-4/11')
    expect(res.headers.get('content-length')).toBe('3')
    expect(await res.text()).toBe('234')
    expect(upstream).toBe(1)
  })

  test('collapsed requests whose shared body the upstream cut are logged with the cut when their body ends, not as whole 200s', async () => {
    // An origin that sends the head, then (once told) part of the body and closes.
    let cut: (() => void) | undefined
    const origin = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s) {
          s.write('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n')
          cut = () => {
            s.write('partial')
            s.end()
          }
        },
      },
    })
    h.track(() => origin.stop(true))
    const { url, cache, records } = start(origin.port)
    const clients = Array.from({ length: 3 }, () => rawClient(h, Number(new URL(url).port)))
    clients[0]!.s.write('GET /cut HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => cut !== undefined)).toBe(true)
    for (const c of clients.slice(1)) c.s.write('GET /cut HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => cache.counts.collapsed === 2)).toBe(true)
    cut!()
    // Every client sees the cut (the connection closes short of Content-Length: 100)...
    expect(await waitFor(() => clients.every((c) => c.closed()))).toBe(true)
    expect(clients.every((c) => c.got().endsWith('\r\n\r\npartial'))).toBe(true)
    // ...and every record says so, the collapsed ones too, with the bytes they got.
    expect(await waitFor(() => records.length === 3)).toBe(true)
    expect(records.map((r) => [r.cache, r.status, r.error, r.bytes_out]).sort()).toEqual([
      ['collapsed', 200, 'RESET_MID_BODY', 7],
      ['collapsed', 200, 'RESET_MID_BODY', 7],
      ['miss', 200, 'RESET_MID_BODY', 7],
    ])
  })
})
