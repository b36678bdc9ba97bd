/**
 * Interleaved A/B of two builds of the proxy on small proxied requests: req/s and the proxy's
 * user and system CPU time per request (from /proc), round after round, so drift on a shared
 * machine hits both alike. What each performance commit's message quotes (issue 18's rule: an
 * optimisation is its own commit with its A/B figures).
 *
 *   bun scripts/ab-cpu.ts A_BINARY B_BINARY [--warmup 2s] [--rounds 4] [--duration 5s] [--connections 64] [--path /small] [--h2 [--streams 10] | --tls] [--gc] [--browser-head] [--cache] [--post BYTES] [--ports 18300]
 *
 * Starts a local nginx origin (a 100-byte answer at /small, a 1 MiB file at /1m, keepalive_requests
 * 1000000) and both
 * proxies with one worker each, access log and admin off; `wrk -t1` drives one proxy at a time.
 * With --h2 the proxies listen with TLS (a self-signed certificate made with openssl) and
 * `h2load -t1 -c16 -m10` (ALPN h2; -m from --streams) drives them instead; with --tls they listen with TLS and wrk
 * drives them over HTTPS (HTTP/1.1). With --post BYTES wrk sends POSTs with a body of that size.
 * With --browser-head wrk sends a browser's navigation request head (local-load.ts, BROWSER_FIELDS)
 * instead of its one-field head. With --cache both proxies run with `--cache 64MiB` and wrk asks
 * for /cacheable (stored on the warm-up): cache hits.
 * Prints each round (with wrk's p99 and the proxy's RSS after it, and how much of it is file-backed) and the medians, with B against A.
 * With --gc both proxies run with JSC's GC log on (BUN_JSC_logGC=1, on stderr) and each round
 * also says how many eden and full collections there were per thousand requests and how long
 * their cycles took in all (the log itself costs a little time in both). --ports BASE puts the
 * origin on BASE and the two proxies on BASE+1 and BASE+2 (18300 unless given), so two runs can
 * share a machine without one's load reaching the other's proxies. Loopback only; everything is
 * killed at the end.
 */
import { readFileSync } from 'node:fs'
import { BROWSER_FIELDS, h2load, selfSignedTlsArgs, start, startOrigin, waitFor, workDir, wrk, type LoadResult } from './local-load.ts'
import { rssBytes } from './stream-rss.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const FLAGS_WITH_VALUES = new Set(['--warmup', '--rounds', '--duration', '--connections', '--path', '--post', '--streams', '--ports'])
const [binA, binB] = args.filter((a, i) => !a.startsWith('--') && (i === 0 || !FLAGS_WITH_VALUES.has(args[i - 1]!)))
if (!binA || !binB) {
  console.error('usage: bun scripts/ab-cpu.ts A_BINARY B_BINARY [--rounds 4] [--duration 5s] [--connections 64] [--path /small] [--h2 [--streams 10] | --tls] [--gc] [--browser-head] [--cache] [--post BYTES] [--ports 18300]')
  process.exit(2)
}
const ROUNDS = Number(opt('--rounds', '4'))
const DURATION = opt('--duration', '5s')
const CONNECTIONS = opt('--connections', '64')
const CACHE = args.includes('--cache')
const POST_BYTES = Number(opt('--post', '0'))
const PATH = opt('--path', CACHE ? '/cacheable' : '/small')
const H2 = args.includes('--h2')
const H2_STREAMS = Number(opt('--streams', '10'))
const TLS = H2 || args.includes('--tls')
const GC = args.includes('--gc')
const FIELDS = args.includes('--browser-head') ? BROWSER_FIELDS : []
const PORT_BASE = Number(opt('--ports', '18300'))
const PORTS = { origin: PORT_BASE, a: PORT_BASE + 1, b: PORT_BASE + 2 }
const TICKS_PER_S = 100

const dir = workDir('ab-cpu-')

/** Resident memory of one process, in MiB. */
function rssMiB(pid: number): number {
  return rssBytes(pid) / (1024 * 1024)
}

/** The file-backed part of a process's resident memory (RssFile: the binary's pages), in MiB. */
function rssFileMiB(pid: number): number {
  const m = /RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m ? Number(m[1]) / 1024 : 0
}

/** user and system CPU ticks of one process. */
function cpuTicks(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return [Number(f[11]), Number(f[12])]
}

function load(port: number, duration: string): Promise<LoadResult> {
  return H2 ? h2load(port, PATH, duration, H2_STREAMS) : wrk(port, PATH, CONNECTIONS, duration, FIELDS, TLS, POST_BYTES)
}

