/**
 * The process level, with the compiled binary (seventeenth round of outside reviews, operating-
 * system faults): a config that can be read only once (a named pipe, as `--config <(envsubst ...)`
 * is a pipe) is applied again as read at start by a SIGHUP, where the reload read it empty (every
 * limit and the admin token gone) or blocked the whole process in open(), and reaches the workers
 * of --workers, which could not open the supervisor's pipe; SIGUSR2 is said and ignored rather than
 * ending the process; a drain that begins while a reload waits for DNS drops the reload, which
 * opened its new listener mid-drain.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

const closers: (() => unknown)[] = []
beforeAll(() => {
  ensureBinary()
})
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

function origin() {
  const s = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      if (new URL(req.url).pathname === '/slow') await Bun.sleep(3000)
      return new Response(`got ${(await req.arrayBuffer()).byteLength}`)
    },
  })
  closers.push(() => s.stop(true))
  return s
}

/** A named pipe holding `text`, written once by a child process (it blocks until the proxy opens the pipe). */
function fifoConfig(text: string): string {
  const dir = testDir('proxy-fifo-')
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, text)
  const fifo = join(dir, 'proxy.fifo')
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
  const writer: ChildProcess = spawn('sh', ['-c', `cat '${file}' > '${fifo}'`], { stdio: 'ignore' })
  closers.push(() => void writer.kill('SIGKILL'))
  return fifo
}

/** A 2 KiB POST, bounded in time: its status, or 'no answer'. */
async function post2k(url: string): Promise<number | string> {
  try {
    return (await fetch(`${url}/x`, { method: 'POST', body: new Uint8Array(2048), signal: AbortSignal.timeout(3000) })).status
  } catch {
    return 'no answer'
  }
}

async function waitForLog(proxy: { stderr(): string }, text: string, ms = 5000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await Bun.sleep(20)) if (proxy.stderr().includes(text)) return true
  return false
}

test('a config from a named pipe: SIGHUP applies it as read at start (the limit and the admin token stay), says so, and blocks nothing', async () => {
  const o = origin()
  const admin = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => admin.once('listening', r))
  const adminPort = (admin.address() as { port: number }).port
  await new Promise((r) => admin.close(r))
  const fifo = fifoConfig(`[server]\nlisten = "127.0.0.1:0"\nmax_body_size = "1KiB"\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n[admin]\nlisten = "127.0.0.1:${adminPort}"\ntoken = "s3cret"\n[log]\naccess_log = "off"\n`)
  const proxy = await startProxyProcess(['serve', '--config', fifo], BIN)
  try {
    expect(await post2k(proxy.url)).toBe(413)
    expect((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status).toBe(401)
    proxy.child.kill('SIGHUP')
    expect(await waitForLog(proxy, 'reloaded')).toBe(true)
    expect(proxy.stderr()).toContain(`reload: the config ${fifo} is a pipe, read once at start`)
    // Before: the reload opened the pipe again and waited for a writer, the whole process with it.
    expect(await post2k(proxy.url)).toBe(413)
    expect((await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(3000) })).status).toBe(401)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 30_000)

