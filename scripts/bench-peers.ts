/**
 * Side-by-side throughput of this proxy against nginx and HAProxy, in one run, on loopback.
 *
 *   bun scripts/bench-peers.ts [--rounds 3] [--duration 5s] [--pin] [--workers auto] [--quick] [--base-bin FILE]
 *
 * Starts an nginx origin (a 100-byte response, 1 MiB and 100 MiB files) and, in front of it,
 * with one worker each: dist/proxy, nginx (upstream keepalive 256), HAProxy, and the floor: a
 * bare Bun byte relay (scripts/floor-relay.ts, no HTTP parsing), the runtime's limit. With
 * --base-bin, another build of the proxy runs beside dist/proxy as "proxy-base" (a before/after
 * comparison in one run).
 * Every configuration runs `wrk -t1` against each proxy in turn, round after round (interleaved,
 * so drift hits all alike), and records req/s, p99, the proxy's CPU time per request (from
 * /proc), its RSS, and the upstream connections it opened (from the origin's stub_status).
 * Prints medians and ratios against nginx. Installs nginx, haproxy and wrk from Debian if they
 * are missing. Everything listens on 127.0.0.1; everything started is killed by PID at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureBinary } from '../test/support/binary.ts'

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

const PORTS = { origin: 18200, ours: 18201, nginx: 18202, haproxy: 18203, oursBase: 18204, floor: 18205, status: 18209 }
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

function nginxConf(name: string, body: string): string {
  const path = join(dir, `${name}.conf`)
  writeFileSync(
    path,
    `worker_processes 1;\ndaemon off;\npid ${join(dir, `${name}.pid`)};\nerror_log ${join(dir, `${name}.err`)} warn;\nevents { worker_connections 8192; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n  sendfile on;\n${body}\n}\n`,
  )
  return path
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/small`)
      await r.arrayBuffer()
      return
    } catch {
      await Bun.sleep(50)
    }
  }
  throw new Error(`nothing listening on ${port}`)
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // utime+stime in clock ticks (100/s)
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

/** All PIDs of a process tree (a supervisor and its workers). */
function treePids(pid: number): number[] {
  const out = spawnSync('sh', ['-c', `pgrep -P ${pid}`]).stdout.toString().trim()
  return [pid, ...out.split('\n').filter(Boolean).map(Number).flatMap(treePids)]
}

async function originAccepts(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORTS.status}/status`)).text()
  const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text)
  return m ? Number(m[1]) : 0
}

interface Sample {
  rps: number
  p99Ms: number
  cpuUsPerReq: number
  rssMiB: number
  upstreamConns: number
  mbps: number
}

function parseWrk(text: string): { rps: number; p99Ms: number; mbps: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0)
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text)
  const unit = p99?.[2] === 'us' ? 0.001 : p99?.[2] === 's' ? 1000 : 1
  const tr = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(text)
  const f = { B: 1e-6, KB: 1e-3, MB: 1, GB: 1e3 }[tr?.[2] ?? 'B'] ?? 1
  return { rps, p99Ms: p99 ? Number(p99[1]) * unit : 0, mbps: tr ? Number(tr[1]) * f : 0 }
}

async function measure(pid: number, port: number, path: string, conns: number, duration: string): Promise<Sample> {
  const pids = treePids(pid)
  const cpu0 = pids.reduce((a, p) => a + cpuMs(p), 0)
  const acc0 = await originAccepts()
  let peakRss = 0
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, pids.reduce((a, p) => a + rssMiB(p), 0))), 200)
  const wrkArgs = ['-t1', `-c${conns}`, `-d${duration}`, '--latency', `http://127.0.0.1:${port}${path}`]
  const out = await new Promise<string>((resolve) => {
    const w = PIN ? spawn('taskset', ['-c', '0', 'wrk', ...wrkArgs]) : spawn('wrk', wrkArgs)
    let text = ''
    w.stdout.on('data', (d: Buffer) => (text += d.toString()))
    w.on('close', () => resolve(text))
  })
  clearInterval(sampler)
  const cpu1 = pids.reduce((a, p) => a + cpuMs(p), 0)
  const acc1 = await originAccepts()
  const { rps, p99Ms, mbps } = parseWrk(out)
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  return { rps, p99Ms, cpuUsPerReq: requests ? ((cpu1 - cpu0) * 1000) / requests : 0, rssMiB: peakRss, upstreamConns: acc1 - acc0, mbps }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : 0
}

