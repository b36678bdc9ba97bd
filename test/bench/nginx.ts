/**
 * Debian's nginx as a real TLS / HTTP/2 origin for the bench's tests: one process
 * (master_process off, so one kill ends it), on 127.0.0.1 and a free port, everything under a
 * temp directory, and an access log that records the server's own view of each request
 * (connection, its request count, $ssl_session_reused, protocol). `nginxAvailable()` says
 * whether the binary is installed (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'
import { testDir } from '../support/temp-dir.ts'

export function nginxAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v nginx']).status === 0
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

export interface NginxOptions {
  cert: string
  key: string
  http2: boolean
  /** e.g. "TLSv1.3" or "TLSv1.2". */
  protocols: string
  body?: string
  /** Requests per connection before nginx closes it (HTTP/2: sends GOAWAY). Default 10000. */
  keepaliveRequests?: number
}

export interface LogLine {
  connection: string
  connectionRequests: number
  /** nginx's $ssl_session_reused: "r" for a resumed session, "." for a full handshake. */
  sessionReused: boolean
  protocol: string
  sslProtocol: string
  status: number
}

export class Nginx {
  private child: ChildProcess | undefined
  port = 0
  private readonly dir = testDir('proxy-bench-nginx-')
  private readonly log = join(this.dir, 'access.log')

  async start(o: NginxOptions): Promise<this> {
    this.port = await freePort()
    const d = this.dir
    mkdirSync(join(d, 'tmp'), { recursive: true })
    writeFileSync(join(d, 'cert.pem'), o.cert)
    writeFileSync(join(d, 'key.pem'), o.key)
    writeFileSync(
      join(d, 'nginx.conf'),
      `daemon off;
master_process off;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${d}/tmp/body; proxy_temp_path ${d}/tmp/proxy; fastcgi_temp_path ${d}/tmp/fcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi; scgi_temp_path ${d}/tmp/scgi;
  log_format bench '$connection $connection_requests $ssl_session_reused $server_protocol $ssl_protocol $status';
  server {
    listen 127.0.0.1:${this.port} ssl${o.http2 ? ' http2' : ''};
    ssl_certificate ${d}/cert.pem;
    ssl_certificate_key ${d}/key.pem;
    ssl_protocols ${o.protocols};
    ssl_session_cache shared:bench:1m;
    keepalive_requests ${o.keepaliveRequests ?? 10_000};
    access_log ${this.log} bench;
    location / { return 200 "${o.body ?? 'hello from nginx'}\\n"; }
  }
}
`,
    )
    writeFileSync(this.log, '')
    this.child = spawn('nginx', ['-p', d, '-c', join(d, 'nginx.conf'), '-e', join(d, 'error.log')], { stdio: 'ignore' })
    for (let i = 0; i < 50; i++) {
      if (this.child.exitCode !== null) break
      const up = await new Promise<boolean>((r) => {
        const s = connect({ host: '127.0.0.1', port: this.port }, () => (s.destroy(), r(true)))
        s.on('error', () => r(false))
      })
      if (up) return this
      await Bun.sleep(50)
    }
    throw new Error(`nginx did not start: ${readFileSync(join(d, 'error.log'), 'utf8')}`)
  }

  lines(): LogLine[] {
    return readFileSync(this.log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [connection, n, reused, protocol, ssl, status] = l.split(' ')
        return { connection: connection!, connectionRequests: Number(n), sessionReused: reused === 'r', protocol: protocol!, sslProtocol: ssl!, status: Number(status) }
      })
  }

  /**
   * The log once it has at least `n` lines: nginx writes a request's line after the response
   * went out (its log phase), so the client can be done first. Polls for at most 2 s.
   */
  async linesWhen(n: number): Promise<LogLine[]> {
    for (let i = 0; i < 40; i++) {
      const l = this.lines()
      if (l.length >= n) return l
      await Bun.sleep(50)
    }
    return this.lines()
  }

  clearLog(): void {
    writeFileSync(this.log, '')
  }

  close(): void {
    this.child?.kill('SIGKILL')
    this.child = undefined
    rmSync(this.dir, { recursive: true, force: true })
  }
}
