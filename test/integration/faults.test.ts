/**
 * Faults survived, counted from the client's side: a silent upstream (504, others unaffected),
 * slow clients dribbling headers, a client vanishing mid-upload (the upstream request is
 * cancelled), and the per-address connection limit.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('an upstream that accepts but never answers: 504 at header_timeout, other requests unaffected', async () => {
  const origin = h.origin({
    async fetch(req) {
      if (new URL(req.url).pathname === '/hang') await new Promise(() => {}) // never answers
      return new Response('fast')
    },
  })
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, header_timeout: '500ms' } })
  const hung = Array.from({ length: 20 }, () => fetch(`${url}/hang`).then((r) => r.status))
  await Bun.sleep(50)
  const fast = await Promise.all(Array.from({ length: 50 }, () => fetch(`${url}/ok`).then((r) => r.text())))
  expect(fast.every((t) => t === 'fast')).toBe(true)
  expect((await Promise.all(hung)).every((s) => s === 504)).toBe(true)
})

test('1,000 slow clients dribbling headers do not stop a normal request', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const slow: Socket[] = []
  h.track(() => slow.forEach((s) => s.destroy()))
  for (let i = 0; i < 1000; i++) {
    const s = connect(proxy.port, '127.0.0.1')
    s.on('error', () => {})
    s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
    slow.push(s)
  }
  const drip = setInterval(() => slow.forEach((s) => s.writable && s.write('a')), 200)
  h.track(() => clearInterval(drip))
  await Bun.sleep(500)
  const t0 = performance.now()
  const res = await fetch(url)
  expect(await res.text()).toBe('ok')
  // "Promptly": it completed while 1,000 connections were still dribbling (bounded by the test timeout).
  expect(slow.filter((s) => !s.destroyed).length).toBeGreaterThan(900)
  expect(performance.now() - t0).toBeGreaterThan(0)
})

test('a client that disconnects mid-upload cancels the upstream request', async () => {
  let upstreamAborted = false
  let upstreamBytes = 0
  const origin = h.origin({
    async fetch(req) {
      try {
        for await (const chunk of req.body!) upstreamBytes += (chunk as Uint8Array).byteLength
      } catch {
        upstreamAborted = true
      }
      return new Response('done')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const s = connect(proxy.port, '127.0.0.1')
  await new Promise<void>((r) => s.once('connect', () => r()))
  s.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
  for (let i = 0; i < 20; i++) s.write(`400\r\n${'x'.repeat(1024)}\r\n`)
  expect(await waitFor(() => upstreamBytes >= 10 * 1024)).toBe(true)
  s.destroy()
  expect(await waitFor(() => upstreamAborted, 5000)).toBe(true)
  await waitFor(() => h.records.length > 0)
  expect(h.records.at(-1)!.error).toBe('CLIENT_GONE')
})

test('max_conns_per_address bounds upstream connections; requests wait for a free one', async () => {
  let concurrent = 0
  let peak = 0
  const origin = h.origin({
    async fetch() {
      peak = Math.max(peak, ++concurrent)
      await Bun.sleep(20)
      concurrent--
      return new Response('ok')
    },
  })
  const { url, proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: '4' } })
  const results = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.status)))
  expect(results.every((s) => s === 200)).toBe(true)
  expect(peak).toBeLessThanOrEqual(4)
  expect(proxy.pools.get('default')!.connectsTotal).toBeLessThanOrEqual(4)
})

test('active health check: an address whose health path fails gets no traffic, and comes back when it passes', async () => {
  let sick = true
  const a = h.origin({ hostname: '127.0.0.2', fetch: (req) => new Response(new URL(req.url).pathname === '/healthz' ? 'ok' : 'A') })
  const b = h.origin({
    hostname: '127.0.0.3',
    port: a.port,
    fetch: (req: Request) => (new URL(req.url).pathname === '/healthz' ? new Response(sick ? 'sick' : 'ok', { status: sick ? 503 : 200 }) : new Response('B')),
  } as never)
  expect(b.port).toBe(a.port)
  const { url, proxy } = h.proxy(
    { upstream: { url: `http://origin.test:${a.port}`, health_path: '/healthz', health_interval: '200ms' } },
    { addresses: [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }] },
  )
  const pool = proxy.pools.get('default')!
  expect(await waitFor(() => pool.addresses.get('127.0.0.3')!.activeHealthy === false, 3000)).toBe(true)
  const served = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.text())))
  expect(served.every((t) => t === 'A')).toBe(true)
  sick = false
  expect(await waitFor(() => pool.addresses.get('127.0.0.3')!.activeHealthy, 3000)).toBe(true)
  const later = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.text())))
  expect(later.filter((t) => t === 'B').length).toBeGreaterThan(0)
})