async function main(): Promise<void> {
  need('nginx', 'nginx-light')
  need('haproxy', 'haproxy')
  need('wrk', 'wrk')
  const bin = ensureBinary()
  spawnSync('chmod', ['755', dir]) // nginx workers run as www-data
  const www = join(dir, 'www')
  spawnSync('mkdir', ['-p', www])
  writeFileSync(join(www, 'small'), 'x'.repeat(100))
  spawnSync('sh', ['-c', `head -c 1048576 /dev/zero > ${join(www, '1m')} && head -c 104857600 /dev/zero > ${join(www, '100m')}`])

  const originConf = nginxConf(
    'origin',
    `  server { listen 127.0.0.1:${PORTS.origin}; root ${www}; location = /small { default_type text/plain; } }\n  server { listen 127.0.0.1:${PORTS.status}; location /status { stub_status; } }`,
  )
  run('nginx', ['-c', originConf], 0)
  const nginxProxyConf = nginxConf(
    'nginx-proxy',
    `  upstream origin { server 127.0.0.1:${PORTS.origin}; keepalive 256; }\n  server { listen 127.0.0.1:${PORTS.nginx}; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on; } }`,
  )
  const haproxyCfg = join(dir, 'haproxy.cfg')
  writeFileSync(
    haproxyCfg,
    `global\n  maxconn 8000\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\nfrontend f\n  bind 127.0.0.1:${PORTS.haproxy}\n  default_backend b\nbackend b\n  http-reuse always\n  server o 127.0.0.1:${PORTS.origin} maxconn 1000\n`,
  )
  await waitPort(PORTS.origin)
  const proxies: { name: string; port: number; child: ChildProcess }[] = [
    { name: 'proxy', port: PORTS.ours, child: run(bin, ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${PORTS.ours}`, '--admin', 'off', '--access-log', 'off', '--workers', WORKERS], 1) },
    ...(BASE_BIN ? [{ name: 'proxy-base', port: PORTS.oursBase, child: run(BASE_BIN, ['serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${PORTS.oursBase}`, '--admin', 'off', '--access-log', 'off', '--workers', WORKERS], 1) }] : []),
    { name: 'nginx', port: PORTS.nginx, child: run('nginx', ['-c', nginxProxyConf], 1) },
    { name: 'haproxy', port: PORTS.haproxy, child: run('haproxy', ['-f', haproxyCfg], 1) },
    { name: 'floor', port: PORTS.floor, child: run(process.execPath, [join(import.meta.dir, 'floor-relay.ts'), String(PORTS.floor), String(PORTS.origin)], 1) },
  ]
  for (const p of proxies) await waitPort(p.port)
  // nginx forks its worker: measure the master's whole tree (treePids).

  const configs = QUICK
    ? [{ label: 'c=64 100B', path: '/small', conns: 64, duration: DURATION }]
    : [
        { label: 'c=64 100B', path: '/small', conns: 64, duration: DURATION },
        { label: 'c=256 100B', path: '/small', conns: 256, duration: DURATION },
        { label: 'c=16 1MiB', path: '/1m', conns: 16, duration: DURATION },
        { label: 'c=1 100MiB', path: '/100m', conns: 1, duration: DURATION },
      ]
  const results = new Map<string, Sample[]>()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of configs) {
      for (const p of round % 2 ? proxies : [...proxies].reverse()) {
        await fetch(`http://127.0.0.1:${p.port}${c.path}`).then((r) => r.arrayBuffer()) // warm
        const s = await measure(p.child.pid!, p.port, c.path, c.conns, c.duration)
        const key = `${c.label}|${p.name}`
        results.set(key, [...(results.get(key) ?? []), s])
        console.error(`round ${round} ${c.label.padEnd(11)} ${p.name.padEnd(8)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${s.p99Ms.toFixed(2)} ms  ${s.cpuUsPerReq.toFixed(1)} µs CPU/req  ${s.mbps.toFixed(0)} MB/s  rss ${s.rssMiB.toFixed(0)} MiB  upstream conns ${s.upstreamConns}`)
      }
    }
  }

  console.log(`\nmedians of ${ROUNDS} interleaved rounds, wrk -t1, ${DURATION} each${PIN ? ', proxies pinned to CPU 1, wrk and origin to CPU 0' : ''}, proxy workers: ${WORKERS}\n`)
  console.log('| config | proxy | req/s | × nginx | p99 ms | CPU µs/req | MB/s | × nginx MB/s | RSS MiB | upstream conns opened |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const c of configs) {
    const nginx = results.get(`${c.label}|nginx`)!
    const nRps = median(nginx.map((s) => s.rps))
    const nMb = median(nginx.map((s) => s.mbps))
    for (const p of proxies) {
      const ss = results.get(`${c.label}|${p.name}`)!
      const rps = median(ss.map((s) => s.rps))
      const mb = median(ss.map((s) => s.mbps))
      console.log(
        `| ${c.label} | ${p.name} | ${rps.toFixed(0)} | ${(rps / nRps).toFixed(2)} | ${median(ss.map((s) => s.p99Ms)).toFixed(2)} | ${median(ss.map((s) => s.cpuUsPerReq)).toFixed(1)} | ${mb.toFixed(0)} | ${nMb ? (mb / nMb).toFixed(2) : '-'} | ${Math.max(...ss.map((s) => s.rssMiB)).toFixed(0)} | ${median(ss.map((s) => s.upstreamConns))} |`,
      )
    }
  }
}

try {
  await main()
} finally {
  cleanup()
}
