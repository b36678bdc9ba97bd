/**
 * Side-by-side throughput of this proxy against nginx and HAProxy, in one run, on loopback.
 *
 *   bun scripts/bench-peers.ts [--rounds 3] [--duration 5s] [--warmup 2s] [--pin] [--workers auto] [--quick] [--base-bin FILE]
 *
 * Starts an nginx origin (a 100-byte response, 1 MiB and 100 MiB files) and, in front of it,
 * with one worker each: dist/proxy, nginx (upstream keepalive 256), HAProxy, and the floor: a
 * bare Bun byte relay (scripts/floor-relay.ts, no HTTP parsing), the runtime's limit. With
 * --workers N (or auto), the proxy runs N workers and so do its peers: nginx worker_processes N,
 * HAProxy nbthread N (auto: all cores); the origin and the floor stay single. With
 * --base-bin, another build of the proxy runs beside dist/proxy as "proxy-base" (a before/after
 * comparison in one run).
 * nginx-same is nginx doing per request what this proxy does by default: X-Forwarded-For, -Proto
 * and -Host and Via set upstream, and a request id sent upstream and in the reply (its ratios are still
 * against plain nginx; the rows without it measure nginx doing the least it can).
 * The "browser head" row sends the 14 fields of a browser's navigation request (about 650 bytes
 * of head) where the other rows send wrk's one-field head.
 * Two more rows compare like with like:
 *   - cache hit (issue 15): dist/proxy with `--cache 64MiB` against nginx with proxy_cache (a
 *     cache zone in the temp dir), both warmed, serving a 100-byte resource the origin marks
 *     `Cache-Control: public, max-age=3600`; the origin should see no request during the run.
 *   - h2 (issue 16): `h2load` over TLS (ALPN h2, a self-signed certificate made with openssl in
 *     the temp dir) against dist/proxy's TLS listener and nginx's `listen ... ssl http2`.
 *   - TLS: wrk over HTTPS (HTTP/1.1, one handshake per connection, then keep-alive), c=64, against
 *     a dist/proxy TLS listener of its own, nginx's h2 listener (which speaks HTTP/1.1 too) and
 *     HAProxy's `bind ... ssl crt` (and the base build's own, with --base-bin): what an edge
 *     that ends its users' TLS does per request.
 * Every configuration runs its load (`wrk -t1`, or `h2load -t1`) against each of its proxies
 * once unmeasured (--warmup, 2 s: JIT tiers), then in turn, round after round (interleaved, so drift hits all alike), and records req/s, p99 (wrk
 * only), the proxy's CPU time per request (from /proc), its RSS, and the upstream connections it
 * opened (from the origin's stub_status). Prints medians and ratios against the row's nginx.
 * Installs nginx, haproxy, wrk and nghttp2-client from Debian if they are missing. Everything
 * listens on 127.0.0.1; everything started is killed by process group at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureBinary } from '../test/support/binary.ts'
import { BROWSER_FIELDS } from './local-load.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const ROUNDS = Number(opt('--rounds', '3'))
const DURATION = opt('--duration', '5s')
const PIN = args.includes('--pin')
const QUICK = args.includes('--quick')
const WORKERS = opt('--workers', '1')
const BASE_BIN = opt('--base-bin', '')
/** Unmeasured load on each proxy of each row before the first round. */
const WARMUP = opt('--warmup', '2s')

const PORTS = { origin: 18200, ours: 18201, nginx: 18202, haproxy: 18203, oursBase: 18204, floor: 18205, status: 18209 }
const CACHE_PORTS = { ours: 18206, nginx: 18207 }
const H2_PORTS = { ours: 18208, nginx: 18210 }
/** The TLS row: the proxy's and the base build's own TLS listeners (processes of their own, as in the other rows) and HAProxy's TLS frontend; nginx uses its h2 listener, which speaks HTTP/1.1 too. */
const TLS_PORTS = { haproxy: 18211, oursBase: 18212, ours: 18213 }
/** nginx configured to do per request what this proxy does by default (nginx-same, below). */
const SAME_PORT = 18214
const dir = mkdtempSync(join(tmpdir(), 'bench-peers-'))
const children: ChildProcess[] = []

function need(cmd: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0) return
  console.error(`installing ${pkg} from Debian…`)
  const r = spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`could not install ${pkg}`)
}

