/**
 * Faults survived and limits enforced, counted from the client's side: a silent upstream (504,
 * others unaffected), slow clients dribbling headers (served around, then cut), a client
 * vanishing mid-upload (the upstream request is cancelled), the per-address connection limit,
 * the request-head size limit and the concurrent-request limit.
 */
import { afterAll, afterEach, expect, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import { setMaxHeaderBytes } from '../../src/runtime/listener.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
// max_header_size is process-wide in Bun: leave the default for the test files that follow.
afterAll(() => setMaxHeaderBytes(16 * 1024))

/** Sends one raw request and returns the status line's code and the whole answer (connection: close). */
async function rawRequest(port: number, head: string): Promise<{ status: number; text: string }> {
  const s = connect(port, '127.0.0.1')
  h.track(() => void s.destroy())
  let text = ''
  s.on('data', (d) => (text += d.toString('latin1')))
  s.on('error', () => {})
  s.write(head)
  await new Promise<void>((r) => {
    s.once('close', () => r())
    setTimeout(r, 5000).unref()
  })
  return { status: Number(text.slice(9, 12)), text }
}

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

test('1,000 slow clients dribbling headers do not stop a normal request, and are cut at the header-read limit', async () => {
  let reached = 0
  const origin = h.origin({ fetch: () => (reached++, new Response('ok')) })
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { client_header_timeout: '3s' } })
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
  const recordsBefore = h.records.length
  const res = await fetch(url)
  expect(await res.text()).toBe('ok')
  // "Promptly": it completed while 1,000 connections were still dribbling (bounded by the test timeout).
  expect(slow.filter((s) => !s.destroyed).length).toBeGreaterThan(900)
  // The listener gives a client client_header_timeout (3 s here) to complete its request head,
  // however it dribbles: every dribbling connection is closed by then, with nothing forwarded,
  // and each refusal (408) is in the access log with its reason and a request id.
  expect(await waitFor(() => slow.every((s) => s.destroyed || s.readyState === 'closed' || !s.writable), 25_000, 250)).toBe(true)
  expect(reached).toBe(1)
  const after = h.records.slice(recordsBefore)
  expect(after.filter((r) => r.status === 200).length).toBe(1)
  const refusals = after.filter((r) => r.status !== 200)
  expect(refusals.length).toBe(1000)
  expect(refusals.every((r) => r.status === 408 && r.error === 'CLIENT_HEADER_TIMEOUT' && r.request_id.length > 0)).toBe(true)
  // Their request line had come whole: it is in the record (it said "-"); and the time is the
  // head's, from its first byte (it was the refusal's own, under a millisecond).
  expect(refusals.every((r) => r.method === 'GET' && r.path === '/')).toBe(true)
  expect(Math.min(...refusals.map((r) => r.duration_ms))).toBeGreaterThan(2000)
  expect(proxy.refused.header_timeout).toBe(1000)
}, 40_000)

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
  // More than the 64 KiB read-ahead, so the body is streaming upstream when the client vanishes.
  for (let i = 0; i < 80; i++) s.write(`400\r\n${'x'.repeat(1024)}\r\n`)
  expect(await waitFor(() => upstreamBytes >= 64 * 1024)).toBe(true)
  s.destroy()
  expect(await waitFor(() => upstreamAborted, 5000)).toBe(true)
  await waitFor(() => h.records.length > 0)
  expect(h.records.at(-1)!.error).toBe('CLIENT_GONE')
})

test('a client that disconnects while its small body is read ahead: nothing reaches the upstream', async () => {
  let reached = 0
  const origin = h.origin({
    fetch() {
      reached++
      return new Response('done')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const s = connect(proxy.port, '127.0.0.1')
  await new Promise<void>((r) => s.once('connect', () => r()))
  const before = h.records.length
  s.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
  for (let i = 0; i < 10; i++) s.write(`400\r\n${'x'.repeat(1024)}\r\n`)
  await Bun.sleep(100)
  s.destroy()
  expect(await waitFor(() => h.records.length > before)).toBe(true)
  expect(h.records.at(-1)!.error).toBe('CLIENT_GONE')
  expect(reached).toBe(0)
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
  expect(proxy.pool('default')!.connectsTotal).toBeLessThanOrEqual(4)
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
  const pool = proxy.pool('default')!
  expect(await waitFor(() => pool.addresses.get('127.0.0.3')!.activeHealthy === false, 3000)).toBe(true)
  const served = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.text())))
  expect(served.every((t) => t === 'A')).toBe(true)
  sick = false
  expect(await waitFor(() => pool.addresses.get('127.0.0.3')!.activeHealthy, 3000)).toBe(true)
  const later = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.text())))
  expect(later.filter((t) => t === 'B').length).toBeGreaterThan(0)
})

