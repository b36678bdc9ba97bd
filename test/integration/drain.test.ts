/**
 * The edges of a request's life at shutdown: /readyz answers 503 from the first moment of a
 * drain; an idle kept-alive connection is closed at once (a request that crossed the close is
 * its client's to retry); an open WebSocket tunnel is counted in the drain log and the drain ends
 * as soon as it closes; what is still in flight when drain_timeout runs out is cut and logged
 * DRAIN_TIMEOUT.
 */
import { afterEach, expect, test } from 'bun:test'
import type { LogFn } from '../../src/lib/logger.ts'
import { AdminServer } from '../../src/proxy/observe/admin.ts'
import { RequestMetrics } from '../../src/proxy/observe/metrics.ts'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { freePort, Harness, pausedClient, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

function proxyWithLog(originPort: number, admin = false) {
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort}` }, ...(admin ? { admin: { listen: '127.0.0.1:0' } } : {}) })
  const lines: Record<string, unknown>[] = []
  const log: LogFn = (level, msg, fields) => void lines.push({ level, msg, ...fields })
  const records: { status: number; error?: string; error_detail?: string; path: string; request_id: string }[] = []
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), log, hooks: { onRecord: (r) => records.push(r) } }).start()
  h.track(() => proxy.close())
  return { proxy, lines, records, config }
}

test('/readyz answers 503 from the first moment of a drain', async () => {
  let release!: () => void
  const origin = h.origin({
    fetch: () =>
      new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('head;'))
            release = () => c.close()
          },
        }),
      ),
  })
  const { proxy, config } = proxyWithLog(origin.port!, true)
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  expect((await fetch(`${admin.url}/readyz`)).status).toBe(200)
  expect(((await (await fetch(`${admin.url}/status`)).json()) as { draining: boolean }).draining).toBe(false)
  // A response in flight keeps the drain going while /readyz is asked.
  const inFlight = await fetch(`${proxy.url}/slow`)
  const draining = proxy.drain(10_000)
  const ready = await fetch(`${admin.url}/readyz`)
  expect(ready.status).toBe(503)
  expect(await ready.text()).toContain('draining')
  // /status says so too, as the supervisor's does with --workers (it had no such field; twentieth session).
  expect(((await (await fetch(`${admin.url}/status`)).json()) as { draining: boolean }).draining).toBe(true)
  release()
  await inFlight.text()
  await draining
})

test('a draining proxy lets go of its address: a successor listens there at once and serves while the drain goes on (outside review, twentieth round)', async () => {
  let release!: () => void
  const origin = h.origin({
    fetch: (req) =>
      new URL(req.url).pathname === '/slow'
        ? new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(new TextEncoder().encode('head;'))
                release = () => c.close()
              },
            }),
          )
        : new Response('from the successor'),
  })
  const { proxy } = proxyWithLog(origin.port!)
  const port = proxy.port
  const inFlight = await fetch(`${proxy.url}/slow`)
  const draining = proxy.drain(10_000)
  // It held the address's lock until its drain ended: a successor failed with "another proxy process listens".
  const next = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listen: `127.0.0.1:${port}` } }).proxy
  expect(next.port).toBe(port)
  expect(await (await fetch(`http://127.0.0.1:${port}/new`)).text()).toBe('from the successor')
  release()
  expect(await inFlight.text()).toBe('head;')
  await draining
})

test('a drain at shutdown closes an idle kept-alive connection at once, as nginx does: no 503 to a request that crossed the close', async () => {
  const origin = h.origin({ fetch: (req) => new Response(`ok ${new URL(req.url).pathname}`) })
  const { proxy } = proxyWithLog(origin.port!)
  const c = rawClient(h, proxy.port)
  c.s.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.got().includes('ok /first'))).toBe(true)
  // The connection is idle. A request that leaves in the same turn as the drain begins crosses the
  // close: its client retries it on a new connection (RFC 9112 §9.3.1), to another instance when
  // /readyz has taken this one out. A 503 would be an answer, which clients and load balancers do
  // not retry. (A reload keeps such a connection a moment and serves it: listener-reload.test.ts.)
  c.s.write('GET /second HTTP/1.1\r\nHost: a\r\n\r\n')
  await proxy.drain(10_000)
  expect(await waitFor(() => c.closed())).toBe(true)
  expect(c.got().slice(c.got().indexOf('ok /first') + 'ok /first'.length)).toBe('')
})

/** A proxy with its cache on before an origin of a 4 MiB cacheable body, stored by a first client: a hit is then one whole reply. */
async function storedBigBody(server: Record<string, string> = {}) {
  const big = new Uint8Array(4 << 20).fill(0x61)
  const origin = h.origin({ fetch: () => new Response(big, { headers: { 'cache-control': 'max-age=60' } }) })
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: 8 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server }
  const proxy = new ProxyServer(h.config(flags), { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { cache } }).start()
  h.track(() => proxy.close())
  const first = rawClient(h, proxy.port)
  first.s.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(await waitFor(() => first.closed())).toBe(true)
  expect(cache.store.objects).toBe(1)
  return { proxy, flags, bodyBytes: big.byteLength }
}