function run(cmd: string, argv: string[], cpu?: number): ChildProcess {
  const full = PIN && cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...argv]] as const : [cmd, argv] as const
  // Own process group, so that cleanup kills nginx's and our workers with their parent.
  const child = spawn(full[0], [...full[1]], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  child.stderr!.on('data', () => {})
  children.push(child)
  return child
}

function cleanup(): void {
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGKILL')
    } catch {}
  }
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

/** An nginx config; `workers` is its worker_processes (the origin keeps 1, the peers get --workers). */
function nginxConf(name: string, body: string, workers = '1'): string {
  const path = join(dir, `${name}.conf`)
  writeFileSync(
    path,
    `worker_processes ${workers};\ndaemon off;\npid ${join(dir, `${name}.pid`)};\nerror_log ${join(dir, `${name}.err`)} warn;\nevents { worker_connections 8192; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n  sendfile on;\n${body}\n}\n`,
  )
  return path
}

/** One request, certificate unchecked (the bench's own self-signed one): waits for a listener, warms a cache. */
async function get(port: number, path: string, tls = false): Promise<void> {
  const r = await fetch(`${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`, { tls: { rejectUnauthorized: false } } as RequestInit)
  await r.arrayBuffer()
}

async function waitPort(port: number, tls = false): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await get(port, '/small', tls)
      return
    } catch {
      await Bun.sleep(50)
    }
  }
  throw new Error(`nothing listening on ${port}`)
}

/** utime+stime of a process in ms (clock ticks, 100/s); undefined once it has exited. */
function cpuMs(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100
  } catch {
    return undefined
  }
}

/** CPU ms a tree spent between two readings, over the processes alive at both (nginx's cache loader exits on its own). */
function cpuDeltaMs(before: Map<number, number | undefined>, after: Map<number, number | undefined>): number {
  let ms = 0
  for (const [pid, t0] of before) {
    const t1 = after.get(pid)
    if (t0 !== undefined && t1 !== undefined) ms += t1 - t0
  }
  return ms
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0 // exited
  }
}

/** All PIDs of a process tree (a supervisor and its workers). */
function treePids(pid: number): number[] {
  const out = spawnSync('sh', ['-c', `pgrep -P ${pid}`]).stdout.toString().trim()
  return [pid, ...out.split('\n').filter(Boolean).map(Number).flatMap(treePids)]
}

/** The origin's accepted connections and requests so far (nginx stub_status; this read counts itself as one request). */
async function originCounts(): Promise<{ accepts: number; requests: number }> {
  const text = await (await fetch(`http://127.0.0.1:${PORTS.status}/status`)).text()
  const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text)
  return m ? { accepts: Number(m[1]), requests: Number(m[3]) } : { accepts: 0, requests: 0 }
}

interface Sample {
  rps: number
  p99Ms: number
  cpuUsPerReq: number
  rssMiB: number
  upstreamConns: number
  originRequests: number
  mbps: number
}

/** What one load run measured: requests completed, req/s, p99 (NaN where the tool gives none), MB/s. */
interface Load {
  requests: number
  rps: number
  p99Ms: number
  mbps: number
}

/** Runs a load generator to its end (pinned to CPU 0 with --pin) and returns its stdout. */
function loadRun(cmd: string, argv: string[]): Promise<string> {
  return new Promise<string>((resolve) => {
    const w = PIN ? spawn('taskset', ['-c', '0', cmd, ...argv]) : spawn(cmd, argv)
    let text = ''
    w.stdout.on('data', (d: Buffer) => (text += d.toString()))
    w.on('close', () => resolve(text))
  })
}

const MB = (n: string, unit: string | undefined) => Number(n) * ({ B: 1e-6, KB: 1e-3, MB: 1, GB: 1e3 }[unit ?? 'B'] ?? 1)

async function wrk(port: number, path: string, conns: number, duration: string, fields: readonly string[] = [], tls = false): Promise<Load> {
  const text = await loadRun('wrk', ['-t1', `-c${conns}`, `-d${duration}`, '--latency', ...fields.flatMap((f) => ['-H', f]), `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`])
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text)
  const unit = p99?.[2] === 'us' ? 0.001 : p99?.[2] === 's' ? 1000 : 1
  const tr = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(text)
  return {
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
    p99Ms: p99 ? Number(p99[1]) * unit : 0,
    mbps: tr ? MB(tr[1]!, tr[2]) : 0,
  }
}

