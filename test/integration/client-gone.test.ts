/**
 * A client that leaves before any answer (closes its connection, or resets its HTTP/2 stream)
 * has its upstream request aborted and is logged 499 CLIENT_GONE at once, as nginx does (with
 * proxy_ignore_client_abort off, its default), instead of the exchange running to its end and
 * being logged with the status nobody received. Raw clients on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import tls from 'node:tls'
import { Flag, frame, FrameType, PREFACE, rstStreamFrame, settingsFrame } from '../../src/http2/frames.ts'
import { H2Code } from '../../src/http2/errors.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { concatBytes } from '../../src/lib/bytes.ts'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/**
 * An origin that takes requests and never answers, and counts the connections that closed after
 * bringing one: the proxy aborting its upstream request. A test waits for the request to reach
 * it (`asked`) before its client leaves: a client that leaves while the first upstream connection
 * is still being dialled has its request never sent at all (flight.ts unsent), which is right, but
 * leaves no upstream request to see aborted (1 run in 3 on a busy machine had waited only for the
 * request path to have it).
 */
function silentOrigin() {
  const seen = { asked: 0, aborted: 0 }
  const server = Bun.listen<{ asked: boolean }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open: (s) => void (s.data = { asked: false }),
      data: (s) => void (s.data.asked || seen.asked++, (s.data.asked = true)),
      close: (s) => void (s.data.asked && seen.aborted++),
    },
  })
  h.track(() => server.stop(true))
  return { origin: { port: server.port }, seen }
}

test('HTTP/1.1: a client that closes before the answer is logged 499 at once and the upstream request is aborted', async () => {
  const { origin, seen } = silentOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const { s } = rawClient(h, proxy.port)
  s.write('GET /left HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => proxy.pendingRequests === 1 && seen.asked === 1)).toBe(true)
  s.destroy()
  expect(await waitFor(() => h.records.some((r) => r.path === '/left'), 2000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/left')!
  expect([rec.status, rec.error]).toEqual([499, 'CLIENT_GONE'])
  expect(rec.duration_ms).toBeLessThan(3000)
  expect(await waitFor(() => seen.aborted === 1, 2000)).toBe(true)
  const state = [...proxy.pool('default')!.addresses.values()][0]!
  expect(state.inFlight).toBe(0)
  // Not held against the address: the client's leaving is not the upstream's failure.
  expect(state.failures).toBe(0)
})

test('HTTP/2: a stream the client resets before the answer is logged 499 and its upstream request aborted; the connection goes on', async () => {
  const { origin, seen } = silentOrigin()
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  sock.on('error', () => {})
  await new Promise<void>((r) => sock.once('secureConnect', () => r()))
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/reset']])
  sock.write(concatBytes([PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
  expect(await waitFor(() => proxy.pendingRequests === 1 && seen.asked === 1)).toBe(true)
  sock.write(rstStreamFrame(1, H2Code.CANCEL))
  expect(await waitFor(() => h.records.some((r) => r.path === '/reset'), 2000)).toBe(true)
  expect(h.records.find((r) => r.path === '/reset')).toMatchObject({ status: 499, error: 'CLIENT_GONE' })
  expect(await waitFor(() => seen.aborted === 1, 2000)).toBe(true)
  expect(sock.destroyed).toBe(false)
})

test('a client that leaves while its request waits for a connection (max_conns_per_address) is logged 499 and its request is never sent', async () => {
  const arrived: string[] = []
  const origin = h.origin({
    fetch: async (req) => {
      const path = new URL(req.url).pathname
      arrived.push(path)
      await Bun.sleep(path === '/busy' ? 1500 : 10)
      return new Response(`ok ${path}`)
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: 1 } })
  const busy = fetch(`${proxy.url}/busy`).then((r) => r.text())
  expect(await waitFor(() => arrived.length === 1)).toBe(true)
  const { s } = rawClient(h, proxy.port)
  s.write('GET /queued HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => proxy.pendingRequests === 2)).toBe(true)
  s.destroy()
  expect(await busy).toBe('ok /busy')
  expect(await waitFor(() => h.records.some((r) => r.path === '/queued'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/queued')).toMatchObject({ status: 499, error: 'CLIENT_GONE' })
  // The freed connection serves the next request; the one whose client left never reached the origin.
  expect(await (await fetch(`${proxy.url}/next`)).text()).toBe('ok /next')
  expect(arrived).toEqual(['/busy', '/next'])
})

test('a client that leaves after its exchange ended (a 304 the cache refetches) never aborts the exchange another client now has on that connection', async () => {
  const seen: string[] = []
  const origin = h.origin({
    fetch: async (req) => {
      const path = new URL(req.url).pathname
      const conditional = req.headers.get('if-none-match')
      seen.push(path + (conditional ? ' (cond)' : ''))
      if (path === '/block') return Bun.sleep(500).then(() => new Response('block'))
      if (path === '/w') return Bun.sleep(1500).then(() => new Response('w-ok'))
      if (conditional) return new Response(null, { status: 304, headers: { etag: '"v2"' } })
      if (seen.filter((x) => x === '/r').length > 1) await Bun.sleep(1500)
      return new Response('r-body', { headers: { 'cache-control': 'max-age=1', etag: '"v1"' } })
    },
  })
  const cache = new EdgeCache({ maxBytes: 32 << 20, maxObjectBytes: 8 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: 1 } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())
  expect(await (await fetch(`${proxy.url}/r`)).text()).toBe('r-body')
  await Bun.sleep(1300) // the stored /r is stale now
  const block = fetch(`${proxy.url}/block`).then((r) => r.text())
  expect(await waitFor(() => seen.includes('/block'))).toBe(true)
  // F revalidates the stale /r; W waits for the one connection after it.
  const { s: f } = rawClient(h, proxy.port)
  f.write(`GET /r HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)
  await Bun.sleep(50)
  const w = fetch(`${proxy.url}/w`).then(async (r) => [r.status, await r.text()])
  await block
  // F's 304 is back and the connection went to W; F's refetch waits. Now F's client leaves.
  expect(await waitFor(() => seen.includes('/w'), 3000)).toBe(true)
  f.destroy()
  expect(await w).toEqual([200, 'w-ok'])
  expect(await waitFor(() => records.some((r) => r.path === '/w'), 3000)).toBe(true)
  expect(records.find((r) => r.path === '/w')).toMatchObject({ status: 200 })
}, 20_000)
