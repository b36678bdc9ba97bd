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
import { readFileSync } from 'node:fs'
import { h2load, selfSignedTlsArgs, start, startOrigin, waitFor, workDir, wrk, type LoadResult } from './local-load.ts'
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

const dir = workDir('ab-cpu-')

/** Resident memory of one process, in MiB. */
function rssMiB(pid: number): number {
  return rssBytes(pid) / (1024 * 1024)
}

/** user and system CPU ticks of one process. */
function cpuTicks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return [Number(f[11]), Number(f[12])]
}

function load(port: number, duration: string): LoadResult {
  return H2 ? h2load(port, PATH, duration) : wrk(port, PATH, CONNECTIONS, duration)
}

startOrigin(dir, PORTS.origin)
const tlsArgs = H2 ? selfSignedTlsArgs(dir) : []
const proxies = [
  { name: 'A', bin: binA, port: PORTS.a },
  { name: 'B', bin: binB, port: PORTS.b },
].map((p) => ({ ...p, child: start(p.bin, ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${p.port}`, '--admin', 'off', '--access-log', 'off', ...tlsArgs]) }))
await waitFor(PORTS.origin, PATH)
for (const p of proxies) {
  await waitFor(p.port, PATH, H2)
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
