/**
 * Differential table of malformed and ambiguous requests: each case is sent as raw bytes to
 * this proxy (its own HTTP/1.1 listener) and to
 * nginx from Debian, all in front of the same counting origin, in one run.
 * Prints, per case, the status each proxy answered and whether anything reached the origin.
 *
 *   bun scripts/differential.ts
 *
 * Installs nginx-light if it is missing. Only loopback; everything started is killed at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureBinary } from '../test/support/binary.ts'

const H = 'Host: a.example\r\n'
export const CASES: [string, string][] = [
  ['CL and TE both', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`],
  ['two differing CL', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`],
  ['CL list "3, 5"', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 5\r\n\r\nabcde`],
  ['TE gzip (not chunked)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`],
  ['TE "gzip, chunked"', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['TE "chunked, gzip"', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['TE xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['space before colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['bad header name', `GET / HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`],
  ['control char in value', `GET / HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`],
  ['NUL in value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`],
  ['bare CR', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`],
  ['no Host (HTTP/1.1)', 'GET / HTTP/1.1\r\n\r\n'],
  ['two Host', `GET / HTTP/1.1\r\n${H}Host: b.example\r\n\r\n`],
  ['request line 70 KB', `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n${H}\r\n`],
  ['headers 70 KB', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(70_000)}\r\n\r\n`],
  ['absolute-form, other host', `GET http://evil.example/x HTTP/1.1\r\n${H}\r\n`],
  ['CONNECT', 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n'],
  ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`],
  ['negative CL', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`],
  ['signed CL "+3"', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`],
  ...notOwsCases(),
]

/**
 * Bytes that JavaScript's trim() (and some parsers) treat as whitespace but RFC 9110 §5.6.3 does
 * not (OWS is SP and HTAB only), before or after a framing value, Host, and in a chunk-size line.
 */
function notOwsCases(): [string, string][] {
  const out: [string, string][] = []
  const chunked = 'Transfer-Encoding: chunked\r\n'
  for (const [label, b] of [['VT', '\x0b'], ['FF', '\x0c'], ['NEL', '\x85'], ['NBSP', '\xa0']]) {
    out.push([`CL ${label} before value`, `POST / HTTP/1.1\r\n${H}Content-Length: ${b}5\r\n\r\nabcde`])
    out.push([`CL ${label} after value`, `POST / HTTP/1.1\r\n${H}Content-Length: 5${b}\r\n\r\nabcde`])
    out.push([`TE ${label} before value`, `POST / HTTP/1.1\r\n${H}Transfer-Encoding:${b}chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`])
    out.push([`TE ${label} after value`, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked${b}\r\n\r\n3\r\nabc\r\n0\r\n\r\n`])
    out.push([`Host ${label} before value`, `GET / HTTP/1.1\r\nHost: ${b}a.example\r\n\r\n`])
    out.push([`Host ${label} after value`, `GET / HTTP/1.1\r\nHost: a.example${b}\r\n\r\n`])
    out.push([`chunk size ${label} after`, `POST / HTTP/1.1\r\n${H}${chunked}\r\n3${b}\r\nabc\r\n0\r\n\r\n`])
  }
  return out
}

/** Sends raw bytes and collects the reply until the peer closes or 1.5 s pass. */
export function sendRaw(port: number, raw: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    const done = () => {
      clearTimeout(timer)
      resolve(got)
    }
    const timer = setTimeout(() => {
      s.destroy()
      done()
    }, 1500)
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', done)
    s.on('error', done)
    s.write(raw, 'latin1')
  })
}

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) {
    spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light'], { stdio: 'inherit' })
  }
  const seen: string[] = []
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      let body = ''
      try {
        body = await req.text()
      } catch {
        body = '(aborted)'
      }
      seen.push(`${req.method} ${new URL(req.url).pathname} body=${JSON.stringify(body.slice(0, 20))}`)
      return new Response('origin')
    },
  })
  // The proxy and nginx listen on fixed ports: a server already there would be measured in their place.
  for (const port of [18400, 18401]) {
    const taken = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    )
    if (taken) {
      console.error(`port ${port} on 127.0.0.1 is in use: stop what listens there (this script runs the proxy on 18400 and nginx on 18401)`)
      process.exit(2)
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'differential-'))
  chmodSync(dir, 0o755)
  const conf = join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx.err')} crit;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  server { listen 127.0.0.1:18401; location / { proxy_pass http://127.0.0.1:${origin.port}; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`,
  )
  const children: ChildProcess[] = []
  const start = (cmd: string, argv: string[]) => {
    const c = spawn(cmd, argv, { stdio: 'ignore', detached: true })
    children.push(c)
  }
  start('nginx', ['-c', conf])
  start(ensureBinary(), ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:18400', '--admin', 'off', '--access-log', 'off'])
  try {
    await Bun.sleep(1000)
    console.log('| case | proxy | reached origin | nginx 1.22 | reached origin |')
    console.log('|---|---|---|---|---|')
    for (const [name, raw] of CASES) {
      const row: string[] = [name]
      for (const port of [18400, 18401]) {
        seen.length = 0
        const reply = await sendRaw(port, raw)
        await Bun.sleep(50)
        const statuses = [...reply.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => m[1])
        row.push(statuses.join(', ') || '(closed)', seen.length ? `yes: ${seen.join('; ')}` : 'no')
      }
      console.log(`| ${row.join(' | ')} |`)
    }
  } finally {
    for (const c of children) {
      try {
        process.kill(-c.pid!, 'SIGKILL')
      } catch {}
    }
    origin.stop(true)
  }
}

if (import.meta.main) await main()
