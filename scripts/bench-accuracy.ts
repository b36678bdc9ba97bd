/**
 * How well `proxy bench` agrees with curl: both time the same local TLS endpoint (a test CA,
 * a name pinned to 127.0.0.1, a server that waits before its first byte), on fresh connections,
 * and the per-phase medians are printed side by side. curl's -w times are cumulative; they are
 * turned into phases here the same way `proxy bench --explain` describes.
 *
 *   bun scripts/bench-accuracy.ts [--runs 30] [--delay-ms 50]
 */
import { spawn, spawnSync } from 'node:child_process'
import { percentile } from '../src/bench/stats.ts'
import { makeCerts } from '../test/support/certs.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def)
const RUNS = opt('--runs', 30)
const DELAY_MS = opt('--delay-ms', 50)
const BODY = 'x'.repeat(64 * 1024)

if (spawnSync('sh', ['-c', 'command -v curl']).status !== 0) {
  console.error('curl is needed: apt-get install curl')
  process.exit(1)
}
const certs = makeCerts(['accuracy.test'], ['127.0.0.1'])
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  tls: { cert: certs.cert, key: certs.key },
  async fetch() {
    await Bun.sleep(DELAY_MS)
    return new Response(BODY)
  },
})
const url = `https://accuracy.test:${server.port}/`
const pin = `accuracy.test:${server.port}:127.0.0.1`

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

// curl: one fresh connection per run.
const curlPhases: Record<string, number[]> = { connect: [], tls: [], wait: [], transfer: [], total: [] }
for (let i = 0; i < RUNS; i++) {
  const out = (await run('curl', ['-s', '-o', '/dev/null', '--cacert', certs.caFile, '--resolve', pin, '-w', '%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total}', url])).stdout
  const [dns, connect, app, pre, start, total] = out.trim().split(' ').map((s) => Number(s) * 1000) as number[]
  curlPhases.connect!.push(connect! - dns!)
  curlPhases.tls!.push(app! - connect!)
  curlPhases.wait!.push(start! - pre!)
  curlPhases.transfer!.push(total! - start!)
  curlPhases.total!.push(total!)
}

// proxy bench: the same number of fresh connections, through the CLI.
const runner = await run(process.execPath, ['src/main.ts', 'bench', url, '--resolve', pin, '--cacert', certs.caFile, '-n', String(RUNS), '--no-keepalive', '--json'])
if (runner.code !== 0) {
  console.error(runner.stderr)
  process.exit(1)
}
const report = JSON.parse(runner.stdout) as { phases: Record<string, { p50: number }> }

const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5)
console.log(`\n${RUNS} fresh TLS connections each to ${url} (pinned to 127.0.0.1, first byte after ${DELAY_MS} ms, 64 KiB body)\n`)
console.log('| phase | curl -w median (ms) | proxy bench median (ms) | difference (ms) |')
console.log('|---|---|---|---|')
for (const p of ['connect', 'tls', 'wait', 'transfer', 'total']) {
  const c = med(curlPhases[p]!)
  const b = report.phases[p]?.p50 ?? Number.NaN
  console.log(`| ${p} | ${c.toFixed(2)} | ${b.toFixed(2)} | ${(b - c >= 0 ? '+' : '') + (b - c).toFixed(2)} |`)
}
server.stop(true)