/** What came after the head of the first response, and whether another response followed. */
const afterHead = (got: string) => got.slice(got.indexOf('\r\n\r\n') + 4)

test('a drain does not cut a whole reply still on its way to a slow reader (a large cache hit): FIN after its last byte', async () => {
  const { proxy, bodyBytes } = await storedBigBody()
  // A second client, kept-alive, reads nothing at first: the hit is written whole, most of it queued.
  const c = rawClient(h, proxy.port)
  c.s.pause()
  c.s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  await Bun.sleep(200)
  const drained = proxy.drain(10_000)
  await Bun.sleep(100)
  c.s.resume()
  await drained
  expect(await waitFor(() => c.closed())).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(afterHead(c.got()).length).toBe(bodyBytes)
})

test('nor does the keep-alive timeout: a whole reply queued for a reader slower than keepalive_timeout is finished, then FIN', async () => {
  const { proxy, bodyBytes } = await storedBigBody({ keepalive_timeout: '1s' })
  const c = rawClient(h, proxy.port)
  c.s.pause()
  c.s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  await Bun.sleep(1600) // past keepalive_timeout, counted from when the reply was queued
  c.s.resume()
  expect(await waitFor(() => c.closed())).toBe(true)
  expect(afterHead(c.got()).length).toBe(bodyBytes)
})

test('the keep-alive timeout closes with a FIN, not a reset: a reply the kernel still holds for a slow reader reaches it whole (RFC 9112 §9.5)', async () => {
  // Small enough for the client socket's unsent bound: the proxy hands all of it to the kernel, the request is over, and keep-alive is timed.
  const body = 'k'.repeat(40 * 1024)
  const origin = h.origin({ fetch: () => new Response(body) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own', keepalive_timeout: '1s' }, log: { access_log: 'off' } })
  // A 4 KiB receive buffer: most of the body stays in the proxy's kernel send buffer.
  const { sock, got, closed } = await pausedClient(h, proxy.port)
  sock.write('GET /k HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  // The keep-alive timeout closes the connection while the client has read nothing.
  expect(await waitFor(() => proxy.clientConnections === 0, 5000, 50)).toBe(true)
  sock.resume()
  expect(await waitFor(closed, 5000)).toBe(true)
  expect(got()).toStartWith('HTTP/1.1 200 ')
  expect(afterHead(got())).toBe(body)
})

test('a request pipelined behind such a reply during a reload is answered whole in the grace, with Connection: close, then FIN: no second reply cut short', async () => {
  const { proxy, flags, bodyBytes } = await storedBigBody()
  const c = rawClient(h, proxy.port)
  c.s.pause()
  c.s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  await Bun.sleep(200)
  await proxy.reload(h.config({ ...flags, server: { listen: `127.0.0.1:${await freePort()}` } }))
  c.s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
  await Bun.sleep(100)
  c.s.resume()
  expect(await waitFor(() => c.closed())).toBe(true)
  // The first reply's head said keep-alive, so the client may have sent on: since the twenty-first
  // session the reload's grace covers it as an idle connection (the second request was left unread).
  const second = afterHead(c.got()).slice(bodyBytes)
  expect(second).toStartWith('HTTP/1.1 200 ')
  expect(second.toLowerCase()).toContain('\r\nconnection: close\r\n')
  expect(afterHead(second).length).toBe(bodyBytes)
})

test('an open WebSocket is counted in the drain log, and the drain ends as soon as it closes', async () => {
  const origin = h.origin({
    fetch(req, server) {
      if (server.upgrade(req, { data: {} })) return undefined
      return new Response('no', { status: 400 })
    },
    websocket: {
      message(ws, m) {
        ws.send(m)
      },
    },
  })
  const { proxy, lines } = proxyWithLog(origin.port!)
  const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/ws')
  h.track(() => ws.close())
  const echoed = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))))
  await new Promise<void>((resolve) => (ws.onopen = () => resolve()))
  ws.send('ping')
  expect(await echoed).toBe('ping')
  let drained = false
  // A long drain_timeout: only the tunnel closing can end the drain within this test.
  const draining = proxy.drain(60_000).then(() => (drained = true))
  expect(await waitFor(() => lines.some((l) => l.msg === 'drain started'))).toBe(true)
  expect(lines.find((l) => l.msg === 'drain started')).toMatchObject({ pending_requests: 0, open_tunnels: 1 })
  await Bun.sleep(200)
  expect(drained).toBe(false)
  ws.close()
  await draining
  expect(drained).toBe(true)
  expect(lines.some((l) => l.msg === 'drain timeout reached; cutting what is left')).toBe(false)
}, 30_000)

