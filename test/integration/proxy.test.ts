/** End-to-end behaviour of the data path: real Bun origins and real clients on loopback. */
import { afterEach, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const enc = new TextEncoder()

describe('forwarding', () => {
  test('GET is forwarded with Host kept, X-Forwarded-*, and a request id returned', async () => {
    let seen: Headers | undefined
    const origin = h.origin({
      fetch(req) {
        seen = req.headers
        return new Response('ok', { headers: { 'keep-alive': 'timeout=5', connection: 'x-secret', 'x-secret': 'hop', 'x-kept': 'yes' } })
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const res = await fetch(`${url}/path?q=1`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-client': 'c', te: 'trailers' } })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ok')
    expect(seen!.get('host')).toBe(new URL(url).host)
    // Untrusted peer: its X-Forwarded-For is replaced, not appended.
    expect(seen!.get('x-forwarded-for')).toBe('127.0.0.1')
    expect(seen!.get('x-forwarded-proto')).toBe('http')
    expect(seen!.get('x-forwarded-host')).toBe(new URL(url).host)
    expect(seen!.get('x-client')).toBe('c')
    expect(seen!.get('te')).toBeNull()
    expect(seen!.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(res.headers.get('x-request-id')).toBe(seen!.get('x-request-id'))
    // Hop-by-hop response headers, and those Connection lists, are removed.
    expect(res.headers.get('keep-alive')).toBeNull()
    expect(res.headers.get('x-secret')).toBeNull()
    expect(res.headers.get('x-kept')).toBe('yes')
  })

  test('a client X-Request-Id is kept; a fixed host_header replaces Host', async () => {
    let host = ''
    let rid = ''
    const origin = h.origin({
      fetch(req) {
        host = req.headers.get('host')!
        rid = req.headers.get('x-request-id')!
        return new Response('ok')
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, host_header: 'origin.example' } })
    const res = await fetch(url, { headers: { 'x-request-id': 'abc-123' } })
    await res.text()
    expect(host).toBe('origin.example')
    expect(rid).toBe('abc-123')
    expect(res.headers.get('x-request-id')).toBe('abc-123')
  })

  test('an X-Request-Id the client lists in Connection is hop-by-hop: not taken as the id, a new one is made (RFC 9110 §7.6.1)', async () => {
    const ids: string[] = []
    const origin = h.origin({
      fetch(req) {
        ids.push(req.headers.get('x-request-id')!)
        return new Response('ok')
      },
    })
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const c = rawClient(h, proxy.port)
    c.s.write('GET /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Request-Id\r\nX-Request-Id: hop-1\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('ok'), 3000)).toBe(true)
    c.clear()
    c.s.write('GET /b HTTP/1.1\r\nHost: a\r\nX-Request-Id: end-2\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('ok'), 3000)).toBe(true)
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/)
    expect(ids[1]).toBe('end-2')
  })

  test('trusted proxies have X-Forwarded-For appended to', async () => {
    let xff = ''
    const origin = h.origin({
      fetch(req) {
        xff = req.headers.get('x-forwarded-for')!
        return new Response('ok')
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { trusted_proxies: ['127.0.0.0/8'] } })
    await (await fetch(url, { headers: { 'x-forwarded-for': '203.0.113.9' } })).text()
    expect(xff).toBe('203.0.113.9, 127.0.0.1')
  })

  test('bodies pass byte for byte and are never decompressed', async () => {
    const gz = Bun.gzipSync(enc.encode('x'.repeat(10000)))
    const origin = h.origin({ fetch: () => new Response(gz, { headers: { 'content-encoding': 'gzip' } }) })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const res = await fetch(url, { decompress: false } as RequestInit)
    expect(res.headers.get('content-encoding')).toBe('gzip')
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(gz)
  })

  test('keep-alive: sequential requests reuse one upstream connection', async () => {
    const origin = h.origin({ fetch: () => new Response('ok') })
    const { url, proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const before = h.records.length // the harness keeps every test's records
    for (let i = 0; i < 20; i++) await (await fetch(url)).text()
    expect(proxy.pool('default')!.connectsTotal).toBe(1)
    expect(h.records.slice(before).filter((r) => r.upstream_reused).length).toBe(19)
  })

  test('concurrent requests open no more upstream connections than the concurrency', async () => {
    const origin = h.origin({
      async fetch() {
        await Bun.sleep(5)
        return new Response('ok')
      },
    })
    const { url, proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const concurrency = 32
    for (let round = 0; round < 5; round++) {
      const rs = await Promise.all(Array.from({ length: concurrency }, () => fetch(url).then((r) => r.text())))
      expect(rs.every((t) => t === 'ok')).toBe(true)
    }
    expect(proxy.pool('default')!.connectsTotal).toBeLessThanOrEqual(concurrency)
  })
})

describe('streaming', () => {
  test('request body streams to the upstream (chunked upload, large)', async () => {
    const origin = h.origin({
      async fetch(req) {
        let n = 0
        for await (const chunk of req.body!) n += (chunk as Uint8Array).byteLength
        return new Response(String(n))
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const chunk = new Uint8Array(64 * 1024).fill(7)
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 32 * 1024 * 1024) return c.close()
        sent += chunk.byteLength
        c.enqueue(chunk)
      },
    })
    const res = await fetch(url, { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(await res.text()).toBe(String(32 * 1024 * 1024))
  })

  test('server-sent events reach the client as they are sent', async () => {
    const origin = h.origin({
      fetch() {
        return new Response(
          new ReadableStream({
            async start(c) {
              for (let i = 0; i < 3; i++) {
                c.enqueue(enc.encode(`data: ${i}\n\n`))
                await Bun.sleep(150)
              }
              c.close()
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        )
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const t0 = performance.now()
    const res = await fetch(url)
    const reader = res.body!.getReader()
    const first = await reader.read()
    const firstAt = performance.now() - t0
    expect(new TextDecoder().decode(first.value)).toContain('data: 0')
    let rest = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      rest += new TextDecoder().decode(value)
    }
    const totalAt = performance.now() - t0
    expect(rest).toContain('data: 2')
    // The first event arrived well before the stream ended (not buffered to the end).
    expect(firstAt).toBeLessThan(totalAt - 200)
  })

  test('Content-Length is kept when the whole body arrives with the head', async () => {
    const origin = h.origin({ fetch: () => new Response('hello world') })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const res = await fetch(url)
    expect(res.headers.get('content-length')).toBe('11')
    expect(await res.text()).toBe('hello world')
  })
})

describe('methods, versions and body limits', () => {
  test('HEAD: the head with its Content-Length, and no body', async () => {
    const origin = h.origin({ fetch: () => new Response('twelve bytes') })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const res = await fetch(url, { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-length')).toBe('12')
    expect(await res.text()).toBe('')
  })

  test('an HTTP/1.0 client gets a chunked upstream body whole, without chunk framing', async () => {
    const origin = h.origin({
      fetch: () =>
        new Response(
          new ReadableStream({
            async start(ctl) {
              ctl.enqueue(enc.encode('part one, '))
              await Bun.sleep(20)
              ctl.enqueue(enc.encode('part two'))
              ctl.close()
            },
          }),
        ),
    })
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const reply = await new Promise<string>((resolve) => {
      const s = connect(proxy.port, '127.0.0.1')
      h.track(() => void s.destroy())
      let got = ''
      s.on('data', (d) => (got += d.toString('latin1')))
      s.on('close', () => resolve(got))
      s.on('error', () => resolve(got))
      s.write('GET / HTTP/1.0\r\nHost: a\r\n\r\n')
    })
    expect(reply).toMatch(/^HTTP\/1\.[01] 200 /)
    expect(reply.toLowerCase()).not.toContain('transfer-encoding: chunked')
    expect(reply.slice(reply.indexOf('\r\n\r\n') + 4)).toBe('part one, part two')
  })

  test('max_body_size: a declared or chunked body over the limit gets 413 and nothing reaches the upstream', async () => {
    let reached = 0
    const origin = h.origin({
      async fetch(req) {
        reached++
        return new Response(`got ${(await req.arrayBuffer()).byteLength}`)
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_body_size: '1KiB' } })
    const declared = await fetch(url, { method: 'POST', body: 'x'.repeat(2048) })
    expect(declared.status).toBe(413)
    const chunked = await fetch(url, {
      method: 'POST',
      body: new ReadableStream({
        start(ctl) {
          ctl.enqueue(enc.encode('y'.repeat(1500)))
          ctl.close()
        },
      }),
    })
    expect(chunked.status).toBe(413)
    expect(reached).toBe(0)
    const within = await fetch(url, { method: 'POST', body: 'z'.repeat(1000) })
    expect(await within.text()).toBe('got 1000')
    expect(reached).toBe(1)
  })
})

describe('errors and timeouts', () => {
  test('connection refused -> 502 with the reason and the request id', async () => {
    const dead = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = dead.port
    dead.stop(true)
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, retries: '0' } })
    const res = await fetch(url)
    expect(res.status).toBe(502)
    const text = await res.text()
    expect(text).toContain('refused')
    expect(text).toContain(res.headers.get('x-request-id')!)
    expect(h.records.at(-1)!.error).toBe('CONNECT_REFUSED')
  })

  test('no response head within header_timeout -> 504', async () => {
    const origin = h.origin({
      async fetch() {
        await Bun.sleep(3000)
        return new Response('late')
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, header_timeout: '300ms' } })
    const res = await fetch(url)
    expect(res.status).toBe(504)
    expect(h.records.at(-1)!.error).toBe('HEADER_TIMEOUT')
  })

  test('connect timeout -> 504 (a listener whose accept queue is full never completes the handshake)', async () => {
    // 127.0.0.1 with a port that accepts nothing would refuse; instead use a TCP server that
    // never accepts: a backlog-0 listener is not portable, so the dial function is slowed.
    const { url, proxy } = h.proxy({ upstream: { url: 'http://127.0.0.1:9', connect_timeout: '200ms', retries: '0' } })
    const pool = proxy.pool('default')!
    ;(pool as unknown as { dialFn: unknown }).dialFn = (o: { connectTimeoutMs: number }) =>
      new Promise((_, reject) => setTimeout(() => reject(Object.assign(new (require('../../src/runtime/socket.ts').DialError)('CONNECT_TIMEOUT', `timed out after ${o.connectTimeoutMs}ms`))), o.connectTimeoutMs))
    const res = await fetch(url)
    expect(res.status).toBe(504)
    expect(h.records.at(-1)!.error).toBe('CONNECT_TIMEOUT')
  })

  test('the upstream dying mid-body aborts the client response (never a clean truncated end)', async () => {
    // A raw TCP origin that promises 1 MB and closes after 1 KB.
    const server = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s) {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n' + 'x'.repeat(1024))
          setTimeout(() => s.terminate(), 50)
        },
      },
    })
    h.track(() => server.stop(true))
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${server.port}` } })
    const res = await fetch(url)
    expect(res.status).toBe(200)
    let failed = false
    try {
      await res.arrayBuffer()
    } catch {
      failed = true
    }
    expect(failed).toBe(true)
    await waitFor(() => h.records.length > 0)
    expect(h.records.at(-1)!.error).toBe('RESET_MID_BODY')
  })

  test('a client that goes away cancels the upstream request', async () => {
    let upstreamCancelled = false
    const origin = h.origin({
      fetch() {
        return new Response(
          new ReadableStream({
            async pull(c) {
              await Bun.sleep(20)
              c.enqueue(new Uint8Array(1024))
            },
            cancel() {
              upstreamCancelled = true
            },
          }),
        )
      },
    })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const u = new URL(url)
    const sock = connect(Number(u.port), u.hostname)
    await new Promise<void>((r) => sock.once('connect', () => r()))
    sock.write(`GET /stream HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`)
    await new Promise<void>((r) => sock.once('data', () => r()))
    sock.destroy()
    expect(await waitFor(() => upstreamCancelled, 5000)).toBe(true)
    await waitFor(() => h.records.length > 0)
    expect(h.records.at(-1)!.error).toBe('CLIENT_GONE')
  })

  test('CONNECT is refused: no open proxy', async () => {
    const origin = h.origin({ fetch: () => new Response('should not be reached') })
    let reached = 0
    origin.reload({ fetch: () => (reached++, new Response('x')) } as Parameters<typeof origin.reload>[0])
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const u = new URL(url)
    const reply = await rawRequest(u.port, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`)
    expect(reply).toMatch(/^HTTP\/1\.1 (400|405)/)
    expect(reached).toBe(0)
  })

  test('503 with a clear reason while no address is known', async () => {
    const { url } = h.proxy({ upstream: { url: 'http://origin.invalid:80' } }, { addresses: [] })
    const res = await fetch(url)
    expect(res.status).toBe(503)
    expect(await res.text()).toContain('not resolved yet')
  })
})

describe('retries', () => {
  test('a refused address is ejected and the request is retried on another address', async () => {
    const good = h.origin({ hostname: '127.0.0.2', fetch: () => new Response('good') })
    const bad = Bun.serve({ hostname: '127.0.0.3', port: good.port, fetch: () => new Response('') })
    bad.stop(true)
    const { url, proxy, source } = h.proxy(
      { upstream: { url: `http://upstream.test:${good.port}` } },
      { addresses: [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }] },
    )
    const results = await Promise.all(Array.from({ length: 40 }, () => fetch(url).then((r) => r.status)))
    expect(results.every((s) => s === 200)).toBe(true)
    const stats = proxy.pool('default')!.stats()
    expect(stats.find((s) => s.address === '127.0.0.3')!.healthy).toBe(false)
    expect((source as unknown as { refreshes: number }).refreshes).toBeGreaterThan(0)
  })
})

function rawRequest(port: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1')
    let out = ''
    sock.on('data', (d) => (out += d.toString('latin1')))
    sock.on('close', () => resolve(out))
    sock.on('error', reject)
    sock.write(text)
    setTimeout(() => {
      sock.destroy()
      resolve(out)
    }, 1000)
  })
}
