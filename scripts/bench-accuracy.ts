/**
 * How well `proxy bench` agrees with curl: both time the same local TLS endpoint (a test CA, a
 * name pinned to 127.0.0.1, a node:tls server that waits before its first byte and closes each
 * connection after its response), on new connections, twice:
 *   - full handshakes: curl --no-sessionid, and proxy bench --no-tls-resume;
 *   - resumed handshakes: curl's own session cache (one curl process, several URLs: every
 *     connection after the first offers the session), and proxy bench's default.
 * The server counts which handshakes it resumed, so each side's "resumed" is checked against the
 * server's own view. curl's -w times are cumulative; they are turned into phases the way
 * `proxy bench --explain` describes. curl 7.88 (Debian 12) has no session file (--ssl-sessions
 * came in 8.12), so resumption is measured within one curl process.
 *
 * The script fails (exit 1) when a WAIT median differs by more than ±1 ms.
 *
 *   bun scripts/bench-accuracy.ts [--runs 30] [--delay-ms 50]
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type TLSSocket } from 'node:tls'
import { percentile } from '../src/bench/stats.ts'
import { makeCerts } from '../test/support/certs.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def)
const RUNS = opt('--runs', 30)
const DELAY_MS = opt('--delay-ms', 50)
const WAIT_TOLERANCE_MS = 1
const BODY = 'x'.repeat(64 * 1024)

if (spawnSync('sh', ['-c', 'command -v curl']).status !== 0) {
  console.error('curl is needed: apt-get install curl')
  process.exit(1)
}
const certs = makeCerts(['accuracy.test'], ['127.0.0.1'])
/** Per accepted connection: did the server resume a session. Reset before each measurement. */
let serverResumed: boolean[] = []
const server = createServer({ cert: certs.cert, key: certs.key, ALPNProtocols: ['http/1.1'] }, (s: TLSSocket) => {
  serverResumed.push(s.isSessionReused())
  let head = ''
  s.on('data', (d: Buffer) => {
    head += d.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    head = ''
    setTimeout(() => s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`), DELAY_MS)
  })
  s.on('error', () => {})
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
const port = (server.address() as { port: number }).port
const url = `https://accuracy.test:${port}/`
const pin = `accuracy.test:${port}:127.0.0.1`

/** Runs a command without blocking this process's event loop (the server lives here too). */
function run(cmd: string, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, argv)
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    c.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const PHASES = ['connect', 'tls', 'wait', 'transfer', 'total'] as const
type Phases = Record<(typeof PHASES)[number], number[]>

/** One curl process, RUNS URLs, one new connection each (the server closes). */
async function curlRun(resume: boolean): Promise<{ phases: Phases; resumed: boolean[] }> {
  serverResumed = []
  const argv = ['-s', '--cacert', certs.caFile, '--resolve', pin, '-w', '%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total}\\n']
  if (!resume) argv.push('--no-sessionid')
  for (let i = 0; i < RUNS; i++) argv.push(url, '-o', '/dev/null')
  const out = (await run('curl', argv)).stdout
  const phases: Phases = { connect: [], tls: [], wait: [], transfer: [], total: [] }
  for (const line of out.trim().split('\n')) {
    const [dns, connect, app, pre, start, total] = line.split(' ').map((s) => Number(s) * 1000) as number[]
    phases.connect.push(connect! - dns!)
    phases.tls.push(app! - connect!)
    phases.wait.push(start! - pre!)
    phases.transfer.push(total! - start!)
    phases.total.push(total!)
  }
  return { phases, resumed: serverResumed }
}

/** proxy bench through the CLI: RUNS new connections. */
async function benchRun(resume: boolean): Promise<{ phases: Phases; resumed: boolean[]; reported: boolean[] }> {
  serverResumed = []
  const file = join(mkdtempSync(join(tmpdir(), 'bench-accuracy-')), 'samples.ndjson')
  const runner = await run(process.execPath, ['src/main.ts', 'bench', url, '--resolve', pin, '--cacert', certs.caFile, '-n', String(RUNS), '--no-keepalive', ...(resume ? [] : ['--no-tls-resume']), '--samples', file])
  if (runner.code !== 0) {
    console.error(runner.stderr)
    process.exit(1)
  }
  const phases: Phases = { connect: [], tls: [], wait: [], transfer: [], total: [] }
  const reported: boolean[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue
    const s = JSON.parse(line) as { phases: Record<string, number>; tls_resumed?: boolean }
    for (const p of PHASES) phases[p].push(s.phases[p]!)
    reported.push(Boolean(s.tls_resumed))
  }
  return { phases, resumed: serverResumed, reported }
}

const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5)
/** Resumed runs: every connection after the first (the first has no session to offer). */
const afterFirst = (p: Phases): Phases => Object.fromEntries(PHASES.map((k) => [k, p[k].slice(1)])) as Phases

let worstWait = 0
function table(title: string, curl: Phases, bench: Phases): void {
  console.log(`\n${title}\n`)
  console.log('| phase | curl -w median (ms) | proxy bench median (ms) | difference (ms) |')
  console.log('|---|---|---|---|')
  for (const p of PHASES) {
    const c = med(curl[p])
    const b = med(bench[p])
    if (p === 'wait') worstWait = Math.max(worstWait, Math.abs(b - c))
    console.log(`| ${p} | ${c.toFixed(2)} | ${b.toFixed(2)} | ${(b - c >= 0 ? '+' : '') + (b - c).toFixed(2)} |`)
  }
}

console.log(`${RUNS} new TLS connections per run to ${url} (pinned to 127.0.0.1, first byte after ${DELAY_MS} ms, 64 KiB body, the server closes each connection)`)
const curlFull = await curlRun(false)
const benchFull = await benchRun(false)
const curlResumed = await curlRun(true)
const benchResumed = await benchRun(true)
table('Full handshakes (curl --no-sessionid; proxy bench --no-tls-resume)', curlFull.phases, benchFull.phases)
table('Resumed handshakes (connections 2…N; curl reuses its session in one process; proxy bench by default)', afterFirst(curlResumed.phases), afterFirst(benchResumed.phases))
const count = (xs: boolean[]) => xs.filter(Boolean).length
console.log('\nResumed handshakes, as the server saw them and as each client reported them:\n')
console.log('| run | server: resumed / connections | proxy bench tls_resumed |')
console.log('|---|---|---|')
console.log(`| curl, full | ${count(curlFull.resumed)} / ${curlFull.resumed.length} | |`)
console.log(`| curl, resumed | ${count(curlResumed.resumed)} / ${curlResumed.resumed.length} | |`)
console.log(`| proxy bench --no-tls-resume | ${count(benchFull.resumed)} / ${benchFull.resumed.length} | ${count(benchFull.reported)} |`)
console.log(`| proxy bench | ${count(benchResumed.resumed)} / ${benchResumed.resumed.length} | ${count(benchResumed.reported)} |`)
server.close()

const agree = JSON.stringify(benchResumed.resumed) === JSON.stringify(benchResumed.reported) && JSON.stringify(benchFull.resumed) === JSON.stringify(benchFull.reported)
console.log(`\nWAIT: largest median difference ${worstWait.toFixed(2)} ms (tolerance ±${WAIT_TOLERANCE_MS} ms); tls_resumed ${agree ? 'agrees' : 'DISAGREES'} with the server on every connection`)
if (worstWait > WAIT_TOLERANCE_MS || !agree) process.exit(1)
