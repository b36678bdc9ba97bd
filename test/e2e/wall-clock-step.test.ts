/**
 * The compiled binary under libfaketime, its wall clock stepped while it runs (the monotonic clock
 * left real, as NTP leaves it): a cached response's age and the supervisor's restart back-off are
 * lengths of time, so a step must change neither (an outside review, twenty-second round: a step
 * back kept a max-age=5 response a hit with Age 0 for the length of the step, and a step forward
 * made a worker dying every half second look like one that had run 10 s); and on Deno the Date
 * given to a response without one follows the step both ways. Needs libfaketime (Debian:
 * faketime; .ci/run installs it); skipped without it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p))

const dir = testDir('proxy-clock-step-')
const servers: { stop(force?: boolean): unknown }[] = []
beforeAll(() => {
  if (LIB) ensureBinary()
})
afterAll(() => {
  servers.forEach((s) => s.stop(true))
  rmSync(dir, { recursive: true, force: true })
})

/** The proxy's environment under libfaketime: the offset is read from `file` at every clock reading. */
function fakeTimeEnv(file: string): NodeJS.ProcessEnv {
  writeFileSync(file, '+0')
  return { ...process.env, LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' }
}

/** The Date of the proxy's own answer (400) to a request with a bad Content-Length, sent raw. */
async function ownAnswerDateMs(url: string): Promise<number> {
  const { hostname, port } = new URL(url)
  const got = await new Promise<string>((resolve, reject) => {
    const sock = connect({ host: hostname, port: Number(port) }, () => sock.write('GET / HTTP/1.1\r\nhost: a\r\ncontent-length: x\r\n\r\n'))
    let text = ''
    sock.on('data', (d) => (text += d.toString('latin1')))
    sock.on('close', () => resolve(text))
    sock.on('error', reject)
    sock.setTimeout(5_000, () => sock.destroy())
  })
  expect(got.startsWith('HTTP/1.1 400')).toBe(true)
  return Date.parse(/\r\ndate: ([^\r]*)/i.exec(got)?.[1] ?? '')
}

describe.skipIf(!LIB)('a wall-clock step under libfaketime', () => {
  test('the libfaketime offset reaches the binary, and a step back does not keep a max-age=3 response fresh', async () => {
    let served = 0
    const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response(`n=${++served}`, { headers: { 'cache-control': 'max-age=3' } }) })
    servers.push(origin)
    const file = join(dir, 'cache.ft')
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', '--cache', '1MiB'], BIN, fakeTimeEnv(file))
    try {
      const get = async () => {
        const res = await fetch(`${proxy.url}/a`)
        return { body: await res.text(), status: res.headers.get('cache-status') ?? '' }
      }
      expect((await get()).body).toBe('n=1')
      const hit = await get()
      expect(hit.body).toBe('n=1')
      expect(hit.status).toContain('hit')
      // The proxy's own clock is the one stepped: the Date on a 400 of its own moves with it.
      writeFileSync(file, '-3600')
      expect(Date.now() - (await ownAnswerDateMs(proxy.url))).toBeGreaterThan(3_500_000)
      await Bun.sleep(4_000)
      const after = await get()
      expect(after.body).toBe('n=2')
      expect(served).toBe(2)
    } finally {
      await proxy.stop()
    }
  }, 30_000)

  test('--workers: the restart back-off keeps doubling for a worker that keeps dying when the clock steps forward an hour', async () => {
    const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
    servers.push(origin)
    const file = join(dir, 'workers.ft')
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', '--workers', '2'], BIN, fakeTimeEnv(file))
    const sup = proxy.child.pid!
    const children = (): number[] => {
      try {
        return execFileSync('pgrep', ['-P', String(sup)]).toString().trim().split('\n').filter(Boolean).map(Number)
      } catch {
        return []
      }
    }
    /** The supervisor's two workers (at most 5 s). */
    const twoWorkers = async (): Promise<number[]> => {
      let pids = children()
      for (let i = 0; i < 100 && pids.length < 2; i++) {
        await Bun.sleep(50)
        pids = children()
      }
      expect(pids).toHaveLength(2)
      return pids
    }
    const delays = () => [...proxy.stderr().matchAll(/worker died; restarting .*?restart_in_ms=(\d+)/g)].map((m) => Number(m[1]))
    /** Kills one slot's worker, waits for the restart, and returns the slot's new pid (at most 5 s each). */
    const killAndRestart = async (pid: number): Promise<number> => {
      const before = delays().length
      const others = (await twoWorkers()).filter((p) => p !== pid)
      process.kill(pid, 'SIGKILL')
      for (let i = 0; i < 100 && delays().length === before; i++) await Bun.sleep(50)
      await Bun.sleep(delays().at(-1) ?? 0)
      const next = (await twoWorkers()).find((p) => !others.includes(p) && p !== pid)
      expect(next).toBeGreaterThan(1)
      return next!
    }
    try {
      let pid = (await twoWorkers())[0]!
      pid = await killAndRestart(pid)
      pid = await killAndRestart(pid)
      writeFileSync(file, '+3600')
      await killAndRestart(pid)
      expect(delays()).toEqual([200, 400, 800])
    } finally {
      await proxy.stop()
    }
  }, 30_000)

  test('on Deno, a response without a Date from the origin gets the stepped clock\'s time, back and forth (Deno.serve froze its own for the length of a step back)', async () => {
    // An origin that sends no Date (Bun.serve adds one): raw HTTP/1.1, one short answer per request.
    const origin = createServer((sock) => {
      sock.on('data', () => sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'))
      sock.on('error', () => {})
    })
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r))
    servers.push({ stop: () => origin.close() })
    const file = join(dir, 'deno.ft')
    const port = (origin.address() as { port: number }).port
    const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off'], 'node_modules/.bin/deno', fakeTimeEnv(file))
    try {
      const skewMs = async () => {
        const res = await fetch(proxy.url)
        await res.text()
        return Date.parse(res.headers.get('date') ?? '') - Date.now()
      }
      expect(Math.abs(await skewMs())).toBeLessThan(5_000)
      writeFileSync(file, '+3600')
      expect(await skewMs()).toBeGreaterThan(3_500_000)
      writeFileSync(file, '+0')
      await Bun.sleep(1_100)
      expect(Math.abs(await skewMs())).toBeLessThan(5_000)
    } finally {
      await proxy.stop()
    }
  }, 30_000)
})
