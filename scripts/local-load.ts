/**
 * What the local benchmark scripts share (ab-cpu.ts, profile.ts): a temp dir, processes started
 * in their own group and killed at exit, a local nginx origin (a 100-byte answer at /small, the
 * same marked cacheable for an hour at /cacheable, and a 1 MiB file at /1m, keepalive_requests 1000000), a self-signed certificate for TLS listeners,
 * and the two load generators: `wrk -t1` (HTTP/1.1) and `h2load -t1 -c16 -m10` (HTTP/2 by ALPN).
 * Loopback only.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LoadResult {
  rps: number
  requests: number
  /** wrk's 99th percentile latency (undefined from h2load, which prints none). */
  p99Ms?: number
}

/** A temp dir for one script run (readable by nginx's workers, which run as another user), removed at exit unless `keep`. */
export function workDir(prefix: string, keep = false): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  chmodSync(dir, 0o755)
  process.on('exit', () => {
    if (keep) console.log(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGKILL')
    } catch {}
  }
})
process.on('SIGINT', () => process.exit(130))

/** Starts a process in its own group (killed with everything it forked when this script exits); its stderr goes to `onStderr`, if given. */
export function start(cmd: string, argv: string[], env?: Record<string, string>, onStderr?: (text: string) => void): ChildProcess {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: env ? { ...process.env, ...env } : process.env })
  child.stderr!.setEncoding('latin1')
  child.stderr!.on('data', onStderr ?? (() => {}))
  children.push(child)
  return child
}

/** A Content-Security-Policy of the length sites send (a 217-byte field line), for /csp. */
const CSP = "default-src 'self'; script-src 'self' https://cdn.example.com; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' https://api.example.com; frame-ancestors 'none'"

/**
 * The nginx origin on `port` in `dir`: /small (100 bytes), /cacheable (the same, Cache-Control:
 * public, max-age=3600), /csp (the same with CSP's long field line) and /1m (1 MiB).
 */
export function startOrigin(dir: string, port: number): ChildProcess {
  writeFileSync(join(dir, '1m'), new Uint8Array(1024 * 1024).fill(0x78))
  const conf = join(dir, 'origin.conf')
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx.err')} warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  keepalive_requests 1000000;\n  server {\n    listen 127.0.0.1:${port};\n` +
      `    location = /small { return 200 "${'x'.repeat(100)}"; }\n    location = /1m { alias ${join(dir, '1m')}; }\n` +
      `    location = /cacheable { add_header Cache-Control "public, max-age=3600"; return 200 "${'x'.repeat(100)}"; }\n` +
      `    location = /csp { add_header Content-Security-Policy "${CSP}"; return 200 "${'x'.repeat(100)}"; }\n  }\n}\n`,
  )
  return start('nginx', ['-c', conf])
}

/** A self-signed certificate for 127.0.0.1 in `dir`: the proxy's TLS arguments. */
export function selfSignedTlsArgs(dir: string): string[] {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  if (ssl.status !== 0) throw new Error(`openssl could not make a certificate: ${ssl.stderr}`)
  return ['--tls-cert', cert, '--tls-key', key]
}

/** Waits (10 s at most) until `path` on `port` answers. */
export async function waitFor(port: number, path: string, tls = false): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`, { tls: { rejectUnauthorized: false } } as RequestInit)
      return
    } catch {
      await Bun.sleep(100)
    }
  }
  throw new Error(`nothing answers on port ${port}`)
}

/**
 * The fields a browser's navigation request carries besides Host (Chrome's, with a cookie): wrk
 * alone sends a one-field head, and a browser's ~650-byte head costs a parser more.
 */
export const BROWSER_FIELDS = [
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Accept-Language: en-US,en;q=0.9,ko;q=0.8',
  'Accept-Encoding: gzip, deflate, br, zstd',
  'Cache-Control: max-age=0',
  'Sec-Fetch-Dest: document',
  'Sec-Fetch-Mode: navigate',
  'Sec-Fetch-Site: none',
  'Sec-Fetch-User: ?1',
  'Upgrade-Insecure-Requests: 1',
  'Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; _ga=GA1.2.123456789.1700000000',
  'sec-ch-ua: "Chromium";v="126", "Not.A/Brand";v="24"',
  'sec-ch-ua-mobile: ?0',
  'sec-ch-ua-platform: "Linux"',
]

/** A command's output, waited for without blocking this script's event loop (the proxies' stderr keeps draining). */
function output(cmd: string, argv: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(cmd, argv, { encoding: 'utf8', maxBuffer: 16 << 20 }, (_err, stdout, stderr) => resolve({ stdout, stderr })))
}

/**
 * `wrk -t1` with `connections` for `duration` (wrk's syntax: "5s"), sending `fields` besides Host;
 * HTTP/1.1 over TLS with `tls`; POSTs of `postBytes` bytes of JSON-typed body when above 0 (a wrk
 * Lua script in the temp dir).
 */
export async function wrk(port: number, path: string, connections: string, duration: string, fields: readonly string[] = [], tls = false, postBytes = 0): Promise<LoadResult> {
  const script = postBytes > 0 ? postScript(postBytes) : undefined
  const r = await output('wrk', ['-t1', `-c${connections}`, `-d${duration}`, '--latency', ...(script ? ['-s', script] : []), ...fields.flatMap((f) => ['-H', f]), `${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`])
  if (/Non-2xx/.test(r.stdout)) throw new Error(`the origin refused: ${r.stdout}`)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1])
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1])
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(r.stdout)
  if (!rps || !requests || !p99) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`)
  return { rps, requests, p99Ms: Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) }
}

/** A wrk script that POSTs `bytes` bytes (written once per size into a temp dir removed at exit). */
function postScript(bytes: number): string {
  const dir = (scriptDir ??= workDir('wrk-post-'))
  const file = join(dir, `post-${bytes}.lua`)
  writeFileSync(file, `wrk.method = "POST"\nwrk.body = string.rep("x", ${bytes})\nwrk.headers["Content-Type"] = "application/json"\n`)
  return file
}
let scriptDir: string | undefined

/** h2load over TLS: 16 connections, `streams` (10) in flight on each. */
export async function h2load(port: number, path: string, duration: string, streams = 10): Promise<LoadResult> {
  const r = await output('h2load', ['-t1', '-c16', `-m${streams}`, `-D${duration}`, `https://127.0.0.1:${port}${path}`])
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(r.stdout)?.[1])
  const requests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(r.stdout)?.[1])
  const ok = Number(/status codes: (\d+) 2xx/.exec(r.stdout)?.[1])
  if (!/Application protocol: h2/.test(r.stdout) || !rps || !requests || ok < requests) throw new Error(`h2load failed: ${r.stdout}${r.stderr}`)
  return { rps, requests }
}
