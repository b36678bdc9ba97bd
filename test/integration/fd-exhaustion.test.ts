/**
 * A proxy near or out of file descriptors. Idle clients do not fill its table: past the open-files
 * budget (runtime/open-files.ts) a new client gets 503 at once. What can still fill it, one HTTP/2
 * client's streams each on its own upstream connection, makes an upstream connect fail in the
 * proxy, which Bun reports as ECONNREFUSED, the same as a refusing port: it must not eject the
 * (healthy) address; the request gets 503 NO_FILE_DESCRIPTORS, the log says what is wrong and
 * what to do, and once descriptors are free again the address serves at once. The proxy runs as
 * a child process (src/main.ts under `ulimit -n 64`), against a loopback origin.
 */
import { afterEach, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import * as http2 from 'node:http2'
import { connect, type Socket } from 'node:net'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { makeCerts } from '../support/certs.ts'
import { waitFor } from '../support/harness.ts'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A client connection to `port`, once connected; destroyed with the test. */
async function client(port: number): Promise<{ s: Socket; got: () => string }> {
  const s = connect(port, '127.0.0.1')
  let got = ''
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('error', () => {})
  cleanups.push(() => s.destroy())
  await new Promise<void>((r) => (s.once('connect', () => r()), s.once('close', () => r())))
  return { s, got: () => got }
}

/** `serve` from source under `ulimit -n 64` (an open-files budget of 32: runtime/open-files.ts), `extra` flags after the defaults. */
async function proxyUnder64(originPort: number | undefined, extra: string[] = [], limit = 64) {
  const serve = `ulimit -n ${limit}; exec ${process.execPath} src/main.ts serve --upstream http://127.0.0.1:${originPort} --listen 127.0.0.1:0 --admin off --access-log stderr --log-format json ${extra.join(' ')}`
  const proxy = await startProxyProcess(['-c', serve], 'sh')
  cleanups.push(() => proxy.stop())
  let log = ''
  proxy.child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  return { proxy, port: Number(new URL(proxy.url).port), log: () => log }
}

test('idle clients do not fill the descriptor table: past the open-files budget a new client is answered 503 at once, and the client being served is served (review, twenty-second round)', async () => {
  let served = 0
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => (served++, new Response('ok')) })
  cleanups.push(() => origin.stop(true))
  const { port, log } = await proxyUnder64(origin.port)
  const asking = await client(port)
  asking.s.write('GET /asked HTTP/1.1\r\nHost: a\r\n')
  await Bun.sleep(100)
  // Before, these took every descriptor left, the asking client's upstream connect failed (503
  // NO_FILE_DESCRIPTORS), and a connection past the full table was never answered while Bun's
  // accept loop spun on EMFILE. Now each one past the budget gets its 503 and is closed.
  const fillers: { s: Socket; got: () => string }[] = []
  for (let i = 0; i < 80; i++) fillers.push(await client(port))
  expect(await waitFor(() => fillers.filter((f) => f.got().startsWith('HTTP/1.1 503 ')).length >= 60, 5000)).toBe(true)
  const refused = fillers.find((f) => f.got().startsWith('HTTP/1.1 503 '))!
  expect(refused.got()).toContain('open-files limit')
  asking.s.write('\r\n')
  expect(await waitFor(() => asking.got().endsWith('ok'), 5000)).toBe(true)
  expect(asking.got()).toMatch(/^HTTP\/1\.1 200 /)
  expect(served).toBe(1)
  // A client arriving now is answered too (with the table full it waited in the accept queue).
  const late = await client(port)
  expect(await waitFor(() => late.got().includes('\r\n\r\n'), 5000)).toBe(true)
  expect(late.got()).toMatch(/^HTTP\/1\.1 503 /)
  expect(log()).toContain('raise LimitNOFILE= or ulimit -n')
  expect(log()).not.toContain('proxy is out of file descriptors')
}, 30_000)

