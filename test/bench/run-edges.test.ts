/**
 * `proxy bench`'s run as a whole, where the thirteenth round of outside review found it wrong:
 * an --http2 run whose first dial fails, the connections of an HTTP/1.1 side beside an HTTP/2
 * one, a -d run's duration, flags that cannot apply, --slo beside --vs, the method as written,
 * counts at an interruption, a 5xx drawn alone. Servers on loopback started here.
 */
import { afterEach, expect, test } from 'bun:test'
import { createSecureServer } from 'node:http2'
import type { Socket } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { runBench } from '../../src/bench/runner.ts'
import { targetFor } from '../../src/commands/bench.ts'
import { createLookup } from '../../src/dns/lookup.ts'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'
import { testDir } from '../support/temp-dir.ts'
import { bench } from './run-bench.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An HTTPS origin of HTTP/1.1 only (ALPN http/1.1) that drops the first `drop` connections before the handshake, then answers each request with keep-alive. */
async function tlsHttp1(drop: number): Promise<{ port: number; ca: string }> {
  const c = makeCerts(['bench.test'], ['127.0.0.1'])
  const sockets = new Set<Socket>()
  let accepted = 0
  const raw = await import('node:net')
  const tls = createTlsServer({ cert: c.cert, key: c.key, ALPNProtocols: ['http/1.1'] }, (s) => {
    s.on('error', () => {})
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  })
  tls.on('tlsClientError', () => {})
  const front = raw.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    if (accepted++ < drop) return void s.destroy()
    tls.emit('connection', s)
  })
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    front.close()
    tls.close()
  })
  return { port: (front.address() as { port: number }).port, ca: c.caFile }
}

test('--http2 against an HTTP/1.1 server whose first connection fails: the other streams wait for a dial that works, and share no HTTP/1.1 connection (no BUSY)', async () => {
  const o = await tlsHttp1(1)
  const r = await bench([`https://127.0.0.1:${o.port}/`, '--cacert', o.ca, '--http2', '-n', '12', '-c', '1', '-m', '4', '--json'])
  expect(r.json.requests).toBe(12)
  expect(r.json.errors_by_kind).toEqual({ ECONNRESET: 1 })
  expect(r.json.status).toEqual({ '200': 11 })
})

test('an HTTP/1.1 side beside an HTTP/2 one has -c x -m connections, and says so in its concurrency', async () => {
  const c = makeCerts(['bench.test'], ['127.0.0.1'])
  const h2 = createSecureServer({ cert: c.cert, key: c.key }, (_req, res) => res.end('ok'))
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()))
  h.track(() => void h2.close())
  const plain = h.origin({ fetch: () => new Response('ok') })
  const port = (h2.address() as { port: number }).port
  const r = await bench([`http://127.0.0.1:${plain.port}/`, '--vs', `https://127.0.0.1:${port}/`, '--vs-http2', '--cacert', c.caFile, '-c', '1', '-m', '4', '-n', '16', '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(r.json.a.concurrency).toBe(4)
  expect(r.json.a.connections.opened).toBe(4)
  expect(r.json.b.concurrency).toBe(1)
  expect(r.json.b.streams).toBe(4)
  expect(r.json.b.connections.opened).toBe(1)
  const text = await bench([`http://127.0.0.1:${plain.port}/`, '--vs', `https://127.0.0.1:${port}/`, '--vs-http2', '--cacert', c.caFile, '-c', '1', '-m', '4', '-n', '8'])
  expect(text.err).toContain('with 4 connections (-c 1 x -m 4)')
})

