/**
 * Which HTTP/2 server to build on, by measurement: the same small response served over TLS + ALPN
 * h2 by (a) our own session (src/http2) on Bun.listen, (b) node:http2 createSecureServer under
 * Bun, (c) Bun.serve({ tls, http2: true }). Each runs in its own child process; `h2load -n 20000
 * -c 4 -m 10` runs against each in turn, round after round (interleaved, so drift hits all
 * alike), after one unrecorded warm-up run each. Reports median req/s and the server's CPU time per request (utime+stime from /proc),
 * with ratios against our own session.
 *
 *   bun scripts/h2-compare.ts [--rounds 3] [--requests 20000]
 *
 * Everything listens on 127.0.0.1 and every child is killed by PID at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { makeCerts } from '../test/support/certs.ts'

const BODY = 'hello, h2 world\n'
const KINDS = ['own', 'node', 'bunserve'] as const
type Kind = (typeof KINDS)[number]
const LABEL: Record<Kind, string> = { own: 'own session on Bun.listen', node: 'node:http2 under Bun', bunserve: 'Bun.serve http2: true' }

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}

if (args[0] === '--serve') await serve(args[1] as Kind, args[2]!, args[3]!)
else await main()

/** Child mode: one server on port 0; prints the port on stdout. */
async function serve(kind: Kind, certFile: string, keyFile: string): Promise<void> {
  const cert = readFileSync(certFile, 'utf8')
  const key = readFileSync(keyFile, 'utf8')
  const headers: [string, string][] = [['content-type', 'text/plain'], ['content-length', String(BODY.length)]]
  let port: number
  if (kind === 'own') {
    const { listenH2 } = await import('../src/http2/bun-listener.ts')
    const bytes = new TextEncoder().encode(BODY)
    const l = listenH2({
      hostname: '127.0.0.1',
      port: 0,
      tls: { cert, key },
      onRequest(stream) {
        stream.respond(200, headers)
        stream.end(bytes)
      },
    })
    port = l.port
  } else if (kind === 'node') {
    const http2 = await import('node:http2')
    const server = http2.createSecureServer({ cert, key })
    server.on('stream', (stream: import('node:http2').ServerHttp2Stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length })
      stream.end(BODY)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as { port: number }).port
  } else {
    const server = Bun.serve({ hostname: '127.0.0.1', port: 0, tls: { cert, key }, http2: true, fetch: () => new Response(BODY, { headers }) } as Parameters<typeof Bun.serve>[0])
    port = server.port!
  }
  console.log(String(port))
  await new Promise(() => {})
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // utime + stime in clock ticks (100/s)
}

interface Sample {
  rps: number
  cpuUsPerReq: number
  ok: number
}

async function main(): Promise<void> {
  const rounds = Number(opt('--rounds', '3'))
  const requests = Number(opt('--requests', '20000'))
  if (spawnSync('sh', ['-c', 'command -v h2load']).status !== 0) throw new Error('h2load is missing: apt-get install nghttp2-client')
  const certs = makeCerts(['origin.test'], ['127.0.0.1'])
  const children: ChildProcess[] = []
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  }
  process.on('exit', cleanup)
  process.on('SIGINT', () => process.exit(130))
  const servers = new Map<Kind, { pid: number; port: number }>()
  for (const kind of KINDS) {
    const child = spawn(process.execPath, [import.meta.path, '--serve', kind, certs.certFile, certs.keyFile], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
      child.once('exit', () => reject(new Error(`${kind} server exited`)))
    })
    servers.set(kind, { pid: child.pid!, port })
  }
  const samples = new Map<Kind, Sample[]>(KINDS.map((k) => [k, []]))
  // One short unrecorded run each, so that JIT warm-up is not measured.
  for (const kind of KINDS) spawnSync('h2load', ['-n', '5000', '-c', '4', '-m', '10', `https://127.0.0.1:${servers.get(kind)!.port}/`], { timeout: 60_000 })
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kind of KINDS) {
        const { pid, port } = servers.get(kind)!
        const cpu0 = cpuMs(pid)
        const r = spawnSync('h2load', ['-n', String(requests), '-c', '4', '-m', '10', `https://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 120_000 })
        const cpu1 = cpuMs(pid)
        const out = r.stdout ?? ''
        const rps = Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0)
        const ok = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0)
        const s: Sample = { rps, cpuUsPerReq: ((cpu1 - cpu0) * 1000) / requests, ok }
        samples.get(kind)!.push(s)
        console.error(`round ${round} ${LABEL[kind].padEnd(26)} ${rps.toFixed(0).padStart(7)} req/s  ${s.cpuUsPerReq.toFixed(1).padStart(5)} µs CPU/req  ${ok}/${requests} 2xx`)
      }
    }
  } finally {
    cleanup()
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const own = samples.get('own')!
  const ownRps = median(own.map((s) => s.rps))
  const ownCpu = median(own.map((s) => s.cpuUsPerReq))
  console.log(`\nh2load -n ${requests} -c 4 -m 10, TLS + ALPN h2, ${BODY.length}-byte response; medians of ${rounds} interleaved rounds\n`)
  console.log('| server | req/s | req/s vs own | CPU µs/req | CPU vs own | 2xx |')
  console.log('|---|---|---|---|---|---|')
  for (const kind of KINDS) {
    const ss = samples.get(kind)!
    const rps = median(ss.map((s) => s.rps))
    const cpu = median(ss.map((s) => s.cpuUsPerReq))
    console.log(`| ${LABEL[kind]} | ${rps.toFixed(0)} | ${(rps / ownRps).toFixed(2)} | ${cpu.toFixed(1)} | ${(cpu / ownCpu).toFixed(2)} | ${Math.min(...ss.map((s) => s.ok))}/${requests} |`)
  }
}
