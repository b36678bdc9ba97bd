/**
 * The supervisor's admin (workers-admin.ts) in front of fake worker admin endpoints on loopback:
 * merged metrics, a worker that does not answer, counts carried over a restart, the token,
 * /readyz and /healthz for the whole, /status totals and DELETE /cache sent to every worker.
 */
import { afterEach, expect, test } from 'bun:test'
import { WorkersAdmin, type WorkerSlot } from '../../../src/proxy/observe/workers-admin.ts'

interface FakeWorker {
  metrics: string
  ready: boolean
  hang: boolean
  purged: number
  seenAuth: (string | null)[]
  url: string
}

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

function counters(worker: number, requests: number): string {
  return `# HELP proxy_requests_total Requests by status class.
# TYPE proxy_requests_total counter
proxy_requests_total{worker="${worker}",upstream="default",class="2xx"} ${requests}
# TYPE proxy_request_duration_seconds histogram
proxy_request_duration_seconds_bucket{worker="${worker}",upstream="default",le="+Inf"} ${requests}
proxy_request_duration_seconds_sum{worker="${worker}",upstream="default"} 1
proxy_request_duration_seconds_count{worker="${worker}",upstream="default"} ${requests}
# TYPE proxy_client_connections gauge
proxy_client_connections{worker="${worker}"} ${worker + 10}
`
}

function fakeWorker(worker: number, requests: number): FakeWorker {
  const releases: (() => void)[] = []
  const w: FakeWorker = { metrics: counters(worker, requests), ready: true, hang: false, purged: worker + 1, seenAuth: [], url: '' }
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      w.seenAuth.push(req.headers.get('authorization'))
      // A hung worker answers only when the test ends.
      if (w.hang) await new Promise<void>((resolve) => releases.push(resolve))
      const path = new URL(req.url).pathname
      if (path === '/metrics') return new Response(w.metrics)
      if (path === '/readyz' && new URL(req.url).searchParams.get('upstream') === 'nope') return new Response('no upstream named "nope"; known: default\n', { status: 404 })
      if (path === '/readyz') return w.ready ? new Response('ready\n') : new Response('not ready: no healthy address for upstream default\n', { status: 503 })
      if (path === '/healthz') return new Response('ok\n')
      if (path === '/cache') return Response.json({ purged: w.purged })
      return Response.json({ worker: String(worker), upstreams: { default: { connections_opened: 2, addresses: [{ address: '127.0.0.1', requests, failures: 1, in_flight: 0, open: 2, idle: 1 }] } }, cache: { bytes: 100, objects: 1 } })
    },
  })
  w.url = `http://127.0.0.1:${server.port}`
  cleanups.push(() => {
    releases.forEach((r) => r())
    return server.stop(true)
  })
  return w
}

