/**
 * Interleaved A/B of two builds of the proxy on small proxied requests: req/s and the proxy's
 * user and system CPU time per request (from /proc), round after round, so drift on a shared
 * machine hits both alike. What each performance commit's message quotes (issue 18's rule: an
 * optimisation is its own commit with its A/B figures).
 *
 *   bun scripts/ab-cpu.ts A_BINARY B_BINARY [--rounds 4] [--duration 5s] [--connections 64] [--path /small] [--h2]
 *
 * Starts a local nginx origin (a 100-byte answer at /small, a 1 MiB file at /1m, keepalive_requests
 * 1000000) and both
 * proxies with one worker each, access log and admin off; `wrk -t1` drives one proxy at a time.
 * With --h2 the proxies listen with TLS (a self-signed certificate made with openssl) and
 * `h2load -t1 -c16 -m10` (ALPN h2) drives them instead.
 * Prints each round (with the proxy's RSS after it) and the medians, with B against A. Loopback only; everything is killed at
 * the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rssBytes } from './stream-rss.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const FLAGS_WITH_VALUES = new Set(['--rounds', '--duration', '--connections', '--path'])
const [binA, binB] = args.filter((a, i) => !a.startsWith('--') && (i === 0 || !FLAGS_WITH_VALUES.has(args[i - 1]!)))
if (!binA || !binB) {
  console.error('usage: bun scripts/ab-cpu.ts A_BINARY B_BINARY [--rounds 4] [--duration 5s] [--connections 64] [--path /small]')
  process.exit(2)
}
const ROUNDS = Number(opt('--rounds', '4'))
const DURATION = opt('--duration', '5s')
const CONNECTIONS = opt('--connections', '64')
const PATH = opt('--path', '/small')
const H2 = args.includes('--h2')
const PORTS = { origin: 18300, a: 18301, b: 18302 }
const TICKS_PER_S = 100

const dir = mkdtempSync(join(tmpdir(), 'ab-cpu-'))
const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGKILL')
    } catch {}
  }
})
process.on('SIGINT', () => process.exit(130))

function start(cmd: string, argv: string[]): ChildProcess {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  child.stderr!.on('data', () => {})
  children.push(child)
  return child
}

/** Resident memory of one process, in MiB. */
function rssMiB(pid: number): number {
  return rssBytes(pid) / (1024 * 1024)
}

/** user and system CPU ticks of one process. */
function cpuTicks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return [Number(f[11]), Number(f[12])]
}

async function waitFor(port: number, tls = false): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${tls ? 'https' : 'http'}://127.0.0.1:${port}${PATH}`, { tls: { rejectUnauthorized: false } } as RequestInit)
      return
    } catch {
      await Bun.sleep(100)
    }
  }
  throw new Error(`nothing answers on port ${port}`)
}

/** h2load over TLS: 16 connections, 10 streams in flight on each. */
function h2load(port: number, duration: string): { rps: number; requests: number } {
  const r = spawnSync('h2load', ['-t1', '-c16', '-m10', `-D${duration}`, `https://127.0.0.1:${port}${PATH}`], { encoding: 'utf8' })
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(r.stdout)?.[1])
  const requests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(r.stdout)?.[1])
  const ok = Number(/status codes: (\d+) 2xx/.exec(r.stdout)?.[1])
  if (!/Application protocol: h2/.test(r.stdout) || !rps || !requests || ok < requests) throw new Error(`h2load failed: ${r.stdout}${r.stderr}`)
  return { rps, requests }
}

function load(port: number, duration: string): { rps: number; requests: number } {
  return H2 ? h2load(port, duration) : wrk(port, duration)
}

function wrk(port: number, duration: string): { rps: number; requests: number } {
  const r = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${duration}`, `http://127.0.0.1:${port}${PATH}`], { encoding: 'utf8' })
  if (/Non-2xx/.test(r.stdout)) throw new Error(`the origin refused: ${r.stdout}`)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1])
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1])
  if (!rps || !requests) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`)
  return { rps, requests }
}

// nginx's workers run as another user: the temp dir must let them read the file.
chmodSync(dir, 0o755)
writeFileSync(join(dir, '1m'), new Uint8Array(1024 * 1024).fill(0x78))
const conf = join(dir, 'origin.conf')
writeFileSync(
  conf,
  `worker_processes 1;\ndaemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx.err')} warn;\nevents { worker_connections 4096; }\n` +
    `http {\n  access_log off;\n  keepalive_requests 1000000;\n  server {\n    listen 127.0.0.1:${PORTS.origin};\n` +
    `    location = /small { return 200 "${'x'.repeat(100)}"; }\n    location = /1m { alias ${join(dir, '1m')}; }\n  }\n}\n`,
)
start('nginx', ['-c', conf])
const tlsArgs: string[] = []
if (H2) {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  if (ssl.status !== 0) throw new Error(`openssl could not make a certificate: ${ssl.stderr}`)
  tlsArgs.push('--tls-cert', cert, '--tls-key', key)
}
const proxies = [
  { name: 'A', bin: binA, port: PORTS.a },
  { name: 'B', bin: binB, port: PORTS.b },
].map((p) => ({ ...p, child: start(p.bin, ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${p.port}`, '--admin', 'off', '--access-log', 'off', ...tlsArgs]) }))
await waitFor(PORTS.origin)
for (const p of proxies) {
  await waitFor(p.port, H2)
  load(p.port, '2s') // warm-up: JIT tiers and the upstream pool
}

const results = new Map<string, { rps: number[]; user: number[]; sys: number[]; rss: number[] }>(proxies.map((p) => [p.name, { rps: [], user: [], sys: [], rss: [] }]))
for (let round = 1; round <= ROUNDS; round++) {
  for (const p of proxies) {
    const [u0, s0] = cpuTicks(p.child.pid!)
    const { rps, requests } = load(p.port, DURATION)
    const [u1, s1] = cpuTicks(p.child.pid!)
    const usPer = (ticks: number) => (ticks * 1e6) / TICKS_PER_S / requests
    const r = results.get(p.name)!
    r.rps.push(rps)
    r.user.push(usPer(u1 - u0))
    r.sys.push(usPer(s1 - s0))
    r.rss.push(rssMiB(p.child.pid!))
    console.log(`round ${round} ${p.name}: ${rps.toFixed(0)} req/s, user ${usPer(u1 - u0).toFixed(2)} µs/req, sys ${usPer(s1 - s0).toFixed(2)} µs/req, RSS ${r.rss.at(-1)!.toFixed(0)} MiB`)
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const a = results.get('A')!
const b = results.get('B')!
for (const [name, r] of results) {
  console.log(`median ${name}: ${median(r.rps).toFixed(0)} req/s, user ${median(r.user).toFixed(2)}, sys ${median(r.sys).toFixed(2)}, cpu ${(median(r.user) + median(r.sys)).toFixed(2)} µs/req, RSS after a round ${Math.max(...r.rss).toFixed(0)} MiB at most`)
}
console.log(`B/A: req/s ${(median(b.rps) / median(a.rps)).toFixed(3)}, cpu per request ${((median(b.user) + median(b.sys)) / (median(a.user) + median(a.sys))).toFixed(3)}`)
process.exit(0)
