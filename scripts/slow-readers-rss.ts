/**
 * The README's slow-reader figure, re-runnable: Debian's `slowhttptest -X` (500 clients reading a
 * 4 MiB body a few bytes at a time) against the compiled proxy in front of a local nginx origin,
 * with the proxy's VmRSS sampled from /proc. Prints RSS idle (after one warm-up request), peak,
 * at the end of the test, and a few seconds after it, per run.
 *
 *   bun scripts/slow-readers-rss.ts [--bin dist/proxy] [--runs 3] [--clients 500] [--seconds 40]
 *                                   [--sample-ms 500] [--env NAME=VALUE ...] [--smaps]
 *
 * Each run starts a fresh proxy process. `--env` is passed to the proxy (e.g.
 * MIMALLOC_PURGE_DELAY=0); `--smaps` also prints /proc/PID/smaps_rollup's Anonymous at the peak.
 * Needs nginx and slowhttptest (Debian packages). Loopback only; every process it starts is
 * killed before it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rssBytes, startProxyProcess } from './stream-rss.ts'

const BODY_BYTES = 4 * 2 ** 20
const MIB = 2 ** 20

interface Options {
  bin: string
  runs: number
  clients: number
  seconds: number
  sampleMs: number
  env: Record<string, string>
  smaps: boolean
}

function parseArgs(argv: string[]): Options {
  const o: Options = { bin: 'dist/proxy', runs: 3, clients: 500, seconds: 40, sampleMs: 500, env: {}, smaps: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = () => {
      const x = argv[++i]
      if (x === undefined) throw new Error(`${a} needs a value`)
      return x
    }
    if (a === '--bin') o.bin = v()
    else if (a === '--runs') o.runs = Number(v())
    else if (a === '--clients') o.clients = Number(v())
    else if (a === '--seconds') o.seconds = Number(v())
    else if (a === '--sample-ms') o.sampleMs = Number(v())
    else if (a === '--smaps') o.smaps = true
    else if (a === '--env') {
      const [k, ...rest] = v().split('=')
      o.env[k!] = rest.join('=')
    } else throw new Error(`unknown option ${a}`)
  }
  return o
}

/** A free loopback port (closed again before it is used; good enough on a quiet loopback). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function anonymousBytes(pid: number): number {
  try {
    const m = /Anonymous:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** How many sockets the process has open (client and upstream connections, listeners). */
function socketCount(pid: number): number {
  let n = 0
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // exited
  }
  return n
}