test('-d with --rate: the run lasts the duration asked, and req/s is over it', async () => {
  const s = h.origin({ fetch: () => new Response('ok') })
  const r = await bench([`http://127.0.0.1:${s.port}/`, '-d', '1s', '--rate', '4', '-c', '1', '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(r.json.requests).toBe(4)
  expect(r.json.duration_ms).toBeGreaterThanOrEqual(1000)
  expect(r.json.rps).toBeLessThanOrEqual(4)
})

test('flags that cannot apply are usage errors: a rate slower than a timer can wait, -m with --no-keepalive', async () => {
  const tiny = await bench(['http://127.0.0.1:1/', '-n', '3', '--rate', '0.0000001'])
  expect(tiny.code).toBe(ExitCode.USAGE)
  expect(tiny.err).toContain('--rate')
  const m = await bench(['https://127.0.0.1:1/', '--http2', '-m', '8', '--no-keepalive', '-n', '2'])
  expect(m.code).toBe(ExitCode.USAGE)
  expect(m.err).toContain('--no-keepalive')
})

test('--slo with --vs names the side of each result, in text and JSON', async () => {
  const fast = h.origin({ fetch: () => new Response('ok') })
  const slow = h.origin({
    async fetch() {
      await Bun.sleep(60)
      return new Response('ok')
    },
  })
  const args = [`http://127.0.0.1:${fast.port}/`, '--vs', `http://127.0.0.1:${slow.port}/`, '-n', '4', '--slo', 'p50.total<40ms']
  const j = await bench([...args, '--json'])
  expect(j.code).toBe(ExitCode.SLO_BROKEN)
  expect(j.json.slo.map((r: { side: string; ok: boolean }) => [r.side, r.ok])).toEqual([
    ['a', true],
    ['b', false],
  ])
  const t = await bench(args)
  expect(t.out).toContain(`FAIL p50.total<40ms on http://127.0.0.1:${slow.port}/`)
  expect(t.err).toContain(`p50.total<40ms on http://127.0.0.1:${slow.port}/ broken`)
})

test('-X is sent as written, as curl does (a method is case-sensitive, RFC 9110 §9.1)', async () => {
  const o = await RawOrigin.start()
  h.track(() => o.close())
  const r = await bench([`http://127.0.0.1:${o.port}/`, '-X', 'purge', '-n', '1', '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(o.requests.map((q) => q.method)).toEqual(['purge'])
})

test('an interruption counts the request in flight on its connection', async () => {
  const o = await RawOrigin.start(() => {}) // never answers
  h.track(() => o.close())
  const abort = new AbortController()
  const t = targetFor(`http://127.0.0.1:${o.port}/`, [], [])
  const run = runBench({ targets: [t], spec: { method: 'GET', headers: [], body: undefined }, client: { timeoutMs: 10_000, insecure: false, ca: undefined, lookup: createLookup() }, requests: 1, durationMs: undefined, concurrency: 1, ratePerS: undefined, keepAlive: true, signal: abort.signal })
  for (let i = 0; i < 200 && o.requests.length === 0; i++) await Bun.sleep(10)
  abort.abort()
  const result = await run
  expect(result.interrupted).toBe(true)
  expect(result.connections.map((c) => c.requests)).toEqual([1])
})

test('one request answered 5xx is drawn as failed, as bench counts it', async () => {
  const s = h.origin({ fetch: () => new Response('down', { status: 502 }) })
  const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '1'])
  expect(r.code).toBe(ExitCode.BENCH_FAILED)
  expect(r.out).toContain('failed: 502')
})

test('--rate below a request per 24.8 days for the later loops: they wait in steps a timer can take (they fired at once), and Ctrl-C ends the wait (second-opinion review)', async () => {
  const o = await RawOrigin.start()
  h.track(() => o.close())
  const abort = new AbortController()
  const t = targetFor(`http://127.0.0.1:${o.port}/`, [], [])
  // 0.0000005/s: the second request is due 2e9 ms after the first, the third 4e9 ms (past 2^31-1).
  const run = runBench({ targets: [t], spec: { method: 'GET', headers: [], body: undefined }, client: { timeoutMs: 10_000, insecure: false, ca: undefined, lookup: createLookup() }, requests: 3, durationMs: undefined, concurrency: 3, ratePerS: 0.0000005, keepAlive: true, signal: abort.signal })
  await Bun.sleep(300)
  expect(o.requests.length).toBe(1)
  abort.abort()
  const result = await run
  expect(result.interrupted).toBe(true)
  expect(result.samples.length).toBe(1)
})

test('an answer whose head comes before the upload is all written and whose body comes after it: WAIT is 0, never negative (second-opinion review)', async () => {
  const file = join(testDir('bench-early2'), 'big.bin')
  writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 0x61))
  const sockets: Socket[] = []
  const { createServer } = await import('node:net')
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.once('data', () => {
      s.pause()
      s.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\n')
      // Reads the rest of the upload (the bench's write completes), then ends the answer.
      setTimeout(() => s.resume(), 50)
      setTimeout(() => s.destroyed || s.end('big!'), 400)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const r = await bench([`http://127.0.0.1:${(server.address() as { port: number }).port}/`, '--data-binary', `@${file}`, '-n', '1', '--json'])
  expect(r.json.status).toEqual({ '413': 1 })
  expect(r.json.phases.wait.min).toBeGreaterThanOrEqual(0)
})