function setup(token?: string) {
  const w0 = fakeWorker(0, 7)
  const w1 = fakeWorker(1, 5)
  const slots: WorkerSlot[] = [
    { index: 0, pid: 100, adminUrl: w0.url, restarts: 0 },
    { index: 1, pid: 101, adminUrl: w1.url, restarts: 0 },
  ]
  let draining = false
  const admin = new WorkersAdmin({ listen: undefined, token }, { workers: () => slots, draining: () => draining, scrapeTimeoutMs: 300 })
  const get = async (path: string, init?: RequestInit) => {
    const res = await admin.handle(new Request(`http://admin${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, ...init }))
    return { status: res.status, text: await res.text() }
  }
  return { w0, w1, slots, admin, get, drain: () => (draining = true) }
}

const total = (text: string) => Number(/^proxy_requests_total\{upstream="default",class="2xx"\} (\S+)$/m.exec(text)?.[1])

test('/metrics: counters and histograms summed over workers, gauges per worker, every worker up', async () => {
  const { get } = setup()
  const { status, text } = await get('/metrics')
  expect(status).toBe(200)
  expect(total(text)).toBe(12)
  expect(text).toContain('proxy_request_duration_seconds_count{upstream="default"} 12\n')
  expect(text).toContain('proxy_client_connections{worker="0"} 10\nproxy_client_connections{worker="1"} 11\n')
  expect(text).toContain('proxy_worker_up{worker="0"} 1\nproxy_worker_up{worker="1"} 1\n')
})

test('a worker that does not answer: up 0, and its last scraped counters kept so the sum never goes down', async () => {
  const { get, w1 } = setup()
  expect(total((await get('/metrics')).text)).toBe(12)
  w1.hang = true
  const { text } = await get('/metrics')
  expect(text).toContain('proxy_worker_up{worker="1"} 0\n')
  expect(total(text)).toBe(12)
  // Its gauges are not repeated from an old scrape.
  expect(text).not.toContain('proxy_client_connections{worker="1"}')
})

test('a worker that restarts: the dead one\'s counts are carried, the new one\'s added', async () => {
  const { get, admin, slots, w1 } = setup()
  expect(total((await get('/metrics')).text)).toBe(12)
  admin.workerExited(1, 101)
  slots[1] = { index: 1, pid: undefined, adminUrl: undefined, restarts: 1 }
  const between = await get('/metrics')
  expect(total(between.text)).toBe(12)
  expect(between.text).toContain('proxy_worker_up{worker="1"} 0\n')
  expect(between.text).toContain('proxy_worker_restarts_total{worker="1"} 1\n')
  w1.metrics = counters(1, 2)
  slots[1] = { index: 1, pid: 102, adminUrl: w1.url, restarts: 1 }
  expect(total((await get('/metrics')).text)).toBe(7 + 5 + 2)
})

test('the token: 401 without it; the supervisor passes it on to the workers', async () => {
  const { admin, get, w0 } = setup('s3cret')
  const res = await admin.handle(new Request('http://admin/metrics'))
  expect(res.status).toBe(401)
  expect(w0.seenAuth).toEqual([])
  expect((await get('/metrics')).status).toBe(200)
  expect(w0.seenAuth).toEqual(['Bearer s3cret'])
})

test('/readyz: every running worker ready; one not ready or silent makes 503 naming it; a restarting one does not; draining does', async () => {
  const { get, w1, slots, drain } = setup()
  expect(await get('/readyz')).toEqual({ status: 200, text: 'ready: 2 of 2 workers\n' })
  w1.ready = false
  const notReady = await get('/readyz')
  expect(notReady.status).toBe(503)
  expect(notReady.text).toContain('worker 1: not ready: no healthy address for upstream default')
  w1.ready = true
  w1.hang = true
  const silent = await get('/readyz')
  expect(silent.status).toBe(503)
  expect(silent.text).toContain('worker 1: no answer within 300 ms')
  slots[1] = { index: 1, pid: undefined, adminUrl: undefined, restarts: 1 }
  expect(await get('/readyz')).toEqual({ status: 200, text: 'ready: 1 of 2 workers\n' })
  slots[0] = { index: 0, pid: 200, adminUrl: undefined, restarts: 0 }
  expect((await get('/readyz')).status).toBe(503)
  drain()
  expect(await get('/readyz')).toEqual({ status: 503, text: 'not ready: draining\n' })
})

test('/readyz?upstream=NAME is asked of every worker; a name none knows is their 404, passed back (twentieth session)', async () => {
  const { get } = setup()
  expect(await get('/readyz?upstream=default')).toEqual({ status: 200, text: 'ready: 2 of 2 workers\n' })
  expect(await get('/readyz?upstream=nope')).toEqual({ status: 404, text: 'no upstream named "nope"; known: default\n' })
})

test('/healthz: ok while a worker answers, 503 when none does', async () => {
  const { get, slots } = setup()
  expect(await get('/healthz')).toEqual({ status: 200, text: 'ok: 2 of 2 workers\n' })
  slots[0]!.pid = undefined
  slots[1]!.pid = undefined
  expect((await get('/healthz')).status).toBe(503)
})

test('/status: each worker\'s status, and totals over them', async () => {
  const { get, w1 } = setup()
  w1.hang = true
  const body = JSON.parse((await get('/status')).text)
  expect(body.workers.map((w: { worker: string; up: boolean }) => [w.worker, w.up])).toEqual([['0', true], ['1', false]])
  expect(body.workers[1].error).toBe('no answer within 300 ms')
  expect(body.workers[0].status.worker).toBe('0')
  expect(body.totals).toEqual({ workers: 2, workers_up: 1, upstreams: { default: { connections_opened: 2, requests: 7, failures: 1, in_flight: 0, open: 2, idle: 1 } }, cache: { bytes: 100, objects: 1 } })
  w1.hang = false
  const both = JSON.parse((await get('/status')).text)
  expect(both.totals.upstreams.default.requests).toBe(12)
  expect(both.totals.cache.bytes).toBe(200)
})

test('DELETE /cache goes to every worker; the purged counts add up', async () => {
  const { get } = setup()
  const res = await get('/cache?url=https%3A%2F%2Fexample.com%2F', { method: 'DELETE' })
  expect(res.status).toBe(200)
  expect(JSON.parse(res.text)).toEqual({ purged: 3, workers: [{ worker: '0', purged: 1 }, { worker: '1', purged: 2 }] })
  expect((await get('/cache', { method: 'GET' })).status).toBe(405)
})