test('out of file descriptors on the upstream side (one HTTP/2 client fanning out): 503 with a log line that says so, and the upstream address is not ejected', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let served = 0
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 30, fetch: async (req) => (new URL(req.url).pathname === '/slow' && (await held), served++, new Response('ok')) })
  cleanups.push(() => (release(), origin.stop(true)))
  const certs = makeCerts(['fd.test'])
  const { port, log } = await proxyUnder64(origin.port, ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile])
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(certs.caFile), servername: 'fd.test' })
  session.on('error', () => {})
  cleanups.push(() => void session.destroy())
  const ask = (path: string) =>
    new Promise<{ status: number; retryAfter: string | undefined }>((resolve) => {
      const s = session.request({ ':path': path, ':authority': 'fd.test' })
      s.on('response', (h) => resolve({ status: Number(h[':status']), retryAfter: h['retry-after'] as string | undefined }))
      s.on('error', () => resolve({ status: 0, retryAfter: undefined }))
      s.resume()
      s.end()
    })
  // 60 streams held at the origin: each its own upstream connection, more than the table holds.
  const answers = Array.from({ length: 60 }, () => ask('/slow'))
  expect(await waitFor(() => log().includes('NO_FILE_DESCRIPTORS'), 5000)).toBe(true)
  release()
  const got = await Promise.all(answers)
  const starved = got.filter((a) => a.status === 503)
  expect(starved.length).toBeGreaterThan(0)
  expect(starved.every((a) => a.retryAfter === '1')).toBe(true)
  expect(got.filter((a) => a.status === 200).length).toBe(60 - starved.length)
  expect(log()).toContain('proxy is out of file descriptors')
  expect(log()).toContain('LimitNOFILE')
  expect(log()).not.toContain('upstream address ejected')
  // Descriptors free again: the same address answers at once (it was never out of rotation).
  expect((await ask('/after')).status).toBe(200)
  expect(log()).not.toContain('upstream address ejected')
  // The fan-out left its upstream connections idle in the pool, past the budget: a new client
  // is still taken, the idle ones closed to make room (it was refused until pool_idle_timeout).
  const late = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(certs.caFile), servername: 'fd.test' })
  late.on('error', () => {})
  cleanups.push(() => void late.destroy())
  const lateStatus = await new Promise<number>((resolve) => {
    const s = late.request({ ':path': '/late', ':authority': 'fd.test' })
    s.on('response', (h) => resolve(Number(h[':status'])))
    s.on('error', () => resolve(0))
    s.resume()
    s.end()
  })
  expect(lateStatus).toBe(200)
}, 30_000)

test('over TLS past the budget, a connection cut at once because 64 refused ones already wait for their handshakes is counted and logged (review of the budget)', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const certs = makeCerts(['fd.test'])
  // ulimit -n 256: a budget of 160, 80 clients (each counted with an upstream connection).
  const { port, log } = await proxyUnder64(origin.port, ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile], 256)
  // Connections that never start their handshake: 80 taken, 64 waiting for theirs to be refused, the rest cut.
  for (let i = 0; i < 160; i++) await client(port)
  expect(await waitFor(() => log().includes('refused TLS connections already wait for their handshakes'), 5000)).toBe(true)
  expect(log()).toContain('at its open-files limit')
}, 30_000)

test('clients at their cap and an HTTP/2 fan-out that filled the table: the sweep closes idle pooled connections, so a new client is answered, not left to a spinning accept loop (review of the budget, r4)', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 30, fetch: async (req) => (new URL(req.url).pathname === '/slow' && (await held), new Response('ok')) })
  cleanups.push(() => (release(), origin.stop(true)))
  const certs = makeCerts(['fd.test'])
  // ulimit -n 64: a budget of 32, so 16 clients; 15 connections that never handshake, and the HTTP/2 one.
  const { port } = await proxyUnder64(origin.port, ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--client-header-timeout', '30s'])
  for (let i = 0; i < 15; i++) await client(port)
  const h2session = (name: string) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(certs.caFile), servername: 'fd.test' })
    s.on('error', () => {})
    cleanups.push(() => void s.destroy())
    return (path: string) =>
      new Promise<number>((resolve) => {
        const st = s.request({ ':path': path, ':authority': name })
        st.on('response', (h) => resolve(Number(h[':status'])))
        st.on('error', () => resolve(0))
        st.resume()
        st.end()
      })
  }
  const ask = h2session('fd.test')
  const answers = Array.from({ length: 60 }, () => ask('/slow'))
  await Bun.sleep(500)
  release()
  await Promise.all(answers)
  // The fan-out's connections are idle in the pool now, the table full. Before, a new client waited
  // unanswered (its accept failing, a core spinning) until pool_idle_timeout; now it is refused at once.
  expect(await h2session('fd.test')('/late')).toBe(503)
  // The client being served is still served.
  expect(await ask('/again')).toBe(200)
}, 30_000)