/** nginx serving a 4 MiB file (`/big`) from a temporary directory; stop() stops it and removes the directory. */
export async function startNginxOrigin(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'slow-readers-'))
  writeFileSync(join(dir, 'big'), Buffer.alloc(BODY_BYTES, 0x61))
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  // One process (no master, so no worker left behind and no switch to another user), with
  // every path in the temporary directory (-p, -e), so that it runs without root too.
  writeFileSync(
    conf,
    `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx.err')} warn;\n` +
      `events { worker_connections 4096; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  fastcgi_temp_path ${dir};\n  uwsgi_temp_path ${dir};\n  scgi_temp_path ${dir};\n` +
      `  server { listen 127.0.0.1:${port}; root ${dir}; location / { } }\n}\n`,
  )
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'nginx.err')], { stdio: 'ignore' })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await waitExit(child)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/big`).catch(() => undefined)
    if (r?.ok) {
      await r.arrayBuffer()
      return { port, stop }
    }
    await Bun.sleep(100)
  }
  await stop()
  throw new Error('nginx origin did not start')
}

export interface SlowReadersResult {
  /** RSS after one warm-up request and a second's rest. */
  idleBytes: number
  peakBytes: number
  /** At the last sample before slowhttptest exited. */
  endBytes: number
  /** Three seconds after slowhttptest exited (its connections closed). */
  afterBytes: number
  /** smaps_rollup's Anonymous at the peak sample, with `smaps`. */
  peakAnonymousBytes: number
  /** The most sockets the proxy had open at a sample: two per reader still connected (client and upstream), plus its listener. */
  maxSockets: number
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

/**
 * Runs `slowhttptest -X` with `clients` readers of `url` (a 4 MiB body, through the proxy process
 * `pid`) for `seconds`, sampling the process's RSS every `sampleMs`. The process must be idle
 * when called; one warm-up request is made first.
 */
export async function measureSlowReaders(opts: { url: string; pid: number; clients: number; seconds: number; sampleMs: number; smaps?: boolean }): Promise<SlowReadersResult> {
  const { pid } = opts
  let slow: ChildProcess | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  try {
    const warm = await fetch(opts.url)
    const warmBytes = (await warm.arrayBuffer()).byteLength
    if (warm.status !== 200 || warmBytes === 0) throw new Error(`warm-up request through the proxy got ${warm.status} with ${warmBytes} bytes: is the origin up?`)
    await Bun.sleep(1000)
    const idle = rssBytes(pid)
    let peak = idle
    let peakAnon = 0
    let last = idle
    let maxSockets = 0
    let samples = 0
    timer = setInterval(() => {
      last = rssBytes(pid)
      // Counting sockets walks /proc/PID/fd: every fourth sample is enough to see the readers.
      if (samples++ % 4 === 0) maxSockets = Math.max(maxSockets, socketCount(pid))
      if (last > peak) {
        peak = last
        if (opts.smaps) peakAnon = anonymousBytes(pid)
      }
    }, opts.sampleMs)
    // The README's parameters: 250 new connections a second, windows of 512 to 1024 bytes, 32
    // bytes read every 5 s.
    slow = spawn('slowhttptest', ['-X', '-c', String(opts.clients), '-r', '250', '-w', '512', '-y', '1024', '-n', '5', '-z', '32', '-l', String(opts.seconds), '-u', opts.url], { stdio: 'ignore' })
    const started = slow
    await new Promise<void>((resolve, reject) => {
      started.once('error', (err) => reject(new Error(`slowhttptest did not run (apt-get install -y slowhttptest): ${err.message}`)))
      started.once('exit', () => resolve())
    })
    slow = undefined
    const end = last
    await Bun.sleep(3000)
    clearInterval(timer)
    timer = undefined
    return { idleBytes: idle, peakBytes: Math.max(peak, last), endBytes: end, afterBytes: rssBytes(pid), peakAnonymousBytes: peakAnon, maxSockets }
  } finally {
    if (timer) clearInterval(timer)
    slow?.kill('SIGKILL')
  }
}

async function run(o: Options, originPort: number): Promise<SlowReadersResult> {
  const envBefore = { ...process.env }
  Object.assign(process.env, o.env)
  const proxy = await startProxyProcess(['serve', '--upstream', `127.0.0.1:${originPort}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off'], o.bin).finally(() => {
    for (const k of Object.keys(o.env)) if (envBefore[k] === undefined) delete process.env[k]
    Object.assign(process.env, envBefore)
  })
  try {
    return await measureSlowReaders({ url: `${proxy.url}/big`, pid: proxy.child.pid!, clients: o.clients, seconds: o.seconds, sampleMs: o.sampleMs, smaps: o.smaps })
  } finally {
    await proxy.stop()
  }
}

const mib = (b: number) => `${(b / MIB).toFixed(0)} MiB`

if (import.meta.main) {
  const o = parseArgs(process.argv.slice(2))
  for (const tool of ['nginx', 'slowhttptest']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      console.error(`${tool} is missing: apt-get install -y nginx-light slowhttptest`)
      process.exit(2)
    }
  }
  const origin = await startNginxOrigin()
  const peaks: number[] = []
  try {
    console.log(`${o.clients} slow readers of 4 MiB (slowhttptest -X, ${o.seconds} s), ${o.bin}${Object.keys(o.env).length ? ` with ${Object.entries(o.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}, RSS every ${o.sampleMs} ms`)
    for (let i = 1; i <= o.runs; i++) {
      const r = await run(o, origin.port)
      peaks.push(r.peakBytes - r.idleBytes)
      console.log(
        `run ${i}: idle ${mib(r.idleBytes)}, peak ${mib(r.peakBytes)} (+${mib(r.peakBytes - r.idleBytes)}), end ${mib(r.endBytes)} (+${mib(r.endBytes - r.idleBytes)}), 3 s after ${mib(r.afterBytes)}, up to ${r.maxSockets} sockets open${o.smaps ? `, anonymous at peak ${mib(r.peakAnonymousBytes)}` : ''}`,
      )
    }
    console.log(`peak over idle: min +${mib(Math.min(...peaks))}, max +${mib(Math.max(...peaks))}`)
  } finally {
    await origin.stop()
  }
}