test('a config from a named pipe with --workers 2: every worker gets it from the supervisor, also after a SIGHUP', async () => {
  const o = origin()
  const fifo = fifoConfig(`[server]\nlisten = "127.0.0.1:0"\nmax_body_size = "1KiB"\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n[admin]\nlisten = "off"\n[log]\naccess_log = "off"\n`)
  const proxy = await startProxyProcess(['serve', '--workers', '2', '--config', fifo], BIN)
  try {
    // Before: each worker opened the pipe itself and waited there for ever (no worker listened).
    expect(await waitForLog(proxy, 'proxy listening worker=1')).toBe(true)
    expect(await waitForLog(proxy, 'proxy listening worker=0')).toBe(true)
    for (let i = 0; i < 4; i++) expect(await post2k(proxy.url)).toBe(413)
    proxy.child.kill('SIGHUP')
    expect(await waitForLog(proxy, 'reloaded worker=0')).toBe(true)
    expect(await waitForLog(proxy, 'reloaded worker=1')).toBe(true)
    for (let i = 0; i < 4; i++) expect(await post2k(proxy.url)).toBe(413)
    expect(proxy.stderr()).not.toContain('worker died')
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 30_000)

test('a config that was a file at start and is a named pipe at a reload: the reload is refused, nothing blocks (second opinion, seventeenth round: open() waited for a writer, the whole process with it)', async () => {
  const o = origin()
  const dir = testDir('proxy-fifo-swap-')
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\nmax_body_size = "1KiB"\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n[admin]\nlisten = "off"\n[log]\naccess_log = "off"\n`)
  const proxy = await startProxyProcess(['serve', '--config', file], BIN)
  try {
    expect(await post2k(proxy.url)).toBe(413)
    const fifo = join(dir, 'new.fifo')
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
    renameSync(fifo, file) // no writer: open() for reading would wait for one
    proxy.child.kill('SIGHUP')
    expect(await waitForLog(proxy, 'reload failed')).toBe(true)
    expect(proxy.stderr()).toContain('it is no longer a regular file')
    expect(await post2k(proxy.url)).toBe(413)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 30_000)

for (const workers of [1, 2]) {
  test(`SIGUSR2 is said and ignored, not the end of the process (--workers ${workers})`, async () => {
    const o = origin()
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${o.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', '--workers', String(workers)], BIN)
    try {
      if (workers === 2) expect(await waitForLog(proxy, 'proxy listening worker=1')).toBe(true)
      proxy.child.kill('SIGUSR2')
      expect(await waitForLog(proxy, 'SIGUSR2: ignored')).toBe(true)
      // Before: the process ended at once (exit by the signal), its requests cut.
      expect(proxy.child.signalCode).toBeNull()
      expect(await (await fetch(proxy.url)).text()).toBe('got 0')
    } finally {
      expect(await proxy.stop()).toBe(0)
    }
  }, 30_000)
}

for (const workers of [1, 2]) {
  test(`SIGQUIT (nginx's graceful stop) drains as SIGTERM does: the request in flight is answered, exit 0 (--workers ${workers})`, async () => {
    const o = origin()
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${o.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', '--workers', String(workers)], BIN)
    if (workers === 2) expect(await waitForLog(proxy, 'proxy listening worker=1')).toBe(true)
    const slow = fetch(`${proxy.url}/slow`).then((r) => r.text(), (e: Error) => `failed: ${e.message}`)
    await Bun.sleep(300)
    proxy.child.kill('SIGQUIT')
    // Before: the process ended by the signal at once (exit 131), the request cut.
    expect(await slow).toBe('got 0')
    const code = await new Promise<number | null>((r) => (proxy.child.exitCode !== null ? r(proxy.child.exitCode) : proxy.child.once('exit', (c) => r(c))))
    expect(code).toBe(0)
    expect(proxy.child.signalCode).toBeNull()
  }, 30_000)
}

test('a SIGTERM while a SIGHUP waits for a new upstream\'s DNS answer: the reload is dropped, its new listener never opens', async () => {
  const o = origin()
  // A DNS server that takes the queries and answers none: the reload waits for its first answer
  // (resolve_timeout), while a drain goes on for a slow request.
  const dns = createSocket('udp4')
  await new Promise<void>((r) => dns.bind(0, '127.0.0.1', () => r()))
  closers.push(() => dns.close())
  const dnsPort = dns.address().port
  const free = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => free.once('listening', r))
  const newPort = (free.address() as { port: number }).port
  await new Promise((r) => free.close(r))
  const dir = testDir('proxy-reload-drain-')
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n[admin]\nlisten = "off"\n[log]\naccess_log = "off"\n`)
  const proxy = await startProxyProcess(['serve', '--config', file], BIN)
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:${newPort}"\n[upstream]\nurl = "http://slow.test:${o.port}"\nresolvers = ["127.0.0.1:${dnsPort}"]\nresolve_timeout = "1s"\n[admin]\nlisten = "off"\n[log]\naccess_log = "off"\n`)
  const slow = fetch(`${proxy.url}/slow`).then((r) => r.text())
  await Bun.sleep(200)
  proxy.child.kill('SIGHUP')
  await Bun.sleep(300)
  proxy.child.kill('SIGTERM')
  const opened: boolean[] = []
  // Until the process ends with its drain (the reload's DNS wait, 1 s, ends first).
  for (let i = 0; i < 100 && proxy.child.exitCode === null; i++) {
    opened.push(await fetch(`http://127.0.0.1:${newPort}/`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false))
    await Bun.sleep(100)
  }
  expect(await slow).toBe('got 0')
  expect(await proxy.stop()).toBe(0)
  // Before: "reloaded" mid-drain, and the new port answered (503 SHUTTING_DOWN) until the exit.
  expect(opened.filter(Boolean).length).toBe(0)
  expect(proxy.stderr()).not.toContain('reloaded')
  expect(proxy.stderr()).toContain('a drain began while the reload waited for DNS')
}, 60_000)