test('max_header_size: a request head over the limit gets 431 and nothing reaches the upstream; a larger limit lets it through', async () => {
  let seen = 0
  const origin = h.origin({
    fetch(req) {
      seen++
      return new Response(`got ${req.headers.get('x-big')?.length ?? 0}`)
    },
  })
  const small = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_header_size: '4KiB' } })
  const over = await rawRequest(small.proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`)
  expect(over.status).toBe(431)
  expect(seen).toBe(0)
  const under = await rawRequest(small.proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'b'.repeat(3000)}\r\n\r\n`)
  expect(under.status).toBe(200)
  expect(under.text.endsWith('got 3000')).toBe(true)
  await h.closeAll()

  const origin2 = h.origin({ fetch: (req) => new Response(`got ${req.headers.get('x-big')?.length ?? 0}`) })
  const large = h.proxy({ upstream: { url: `http://127.0.0.1:${origin2.port}` }, server: { max_header_size: '64KiB' } })
  // The origin here is a Bun.serve in this process, bound by Bun's process-wide head limit.
  setMaxHeaderBytes(64 * 1024)
  const big = await rawRequest(large.proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'b'.repeat(40_000)}\r\n\r\n`)
  expect(big.status).toBe(200)
  expect(big.text.endsWith('got 40000')).toBe(true)
})

/**
 * An origin answering /stream with its head and 'first;' at once, the rest when `onOpen`'s
 * finish is called (never, if it is not); anything else with 'quick'.
 */
function streamingOrigin(onOpen: (finish: () => void) => void = () => {}) {
  return h.origin({
    fetch(req) {
      if (new URL(req.url).pathname !== '/stream') return new Response('quick')
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('first;'))
          onOpen(() => {
            c.enqueue(new TextEncoder().encode('last'))
            c.close()
          })
        },
      })
      return new Response(body)
    },
  })
}

test('max_concurrent_requests: beyond the limit, 503 with Retry-After and the connection closed; streaming responses count until they end', async () => {
  const release: (() => void)[] = []
  // The body stays open until the test releases it.
  const origin = streamingOrigin((finish) => release.push(finish))
  h.track(() => release.forEach((r) => r()))
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_concurrent_requests: '3' } })
  const streams = await Promise.all(Array.from({ length: 3 }, () => fetch(`${url}/stream`)))
  expect(streams.map((r) => r.status)).toEqual([200, 200, 200])
  expect(await waitFor(() => release.length === 3)).toBe(true)

  const refused = await rawRequest(proxy.port, 'GET /quick HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(refused.status).toBe(503)
  expect(refused.text.toLowerCase()).toContain('retry-after: 1')
  expect(refused.text.toLowerCase()).toContain('connection: close')
  expect(proxy.refused.overload).toBe(1)

  release.splice(0).forEach((r) => r())
  expect(await Promise.all(streams.map((r) => r.text()))).toEqual(['first;last', 'first;last', 'first;last'])
  expect(await waitFor(() => proxy.pendingRequests === 0)).toBe(true)
  const after = await fetch(`${url}/quick`)
  expect(await after.text()).toBe('quick')
  expect(proxy.refused.overload).toBe(1)
})

test('max_concurrent_requests: clients that leave in the middle of a response stop counting (they were counted forever)', async () => {
  // The rest of each body never comes.
  const origin = streamingOrigin()
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_concurrent_requests: '2' } })
  for (let i = 0; i < 4; i++) {
    // A raw client that reads the head and the first part, then closes its socket.
    await new Promise<void>((done) => {
      const s = connect(proxy.port, '127.0.0.1', () => s.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n'))
      let got = ''
      s.on('data', (d) => {
        got += d.toString('latin1')
        if (got.includes('first;')) s.destroy()
      })
      s.on('close', () => done())
      s.on('error', () => {})
      h.track(() => void s.destroy())
    })
    expect(await waitFor(() => proxy.pendingRequests === 0)).toBe(true)
  }
  // Four have left, with a limit of two: the next request is served, not refused.
  const after = await fetch(`${url}/quick`)
  expect(after.status).toBe(200)
  expect(await after.text()).toBe('quick')
  expect(proxy.refused.overload).toBe(0)
})

test('a pooled keep-alive connection the origin resets on its next request: the request is sent again on a new connection to the only address (not a 502)', async () => {
  // Each origin connection answers its first request and resets on its second (a keep-alive
  // connection gone stale between requests, or an origin going away, as seen from the pool).
  const seen: string[] = []
  const origin = Bun.listen<{ n: number }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { n: 0 }
      },
      data(s, d) {
        seen.push(Buffer.from(d).toString('latin1').split(' ')[1]!)
        if (++s.data.n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        else s.terminate()
      },
    },
  })
  h.track(() => origin.stop(true))
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, retries: 0 } })
  const statuses: number[] = []
  for (const path of ['/a', '/b', '/c']) {
    const res = await fetch(`${url}${path}`)
    await res.text()
    statuses.push(res.status)
  }
  expect(statuses).toEqual([200, 200, 200])
  // /b and /c each reached the origin twice: on the pooled connection (reset), then on a new one.
  expect(seen).toEqual(['/a', '/b', '/b', '/c', '/c'])
})