test('a download still running at drain_timeout is cut and logged DRAIN_TIMEOUT, not as a client leaving', async () => {
  const origin = h.origin({
    fetch: () =>
      new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('first part;'))
          },
        }),
      ),
  })
  const { proxy, lines, records } = proxyWithLog(origin.port!)
  const res = await fetch(`${proxy.url}/download`)
  const reader = res.body!.getReader()
  expect(new TextDecoder().decode((await reader.read()).value)).toBe('first part;')
  await proxy.drain(300)
  expect(lines.find((l) => l.msg === 'drain timeout reached; cutting what is left')).toMatchObject({ pending_requests: 1 })
  // The client sees a cut, not an end.
  let cut = false
  try {
    for (let i = 0; i < 10; i++) if ((await reader.read()).done) break
  } catch {
    cut = true
  }
  expect(cut).toBe(true)
  expect(await waitFor(() => records.some((r) => r.path === '/download'))).toBe(true)
  expect(records.find((r) => r.path === '/download')).toMatchObject({ status: 200, error: 'DRAIN_TIMEOUT' })
})

test('a request still waiting for its response head when drain_timeout runs out gets the 503 DRAIN_TIMEOUT its record says, with Connection: close (it was cut, logged 503)', async () => {
  const origin = h.origin({ fetch: () => new Promise<Response>(() => {}) }) // never answers
  const { proxy, records } = proxyWithLog(origin.port!)
  const pending = fetch(`${proxy.url}/hang`).then(
    async (r) => ({ status: r.status, connection: r.headers.get('connection'), id: r.headers.get('x-request-id'), body: await r.text() }),
    () => 'cut',
  )
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  await proxy.drain(300)
  const answer = await pending
  expect(answer).toMatchObject({ status: 503, connection: 'close', body: expect.stringContaining('cut at the end of drain_timeout') })
  expect(await waitFor(() => records.some((r) => r.path === '/hang'))).toBe(true)
  const record = records.find((r) => r.path === '/hang')
  // Its detail says what happened: the drain's end, not a client that left (it said so until the twenty-second session).
  expect(record).toMatchObject({ status: 503, error: 'DRAIN_TIMEOUT', error_detail: 'cut at the end of drain_timeout' })
  expect(records.filter((r) => r.path === '/hang')).toHaveLength(1)
  expect((answer as { id: string }).id).toBe(record!.request_id)
})

test('an upload still coming in at drain_timeout is cut with the rest: the drain ends then, not after the client stops sending', async () => {
  const origin = h.origin({ fetch: () => new Promise<Response>(() => {}) }) // never answers, never reads
  const { proxy } = proxyWithLog(origin.port!)
  const c = rawClient(h, proxy.port)
  c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n')
  let dribbleEnded = 0
  // 100 bytes every 100 ms for 10 s, or until the proxy closes the connection.
  const dribble = (async () => {
    for (let i = 0; i < 100 && !c.closed(); i++) {
      c.s.write('x'.repeat(100))
      await Bun.sleep(100)
    }
    dribbleEnded = performance.now()
  })()
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  await proxy.drain(300)
  const drained = performance.now()
  await dribble
  // The drain ended before the client stopped sending: it did not linger on the upload.
  expect(drained).toBeLessThanOrEqual(dribbleEnded)
  expect(c.closed()).toBe(true)
  // It was told why first: the 503 its record says (it was cut with nothing said, while logged 503; twenty-second session).
  expect(c.got()).toStartWith('HTTP/1.1 503 ')
  expect(c.got()).toContain('cut at the end of drain_timeout')
}, 30_000)

test('a request queued for an upstream connection (max_conns_per_address) at drain_timeout gets the 503 too, its detail the drain\'s (it said "client closed the connection before the request was sent")', async () => {
  const origin = h.origin({ fetch: () => new Promise<Response>(() => {}) }) // never answers
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: 1 } })
  const records: { path: string; status: number; error?: string; error_detail?: string }[] = []
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => records.push(r) } }).start()
  h.track(() => proxy.close())
  const ask = (path: string) => fetch(`${proxy.url}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }), () => 'cut')
  const first = ask('/first')
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  const queued = ask('/queued')
  expect(await waitFor(() => proxy.pendingRequests === 2)).toBe(true)
  await proxy.drain(300)
  for (const answer of [await first, await queued]) expect(answer).toMatchObject({ status: 503, body: expect.stringContaining('cut at the end of drain_timeout') })
  expect(await waitFor(() => records.length === 2)).toBe(true)
  for (const path of ['/first', '/queued']) expect(records.find((r) => r.path === path)).toMatchObject({ status: 503, error: 'DRAIN_TIMEOUT', error_detail: 'cut at the end of drain_timeout' })
})
