/**
 * What parts of a proxied request cost, one phase at a time (issue 18: find where the user time
 * goes), beside the runtime's floor for the same work:
 *
 *   bun scripts/phase-costs.ts [--exchanges 100000] [--loops 64]
 *
 * 1. Head work in a tight loop, µs per call: the request head parser, the response head parser
 *    on nginx's usual head, the header sets sent upstream and to the client, the response head's
 *    encoding. (JIT-warm and cache-hot: a lower bound of what they cost in place.)
 * 2. Upstream exchanges over real sockets to a local nginx (`return 200` of 100 bytes,
 *    keepalive_requests 1000000), `--loops` concurrent loops each sending one request after the
 *    other on its own connection: this proxy's upstream connection and exchange
 *    (proxy/upstream/connection.ts, exchange.ts) against a bare Bun.connect loop that writes the
 *    same request bytes and counts the answer's bytes. Reports exchanges/s and this process's
 *    user and system CPU time per exchange (process.cpuUsage); run it twice, the figures vary on
 *    a shared machine, and read the ratio.
 * Loopback only; nginx is started in a temp dir and killed at the end.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRequestHead, HeadHeaders } from '../src/http1/request-head.ts'
import { parseResponseHead } from '../src/http1/response-head.ts'
import { planResponseHead } from '../src/http1/response-encode.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from '../src/proxy/headers.ts'
import { dial } from '../src/runtime/socket.ts'
import { Http1Connection, type ExchangeOptions } from '../src/proxy/upstream/connection.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const EXCHANGES = Number(opt('--exchanges', '100000'))
const LOOPS = Number(opt('--loops', '64'))
const PORT = 18320

// 1. Head work in a loop.
function perCall(name: string, calls: number, fn: () => unknown): void {
  let sink: unknown
  for (let i = 0; i < 50_000; i++) sink = fn()
  const t0 = performance.now()
  for (let i = 0; i < calls; i++) sink = fn()
  const us = ((performance.now() - t0) * 1000) / calls
  console.log(`  ${name.padEnd(34)} ${us.toFixed(3)} µs${sink === undefined ? ' (no result)' : ''}`)
}
const requestText = 'GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080'
const responseText = 'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 04:04:47 GMT\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: keep-alive'
const parsedRequest = parseRequestHead(requestText)
const requestHeaders = HeadHeaders.of(parsedRequest)
const parsedResponse = parseResponseHead(responseText, 'GET')
const toClient = clientResponseHeaders(parsedResponse.headers, '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77', true)
console.log('head work, in a loop (per call):')
perCall('request head parse (wrk GET)', 300_000, () => parseRequestHead(requestText))
perCall('response head parse (nginx, 5 fields)', 300_000, () => parseResponseHead(responseText, 'GET'))
perCall('headers sent upstream', 300_000, () =>
  upstreamRequestHeaders(requestHeaders, { clientIp: '127.0.0.1', trustedPeer: false, proto: 'http', clientHost: '127.0.0.1:8080', hostOverride: undefined, requestId: '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77' }),
)
perCall('headers sent to the client', 300_000, () => clientResponseHeaders(parsedResponse.headers, '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77', true))
perCall('response head encoding', 300_000, () => planResponseHead({ status: 200, statusText: 'OK', headers: toClient, method: 'GET', minor: 1, bodyLength: 100, close: false }))

// 2. Upstream exchanges against a bare socket loop.
const dir = mkdtempSync(join(tmpdir(), 'phase-costs-'))
const conf = join(dir, 'nginx.conf')
writeFileSync(
  conf,
  `worker_processes 1;\ndaemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'err.log')} warn;\nevents { worker_connections 1024; }\n` +
    `http {\n  access_log off;\n  keepalive_requests 1000000;\n  server {\n    listen 127.0.0.1:${PORT};\n    location = /small { return 200 "${'x'.repeat(100)}"; }\n  }\n}\n`,
)
if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) throw new Error('nginx is needed (apt-get install nginx)')
const nginx = spawn('nginx', ['-c', conf], { stdio: 'ignore', detached: true })
process.on('exit', () => {
  try {
    process.kill(-nginx.pid!, 'SIGKILL')
  } catch {}
})
for (let i = 0; i < 50; i++) {
  try {
    await fetch(`http://127.0.0.1:${PORT}/small`)
    break
  } catch {
    await Bun.sleep(100)
  }
}
const headers: [string, string][] = [
  ['host', `127.0.0.1:${PORT}`],
  ['x-forwarded-for', '127.0.0.1'],
  ['x-forwarded-proto', 'http'],
  ['x-forwarded-host', `127.0.0.1:${PORT}`],
  ['x-request-id', '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77'],
]
const requestBytes = Buffer.from(`GET /small HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1')

/** The length of one answer, head and body: the raw loop counts bytes to know an answer is in. */
async function measureAnswerBytes(): Promise<number> {
  let got = 0
  const s = await Bun.connect({ hostname: '127.0.0.1', port: PORT, socket: { data: (_s, d) => void (got += d.byteLength) } })
  s.write(requestBytes)
  for (let i = 0; i < 40 && got === 0; i++) await Bun.sleep(25)
  await Bun.sleep(100) // the whole answer is a few hundred bytes in one segment; wait for any rest
  s.end()
  if (got === 0) throw new Error('nginx did not answer')
  return got
}
const answerBytes = await measureAnswerBytes()

async function ourLoop(count: { done: number }): Promise<void> {
  const conn = await dial({ address: '127.0.0.1', port: PORT, connectTimeoutMs: 2000, tls: undefined })
  let released: () => void = () => {}
  const c = new Http1Connection(conn, () => released())
  const opts: ExchangeOptions = { headerTimeoutMs: 10_000, idleTimeoutMs: 10_000 }
  while (count.done < EXCHANGES) {
    const over = new Promise<void>((r) => (released = r))
    const res = await c.exchange({ method: 'GET', target: '/small', headers, body: null, bodyLength: undefined, maxBodyBytes: 0 }, opts)
    if (!(res.body instanceof Uint8Array)) throw new Error('expected a whole small body')
    await over
    count.done++
  }
  c.destroy()
}

async function rawLoop(count: { done: number }): Promise<void> {
  let wake: () => void = () => {}
  let got = 0
  const s = await Bun.connect({
    hostname: '127.0.0.1',
    port: PORT,
    socket: {
      data(_s, d) {
        got += d.byteLength
        if (got >= answerBytes) {
          got -= answerBytes
          wake()
        }
      },
    },
  })
  while (count.done < EXCHANGES) {
    const answered = new Promise<void>((r) => (wake = r))
    s.write(requestBytes)
    await answered
    count.done++
  }
  s.end()
}

async function run(name: string, loop: (count: { done: number }) => Promise<void>): Promise<void> {
  const count = { done: 0 }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: LOOPS }, () => loop(count)))
  const cpu = process.cpuUsage(cpu0)
  const s = (performance.now() - t0) / 1000
  console.log(`  ${name.padEnd(34)} ${(count.done / s).toFixed(0).padStart(7)} /s, user ${(cpu.user / count.done).toFixed(2)} µs, system ${(cpu.system / count.done).toFixed(2)} µs per exchange`)
}

console.log(`upstream exchanges, ${LOOPS} loops, ${EXCHANGES} in all (nginx answers ${answerBytes} bytes):`)
for (let round = 0; round < 2; round++) {
  await run('bare Bun.connect loop', rawLoop)
  await run('proxy connection + exchange', ourLoop)
}
process.exit(0)
