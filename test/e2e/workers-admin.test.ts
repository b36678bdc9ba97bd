/**
 * One admin endpoint for --workers 2, with the compiled binary: the configured admin address
 * serves /metrics merged over both workers (the request counter and the duration histogram's
 * count equal the requests sent, whichever worker took them), /status with both workers and
 * totals, /readyz for the whole, and the token on the merged endpoint.
 */
import { afterEach, beforeAll, expect, test } from 'bun:test'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

beforeAll(() => {
  ensureBinary()
})
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

interface MergedStatus {
  workers: { worker: string; pid: number; up: boolean; admin: string; status: { upstreams: { default: { addresses: { requests: number }[] } } } }[]
  totals: { upstreams: { default: { requests: number } } }
}

/** Starts the binary and waits for the supervisor's admin URL and both workers' "proxy listening". */
async function startWorkers(args: string[]): Promise<{ child: ChildProcess; admin: string; url: string; stderr(): string; stop(): Promise<number | null> }> {
  const child = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const stop = () =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode)
      child.once('exit', (code) => resolve(code))
      child.kill('SIGTERM')
    })
  cleanups.push(stop)
  return new Promise((resolve, reject) => {
    let err = ''
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 15_000)
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      const admin = /supervisor started .*admin=(\S+)/.exec(err)
      const listening = [...err.matchAll(/proxy listening worker=\d+ url=(\S+)/g)]
      if (admin && listening.length === 2) {
        clearTimeout(timer)
        resolve({ child, admin: admin[1]!, url: listening[0]![1]!, stderr: () => err, stop })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`proxy exited with ${code}: ${err}`))
    })
  })
}