/** h2load over TLS (ALPN h2): `conns` connections with `streams` requests in flight on each. */
async function h2load(port: number, path: string, conns: number, streams: number, duration: string): Promise<Load> {
  const text = await loadRun('h2load', ['-t1', `-c${conns}`, `-m${streams}`, `-D${duration}`, `https://127.0.0.1:${port}${path}`])
  if (!/Application protocol: h2/.test(text)) console.error(`h2load on ${port} did not negotiate h2:\n${text.slice(-600)}`)
  const fin = /finished in [\d.]+\w*, ([\d.]+) req\/s, ([\d.]+)(B|KB|MB|GB)\/s/.exec(text)
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(text)?.[1] ?? 0)
  const ok = Number(/status codes: (\d+) 2xx/.exec(text)?.[1] ?? 0)
  if (ok < done) console.error(`h2load on ${port}: only ${ok} of ${done} answers were 2xx`)
  return { requests: done, rps: fin ? Number(fin[1]) : 0, p99Ms: Number.NaN, mbps: fin ? MB(fin[2]!, fin[3]) : 0 }
}

async function measure(pid: number, load: () => Promise<Load>): Promise<Sample> {
  const pids = treePids(pid)
  const cpuOf = () => new Map(pids.map((p) => [p, cpuMs(p)]))
  const cpu0 = cpuOf()
  const origin0 = await originCounts()
  let peakRss = 0
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, pids.reduce((a, p) => a + rssMiB(p), 0))), 200)
  const { requests, rps, p99Ms, mbps } = await load()
  clearInterval(sampler)
  const cpu1 = cpuOf()
  const origin1 = await originCounts()
  return {
    rps,
    p99Ms,
    cpuUsPerReq: requests ? (cpuDeltaMs(cpu0, cpu1) * 1000) / requests : 0,
    rssMiB: peakRss,
    upstreamConns: origin1.accepts - origin0.accepts,
    originRequests: origin1.requests - origin0.requests - 1,
    mbps,
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0
}

interface Proxy {
  name: string
  port: number
  child: ChildProcess
  tls?: boolean
}

interface Config {
  label: string
  path: string
  /** The proxies this row compares, and the one its ratios are against. */
  proxies: Proxy[]
  ref: string
  /** One run of the row's load against `port` for `duration` (wrk's syntax: "5s"). */
  load: (port: number, duration: string) => Promise<Load>
}

