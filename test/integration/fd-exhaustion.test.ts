/**
 * A proxy out of file descriptors: an upstream connect fails in the proxy, and Bun reports it as
 * ECONNREFUSED, the same as a refusing port. It must not eject the (healthy) address: the request
 * gets 503 NO_FILE_DESCRIPTORS, the log says what is wrong and what to do, and once descriptors
 * are free again the address serves at once. The proxy runs as a child process (src/main.ts
 * under `ulimit -n 64`), against a loopback origin; idle client connections fill its table.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
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

test('out of file descriptors: 503 with a log line that says so, and the upstream address is not ejected', async () => {
  let served = 0
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => (served++, new Response('ok')) })
  cleanups.push(() => origin.stop(true))
  const serve = `ulimit -n 64; exec ${process.execPath} src/main.ts serve --upstream http://127.0.0.1:${origin.port} --listen 127.0.0.1:0 --admin off --access-log stderr --log-format json`
  const proxy = await startProxyProcess(['-c', serve], 'sh')
  cleanups.push(() => proxy.stop())
  let log = ''
  proxy.child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  const port = Number(new URL(proxy.url).port)

  // The asking client is accepted first, its head begun; then idle connections take every
  // descriptor left (the kernel completes more handshakes than the proxy can accept).
  const asking = await client(port)
  asking.s.write('GET /starved HTTP/1.1\r\nHost: a\r\n')
  await Bun.sleep(100)
  const fillers: Socket[] = []
  for (let i = 0; i < 80; i++) fillers.push((await client(port)).s)
  await Bun.sleep(300)
  asking.s.write('\r\n')
  expect(await waitFor(() => asking.got().includes('\r\n\r\n'), 5000)).toBe(true)
  expect(asking.got()).toMatch(/^HTTP\/1\.1 503 /)
  expect(asking.got()).toMatch(/\r\nretry-after: 1\r\n/i)
  expect(served).toBe(0)
  expect(await waitFor(() => log.includes('"path":"/starved"'), 3000)).toBe(true)
  expect(log).toContain('proxy is out of file descriptors')
  expect(log).toContain('LimitNOFILE')
  expect(log).toContain('NO_FILE_DESCRIPTORS')
  expect(log).not.toContain('upstream address ejected')

  // Descriptors free again: the same address answers at once (it was never out of rotation).
  for (const s of fillers) s.destroy()
  await Bun.sleep(300)
  const next = await client(port)
  next.s.write('GET /after HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => next.got().endsWith('ok'), 5000)).toBe(true)
  expect(next.got()).toMatch(/^HTTP\/1\.1 200 /)
  expect(log).not.toContain('upstream address ejected')
}, 30_000)