test('--workers 2: the admin address merges both workers; the counter over both equals the requests sent', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const token = 'e2e-token'
  const proxy = await startWorkers(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-token', token, '--access-log', 'off', '--workers', '2'])
  const auth = { authorization: `Bearer ${token}` }
  expect((await fetch(`${proxy.admin}/metrics`)).status).toBe(401)

  // Each request on a new connection, so that SO_REUSEPORT spreads them over both workers.
  const K = 60
  for (let i = 0; i < K; i++) {
    const res = await fetch(proxy.url, { headers: { connection: 'close' } })
    expect(await res.text()).toBe('ok')
  }
  const text = await (await fetch(`${proxy.admin}/metrics`, { headers: auth })).text()
  const value = (re: RegExp) => Number(re.exec(text)?.[1])
  expect(value(/^proxy_requests_total\{upstream="default",class="2xx"\} (\d+)$/m)).toBe(K)
  expect(value(/^proxy_request_duration_seconds_count\{upstream="default"\} (\d+)$/m)).toBe(K)
  expect(value(/^proxy_request_duration_seconds_bucket\{upstream="default",le="\+Inf"\} (\d+)$/m)).toBe(K)
  expect(text).not.toMatch(/^proxy_requests_total\{worker=/m)
  expect(text).toContain('proxy_worker_up{worker="0"} 1\n')
  expect(text).toContain('proxy_worker_up{worker="1"} 1\n')
  // Gauges stay per worker.
  expect(text).toMatch(/^proxy_client_requests_in_flight\{worker="0"\} \d+$/m)
  expect(text).toMatch(/^proxy_client_requests_in_flight\{worker="1"\} \d+$/m)

  const status = (await (await fetch(`${proxy.admin}/status`, { headers: auth })).json()) as MergedStatus
  expect(status.workers).toHaveLength(2)
  expect(status.workers.map((w) => w.up)).toEqual([true, true])
  expect(status.totals.upstreams.default.requests).toBe(K)
  // Each worker's status is its own: the two share the load (both served some).
  const perWorker = status.workers.map((w) => w.status.upstreams.default.addresses[0]!.requests)
  console.log(`workers-admin: ${K} requests split ${perWorker.join(' + ')} over two workers`)
  expect(perWorker.reduce((a, b) => a + b, 0)).toBe(K)
  expect(Math.min(...perWorker)).toBeGreaterThan(0)
  // A worker's own admin is on loopback, listed in /status, and needs the token too (but for
  // /healthz and /readyz, which answer a health check without it: no details).
  for (const w of status.workers) {
    expect(w.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${w.admin}/status`)).status).toBe(401)
    expect(await (await fetch(`${w.admin}/healthz`)).text()).toBe('ok\n')
  }

  const ready = await fetch(`${proxy.admin}/readyz`, { headers: auth })
  expect(ready.status).toBe(200)
  expect(await ready.text()).toBe('ready: 2 of 2 workers\n')

  // kill -9 of worker 1 after that scrape: its counts are carried, so the merged counter does
  // not go down (no counter reset for Prometheus) and goes on counting with the new worker.
  const killed = status.workers[1]!.pid
  process.kill(killed, 'SIGKILL')
  let restarted: { pid: number; up: boolean } | undefined
  for (let i = 0; i < 100; i++) {
    await Bun.sleep(50)
    const w = ((await (await fetch(`${proxy.admin}/status`, { headers: auth })).json()) as MergedStatus).workers[1]!
    if (w.up && w.pid !== killed) {
      restarted = w
      break
    }
  }
  expect(restarted).toBeDefined()
  for (let i = 0; i < K; i++) await (await fetch(proxy.url, { headers: { connection: 'close' } })).text()
  const after = await (await fetch(`${proxy.admin}/metrics`, { headers: auth })).text()
  expect(Number(/^proxy_requests_total\{upstream="default",class="2xx"\} (\d+)$/m.exec(after)?.[1])).toBe(2 * K)
  expect(after).toContain('proxy_worker_restarts_total{worker="1"} 1\n')
  expect(await proxy.stop()).toBe(0)
}, 60_000)

test('SIGHUP with a new admin token: the merged endpoint takes the new one and still reaches both workers', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const dir = testDir('proxy-workers-admin-')
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'proxy.toml')
  const write = (token: string) => writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\ntoken = "${token}"\n[log]\naccess_log = "off"\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  write('first')
  const proxy = await startWorkers(['serve', '--config', file, '--workers', '2'])
  const metrics = (token: string) => fetch(`${proxy.admin}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  expect((await metrics('first')).status).toBe(200)
  write('second')
  proxy.child.kill('SIGHUP')
  // Each worker reopens its own admin with the new token and reports its new port.
  let text = ''
  for (let i = 0; i < 100; i++) {
    await Bun.sleep(50)
    const res = await metrics('second')
    text = res.status === 200 ? await res.text() : ''
    if (text.includes('proxy_worker_up{worker="0"} 1\n') && text.includes('proxy_worker_up{worker="1"} 1\n')) break
  }
  expect(text).toContain('proxy_worker_up{worker="0"} 1\n')
  expect(text).toContain('proxy_worker_up{worker="1"} 1\n')
  expect((await metrics('first')).status).toBe(401)
  expect(await proxy.stop()).toBe(0)
}, 60_000)

test('SIGHUP with a config the workers refuse keeps the old admin token, and one turning the admin off keeps the workers reachable: both workers up throughout', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const dir = testDir('proxy-workers-admin-')
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'proxy.toml')
  const write = (admin: string, log: string) => writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\n[admin]\n${admin}\n[log]\naccess_log = "${log}"\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  write('listen = "127.0.0.1:0"\ntoken = "first"', 'off')
  const proxy = await startWorkers(['serve', '--config', file, '--workers', '2'])
  const metrics = (token: string) => fetch(`${proxy.admin}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  const bothUp = async (token: string) => {
    let text = ''
    for (let i = 0; i < 40; i++) {
      const res = await metrics(token)
      text = res.status === 200 ? await res.text() : `status ${res.status}`
      if (text.includes('proxy_worker_up{worker="0"} 1\n') && text.includes('proxy_worker_up{worker="1"} 1\n')) return true
      await Bun.sleep(50)
    }
    return text
  }
  expect(await bothUp('first')).toBe(true)
  // A new token beside an access log path no worker can open: the workers refuse the reload whole.
  write('listen = "127.0.0.1:0"\ntoken = "second"', join(dir, 'no-such-dir', 'access.log'))
  proxy.child.kill('SIGHUP')
  await Bun.sleep(500)
  expect((await metrics('second')).status).toBe(401)
  expect(await bothUp('first')).toBe(true)
  // The admin turned off: the supervisor keeps its address (read at start), and so do the workers their own.
  write('listen = "off"\ntoken = "first"', 'off')
  proxy.child.kill('SIGHUP')
  await Bun.sleep(500)
  expect(await bothUp('first')).toBe(true)
  expect(await proxy.stop()).toBe(0)
}, 60_000)

/** RssFile of a process, MiB (its file-backed resident pages: the executable's, runtime/page-trim.ts). */
const rssFileMiB = (pid: number) => Number(/RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]) / 1024

test("SIGHUP: the supervisor takes the reload's trim_interval and warns of an admin beyond loopback left without a token, as at start (outside review, fourteenth round)", async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const dir = testDir('proxy-workers-admin-')
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'proxy.toml')
  // The admin on every interface: only this test's own requests reach it, over loopback.
  const write = (token: string, trim: string) =>
    writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\ntrim_interval = "${trim}"\n[admin]\nlisten = "0.0.0.0:0"\n${token}\n[log]\naccess_log = "off"\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  write('token = "first"', '0s')
  const proxy = await startWorkers(['serve', '--config', file, '--workers', '2'])
  const warning = /warn.*the admin endpoints listen on 0\.0\.0\.0:\d+ without a token/g
  expect(proxy.stderr().match(warning)).toBeNull()
  const untrimmed = rssFileMiB(proxy.child.pid!)
  write('', '1s')
  proxy.child.kill('SIGHUP')
  let trimmed = untrimmed
  for (let i = 0; i < 60 && (trimmed > untrimmed - 8 || !warning.test(proxy.stderr())); i++) {
    await Bun.sleep(100)
    trimmed = rssFileMiB(proxy.child.pid!)
  }
  // Before: the token taken out silently, and the supervisor never trimmed (trim_interval "0s" kept).
  expect(trimmed).toBeLessThan(untrimmed - 8)
  expect(proxy.stderr().match(warning)).toHaveLength(1)
  expect(await proxy.stop()).toBe(0)
}, 60_000)