async function main(): Promise<void> {
  need('nginx', 'nginx-light')
  need('haproxy', 'haproxy')
  need('wrk', 'wrk')
  need('h2load', 'nghttp2-client')
  const bin = ensureBinary()
  spawnSync('chmod', ['755', dir]) // nginx workers run as www-data
  const www = join(dir, 'www')
  spawnSync('mkdir', ['-p', www])
  writeFileSync(join(www, 'small'), 'x'.repeat(100))
  writeFileSync(join(www, 'cacheable'), 'c'.repeat(100))
  spawnSync('sh', ['-c', `head -c 1048576 /dev/zero > ${join(www, '1m')} && head -c 104857600 /dev/zero > ${join(www, '100m')}`])
  // A self-signed certificate for the h2 row's two TLS listeners (h2load does not verify it).
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  if (ssl.status !== 0) throw new Error(`openssl could not make a certificate: ${ssl.stderr}`)
  spawnSync('chmod', ['644', key]) // read by nginx's master as root, but keep it simple for its workers too

  const originConf = nginxConf(
    'origin',
    `  server { listen 127.0.0.1:${PORTS.origin}; root ${www}; location = /small { default_type text/plain; } location = /cacheable { default_type text/plain; add_header Cache-Control "public, max-age=3600"; } }\n  server { listen 127.0.0.1:${PORTS.status}; location /status { stub_status; } }`,
  )
  run('nginx', ['-c', originConf], 0)
  const upstreamBlock = `  upstream origin { server 127.0.0.1:${PORTS.origin}; keepalive 256; }\n`
  const proxyPass = 'proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on;'
  const nginxProxyConf = nginxConf('nginx-proxy', `${upstreamBlock}  server { listen 127.0.0.1:${PORTS.nginx}; location / { ${proxyPass} } }`, WORKERS)
  // What this proxy adds by default, asked of nginx: X-Forwarded-For (the peer's address, as for a
  // peer outside trusted_proxies), -Proto and -Host (the client's Host as sent), and a request id
  // sent upstream and in the reply. nginx's $request_id is 16 random bytes in hex.
  const sameWork =
    'proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host; proxy_set_header X-Request-Id $request_id; proxy_set_header Via "1.1 proxy"; add_header X-Request-Id $request_id always;'
  const nginxSameConf = nginxConf('nginx-same', `${upstreamBlock}  server { listen 127.0.0.1:${SAME_PORT}; location / { ${proxyPass} ${sameWork} } }`, WORKERS)
  const nginxCacheConf = nginxConf(
    'nginx-cache',
    `${upstreamBlock}  proxy_cache_path ${join(dir, 'nginx-cache')} levels=1:2 keys_zone=edge:10m max_size=64m inactive=1h use_temp_path=off;\n  server { listen 127.0.0.1:${CACHE_PORTS.nginx}; location / { ${proxyPass} proxy_cache edge; } }`,
    WORKERS,
  )
  // Debian 12's nginx 1.22: `http2` is a parameter of listen (the `http2 on;` directive is 1.25.1+).
  const nginxH2Conf = nginxConf(
    'nginx-h2',
    `${upstreamBlock}  server { listen 127.0.0.1:${H2_PORTS.nginx} ssl http2; ssl_certificate ${cert}; ssl_certificate_key ${key}; location / { ${proxyPass} } }`,
    WORKERS,
  )
  const haproxyCfg = join(dir, 'haproxy.cfg')
  // The peers run as many workers as the proxy: nginx worker_processes, HAProxy threads (all cores when unsaid).
  const HAPROXY_THREADS = WORKERS === 'auto' ? '' : `  nbthread ${WORKERS}\n`
  // HAProxy takes the certificate and its key in one PEM file.
  const haproxyPem = join(dir, 'haproxy.pem')
  writeFileSync(haproxyPem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'))
  writeFileSync(
    haproxyCfg,
    `global\n  maxconn 8000\n${HAPROXY_THREADS}defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\nfrontend f\n  bind 127.0.0.1:${PORTS.haproxy}\n  default_backend b\nfrontend ftls\n  bind 127.0.0.1:${TLS_PORTS.haproxy} ssl crt ${haproxyPem} alpn http/1.1\n  default_backend b\nbackend b\n  http-reuse always\n  server o 127.0.0.1:${PORTS.origin} maxconn 1000\n`,
  )
  await waitPort(PORTS.origin)
  const ours = (port: number, extra: string[] = [], file = bin) =>
    run(file, ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--access-log', 'off', '--workers', WORKERS, ...extra], 1)
  const proxies: Proxy[] = [
    { name: 'proxy', port: PORTS.ours, child: ours(PORTS.ours) },
    ...(BASE_BIN ? [{ name: 'proxy-base', port: PORTS.oursBase, child: ours(PORTS.oursBase, [], BASE_BIN) }] : []),
    { name: 'nginx', port: PORTS.nginx, child: run('nginx', ['-c', nginxProxyConf], 1) },
    { name: 'nginx-same', port: SAME_PORT, child: run('nginx', ['-c', nginxSameConf], 1) },
    { name: 'haproxy', port: PORTS.haproxy, child: run('haproxy', ['-f', haproxyCfg], 1) },
    { name: 'floor', port: PORTS.floor, child: run(process.execPath, [join(import.meta.dir, 'floor-relay.ts'), String(PORTS.floor), String(PORTS.origin)], 1) },
  ]
  const cached: Proxy[] = [
    { name: 'proxy', port: CACHE_PORTS.ours, child: ours(CACHE_PORTS.ours, ['--cache', '64MiB']) },
    { name: 'nginx', port: CACHE_PORTS.nginx, child: run('nginx', ['-c', nginxCacheConf], 1) },
  ]
  const h2: Proxy[] = [
    { name: 'proxy', port: H2_PORTS.ours, child: ours(H2_PORTS.ours, ['--tls-cert', cert, '--tls-key', key]), tls: true },
    { name: 'nginx', port: H2_PORTS.nginx, child: run('nginx', ['-c', nginxH2Conf], 1), tls: true },
  ]
  const haproxy = proxies.find((p) => p.name === 'haproxy')!
  const tls: Proxy[] = [
    { name: 'proxy', port: TLS_PORTS.ours, child: ours(TLS_PORTS.ours, ['--tls-cert', cert, '--tls-key', key]), tls: true },
    ...(BASE_BIN ? [{ name: 'proxy-base', port: TLS_PORTS.oursBase, child: ours(TLS_PORTS.oursBase, ['--tls-cert', cert, '--tls-key', key], BASE_BIN), tls: true }] : []),
    h2[1]!,
    { name: 'haproxy', port: TLS_PORTS.haproxy, child: haproxy.child, tls: true },
  ]
  for (const p of [...proxies, ...cached, ...h2, ...tls]) await waitPort(p.port, p.tls)
  // nginx forks its worker: measure the master's whole tree (treePids).

  const plain = (label: string, path: string, conns: number): Config => ({ label, path, proxies, ref: 'nginx', load: (port, duration) => wrk(port, path, conns, duration) })
  const rows: Config[] = [
    plain('c=64 100B', '/small', 64),
    ...(QUICK
      ? []
      : [
          plain('c=256 100B', '/small', 256),
          { label: 'c=64 100B browser head', path: '/small', proxies, ref: 'nginx', load: (port: number, duration: string) => wrk(port, '/small', 64, duration, BROWSER_FIELDS) },
          plain('c=16 1MiB', '/1m', 16),
          plain('c=1 100MiB', '/100m', 1),
        ]),
    ...(QUICK ? [] : [{ label: 'TLS c=64 100B', path: '/small', proxies: tls, ref: 'nginx', load: (port: number, duration: string) => wrk(port, '/small', 64, duration, [], true) }]),
    { label: 'cache hit c=64 100B', path: '/cacheable', proxies: cached, ref: 'nginx', load: (port, duration) => wrk(port, '/cacheable', 64, duration) },
    // 160 streams in flight: within nginx's upstream keepalive 256, so neither side churns upstream connections.
    { label: 'h2 c=16 m=10 100B', path: '/small', proxies: h2, ref: 'nginx', load: (port, duration) => h2load(port, '/small', 16, 10, duration) },
  ]
  // A warm-up of each row's load on each of its proxies, unmeasured: the JIT tiers of a Bun
  // process take a second or two under load (the proxy on the TLS port serves nothing before its
  // first row), and a first round run cold would count that against it.
  for (const c of rows) for (const p of c.proxies) await c.load(p.port, WARMUP)
  const results = new Map<string, Sample[]>()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of rows) {
      for (const p of round % 2 ? c.proxies : [...c.proxies].reverse()) {
        await get(p.port, c.path, p.tls) // warm (for the cache row: the response is stored here)
        const s = await measure(p.child.pid!, () => c.load(p.port, DURATION))
        const key = `${c.label}|${p.name}`
        results.set(key, [...(results.get(key) ?? []), s])
        console.error(`round ${round} ${c.label.padEnd(19)} ${p.name.padEnd(10)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${fmt(s.p99Ms)} ms  ${s.cpuUsPerReq.toFixed(1)} µs CPU/req  ${s.mbps.toFixed(0)} MB/s  rss ${s.rssMiB.toFixed(0)} MiB  upstream conns ${s.upstreamConns}  origin requests ${s.originRequests}`)
      }
    }
  }

  console.log(`\nmedians of ${ROUNDS} interleaved rounds, wrk -t1 (h2 row: h2load -t1), ${DURATION} each${PIN ? ', proxies pinned to CPU 1, load and origin to CPU 0' : ''}, proxy workers: ${WORKERS}\n`)
  console.log('| config | proxy | req/s | × nginx | p99 ms | CPU µs/req | × nginx CPU | MB/s | × nginx MB/s | RSS MiB | upstream conns opened | origin requests |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const c of rows) {
    const ref = results.get(`${c.label}|${c.ref}`)!
    const nRps = median(ref.map((s) => s.rps))
    const nMb = median(ref.map((s) => s.mbps))
    const nCpu = median(ref.map((s) => s.cpuUsPerReq))
    for (const p of c.proxies) {
      const ss = results.get(`${c.label}|${p.name}`)!
      const rps = median(ss.map((s) => s.rps))
      const mb = median(ss.map((s) => s.mbps))
      const cpu = median(ss.map((s) => s.cpuUsPerReq))
      console.log(
        `| ${c.label} | ${p.name} | ${rps.toFixed(0)} | ${(rps / nRps).toFixed(2)} | ${fmt(median(ss.map((s) => s.p99Ms)))} | ${cpu.toFixed(1)} | ${nCpu ? (cpu / nCpu).toFixed(2) : '-'} | ${mb.toFixed(0)} | ${nMb ? (mb / nMb).toFixed(2) : '-'} | ${Math.max(...ss.map((s) => s.rssMiB)).toFixed(0)} | ${median(ss.map((s) => s.upstreamConns))} | ${median(ss.map((s) => s.originRequests))} |`,
      )
    }
  }
}

const fmt = (ms: number) => (Number.isNaN(ms) ? '-' : ms.toFixed(2))

try {
  await main()
} finally {
  cleanup()
}