startOrigin(dir, PORTS.origin)
const tlsArgs = TLS ? selfSignedTlsArgs(dir) : []
const proxies = [
  { name: 'A', bin: binA, port: PORTS.a },
  { name: 'B', bin: binB, port: PORTS.b },
].map((p) => {
  const gc = { eden: 0, full: 0, cycleMs: 0 }
  const argv = ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${p.port}`, '--admin', 'off', '--access-log', 'off', ...tlsArgs, ...(CACHE ? ['--cache', '64MiB'] : [])]
  const child = GC ? start(p.bin, argv, { BUN_JSC_logGC: '1' }, (text) => countCollections(text, gc)) : start(p.bin, argv)
  return { ...p, child, gc }
})

/**
 * Adds the collections in a piece of JSC's GC log: a cycle is one line, "[GC<…>: START … =>
 * EdenCollection, … cycle 0.98ms END]" (a line cut across two pieces is counted by its start).
 */
function countCollections(text: string, into: { eden: number; full: number; cycleMs: number }): void {
  for (const m of text.matchAll(/=> (Eden|Full)Collection|cycle ([\d.]+)ms END/g)) {
    if (m[1] === 'Eden') into.eden++
    else if (m[1] === 'Full') into.full++
    else into.cycleMs += Number(m[2])
  }
}
await waitFor(PORTS.origin, PATH)
for (const p of proxies) {
  await waitFor(p.port, PATH, TLS)
  await load(p.port, opt('--warmup', '2s')) // warm-up: JIT tiers and the upstream pool
}

const results = new Map<string, { rps: number[]; user: number[]; sys: number[]; rss: number[]; p99: number[]; gcMsPerK: number[] }>(
  proxies.map((p) => [p.name, { rps: [], user: [], sys: [], rss: [], p99: [], gcMsPerK: [] }]),
)
for (let round = 1; round <= ROUNDS; round++) {
  for (const p of proxies) {
    const [u0, s0] = cpuTicks(p.child.pid!)
    Object.assign(p.gc, { eden: 0, full: 0, cycleMs: 0 })
    const { rps, requests, p99Ms } = await load(p.port, DURATION)
    const [u1, s1] = cpuTicks(p.child.pid!)
    const usPer = (ticks: number) => (ticks * 1e6) / TICKS_PER_S / requests
    const r = results.get(p.name)!
    r.rps.push(rps)
    r.user.push(usPer(u1 - u0))
    r.sys.push(usPer(s1 - s0))
    r.rss.push(rssMiB(p.child.pid!))
    if (p99Ms !== undefined) r.p99.push(p99Ms)
    await Bun.sleep(50) // the last of the GC log
    const perK = (n: number) => ((n * 1000) / requests).toFixed(2)
    const gc = GC ? `, GC per 1000 requests: ${perK(p.gc.eden)} eden + ${perK(p.gc.full)} full, ${perK(p.gc.cycleMs)} ms` : ''
    if (GC) r.gcMsPerK.push((p.gc.cycleMs * 1000) / requests)
    const p99 = p99Ms !== undefined ? `, p99 ${p99Ms.toFixed(2)} ms` : ''
    console.log(`round ${round} ${p.name}: ${rps.toFixed(0)} req/s${p99}, user ${usPer(u1 - u0).toFixed(2)} µs/req, sys ${usPer(s1 - s0).toFixed(2)} µs/req, RSS ${r.rss.at(-1)!.toFixed(0)} MiB (file-backed ${rssFileMiB(p.child.pid!).toFixed(0)})${gc}`)
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const a = results.get('A')!
const b = results.get('B')!
for (const [name, r] of results) {
  const p99 = r.p99.length ? `, p99 ${median(r.p99).toFixed(2)} ms` : ''
  const gc = r.gcMsPerK.length ? `, GC cycles ${median(r.gcMsPerK).toFixed(2)} ms per 1000 requests` : ''
  console.log(`median ${name}: ${median(r.rps).toFixed(0)} req/s${p99}, user ${median(r.user).toFixed(2)}, sys ${median(r.sys).toFixed(2)}, cpu ${(median(r.user) + median(r.sys)).toFixed(2)} µs/req, RSS after a round ${Math.max(...r.rss).toFixed(0)} MiB at most${gc}`)
}
const p99Ratio = a.p99.length ? `, p99 ${(median(b.p99) / median(a.p99)).toFixed(3)}` : ''
console.log(`B/A: req/s ${(median(b.rps) / median(a.rps)).toFixed(3)}, cpu per request ${((median(b.user) + median(b.sys)) / (median(a.user) + median(a.sys))).toFixed(3)}${p99Ratio}`)
process.exit(0)
