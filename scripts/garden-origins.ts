/**
 * The origin parsers of the HTTP Garden sweep (scripts/garden.ts): nginx, HAProxy (http mode),
 * python3's http.server, Node's http module (/usr/bin/node) and Bun.serve, each on loopback and
 * each answering every request it parses with one line
 *   "ECHO <method> US <target> US <host> US <body length or framing>" (US: the 0x1f byte)
 * so a sweep can count the requests a byte stream holds for that parser and how it read them.
 * Also the raw recording origin the proxy forwards to. Loopback only; stop() kills what it began.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Origins {
  ports: Record<string, number>
  stop(): void
}

const PYTHON = `
import sys, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def _any(self):
        te = (self.headers.get('Transfer-Encoding') or '').strip().lower()
        n = 0
        if te == 'chunked':
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b'\\r\\n', b'\\n', b''): pass
                    break
                n += len(self.rfile.read(size)); self.rfile.readline(3)
        else:
            cl = self.headers.get('Content-Length')
            if cl: n = len(self.rfile.read(int(cl)))
        body = ('ECHO %s\\x1f%s\\x1f%s\\x1f%d\\n' % (self.command, self.path, self.headers.get('Host'), n)).encode('latin1', 'replace')
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def __getattr__(self, name):
        if name.startswith('do_'): return self._any
        raise AttributeError(name)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`

const NODE = `
const http = require('http')
http.createServer((req, res) => {
  let n = 0
  req.on('data', (d) => (n += d.length))
  req.on('end', () => {
    const body = 'ECHO ' + [req.method, req.url, req.headers.host, n].join('\\x1f') + '\\n'
    res.writeHead(200, { 'content-length': Buffer.byteLength(body, 'latin1') })
    res.end(body, 'latin1')
  })
}).listen(+process.argv[2], '127.0.0.1')
`

function nginxConf(dir: string, port: number): string {
  return `worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx.err crit;\nevents { worker_connections 256; }
http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  server { listen 127.0.0.1:${port};
    location / { default_type text/plain; return 200 "ECHO $request_method\x1f$request_uri\x1f$http_host\x1fcl=$content_length te=$http_transfer_encoding\\n"; } }\n}\n`
}

function haproxyConf(port: number): string {
  return `global\n  maxconn 256\ndefaults\n  mode http\n  timeout client 5s\n  timeout connect 1s\n  timeout server 5s\n  option http-buffer-request
frontend f\n  bind 127.0.0.1:${port}\n  http-request return status 200 content-type text/plain lf-string "ECHO %[method]\\x1f%[pathq]\\x1f%[req.hdr(host)]\\x1f%[req.body_len]\\n"\n`
}

/** Starts every origin parser on base..base+4 and waits until each accepts connections. */
export async function startOrigins(base: number): Promise<Origins> {
  const dir = mkdtempSync(join(tmpdir(), 'garden-'))
  const children: ChildProcess[] = []
  const start = (cmd: string, argv: string[]) => children.push(spawn(cmd, argv, { stdio: 'ignore', detached: true }))
  const ports = { nginx: base, haproxy: base + 1, python: base + 2, node: base + 3, bun: base + 4 }
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, ports.nginx))
  writeFileSync(join(dir, 'haproxy.cfg'), haproxyConf(ports.haproxy))
  writeFileSync(join(dir, 'origin.py'), PYTHON)
  writeFileSync(join(dir, 'origin.js'), NODE)
  start('nginx', ['-c', join(dir, 'nginx.conf')])
  start('haproxy', ['-f', join(dir, 'haproxy.cfg')])
  start('python3', [join(dir, 'origin.py'), String(ports.python)])
  start('/usr/bin/node', [join(dir, 'origin.js'), String(ports.node)])
  const bun = Bun.serve({
    hostname: '127.0.0.1',
    port: ports.bun,
    async fetch(req) {
      let n = 0
      try {
        n = (await req.arrayBuffer()).byteLength
      } catch {
        n = -1
      }
      const u = URL.parse(req.url)
      return new Response(`ECHO ${req.method}\x1f${u ? u.pathname + u.search : req.url}\x1f${req.headers.get('host')}\x1f${n}\n`)
    },
  })
  for (const port of Object.values(ports)) await waitForPort(port)
  return {
    ports,
    stop() {
      for (const c of children) {
        try {
          process.kill(-c.pid!, 'SIGKILL')
        } catch {}
      }
      bun.stop(true)
    },
  }
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.on('connect', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await Bun.sleep(100)
  }
  throw new Error(`nothing listens on ${port}`)
}

/** One request as a recording origin read it from the proxy's canonical output. */
export interface Forwarded {
  method: string
  target: string
  host: string
  bodyLength: number
}

/**
 * The origin the proxy forwards to: it keeps every byte of each connection and reads the
 * proxy's (canonical) requests from them, answering each "200 ok", so that the same bytes can be
 * replayed to the origin parsers. `take()` returns and forgets the connections since the last.
 */
export function startRecorder(): { port: number; take(): { bytes: Buffer; requests: Forwarded[] }[]; stop(): void } {
  type State = { chunks: Buffer[]; pending: Buffer; requests: Forwarded[]; closed: boolean }
  let conns: State[] = []
  const server = Bun.listen<State>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { chunks: [], pending: Buffer.alloc(0), requests: [], closed: false }
        conns.push(s.data)
      },
      close(s) {
        s.data.closed = true
      },
      data(s, d) {
        const st = s.data
        st.chunks.push(Buffer.from(d))
        st.pending = Buffer.concat([st.pending, d])
        for (let i = 0; i < 100; i++) {
          const r = readOne(st.pending)
          if (r === undefined) break
          st.requests.push(r.request)
          st.pending = st.pending.subarray(r.used)
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        }
      },
    },
  })
  return {
    port: server.port,
    take() {
      // Bytes since the last take, per connection; a pooled connection goes on being recorded.
      const out = conns.filter((c) => c.chunks.length > 0).map((c) => ({ bytes: Buffer.concat(c.chunks), requests: c.requests }))
      for (const c of conns) {
        c.chunks = []
        c.requests = []
      }
      conns = conns.filter((c) => !c.closed)
      return out
    },
    stop: () => server.stop(true),
  }
}

/** One whole request at the start of `b` (Content-Length or chunked framing), or undefined. */
function readOne(b: Buffer): { request: Forwarded; used: number } | undefined {
  const end = b.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const lines = b.toString('latin1', 0, end).split('\r\n')
  const [method = '', target = ''] = lines[0]!.split(' ')
  const field = (name: string) => lines.slice(1).find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim()
  let at = end + 4
  let bodyLength = 0
  if (field('transfer-encoding')?.toLowerCase() === 'chunked') {
    for (let i = 0; ; i++) {
      const eol = b.indexOf('\r\n', at)
      if (eol < 0 || i > 100_000) return undefined
      const size = parseInt(b.toString('latin1', at, eol).split(';')[0]!, 16)
      at = eol + 2
      if (size === 0) {
        const t = b.indexOf('\r\n\r\n', at - 2)
        if (t < 0) return undefined
        at = t + 4
        break
      }
      if (b.length < at + size + 2) return undefined
      bodyLength += size
      at += size + 2
    }
  } else {
    bodyLength = Number(field('content-length') ?? 0)
    if (b.length < at + bodyLength) return undefined
    at += bodyLength
  }
  return { request: { method, target, host: field('host') ?? '', bodyLength }, used: at }
}
