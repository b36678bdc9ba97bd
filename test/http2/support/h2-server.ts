/**
 * Test server for the HTTP/2 session: listenH2 (TLS + ALPN h2, or h2c prior knowledge) with a
 * small handler, and counters the tests assert on. Also a runner for client CLIs (curl, nghttp,
 * h2load) with a deadline, so no child outlives its test.
 */
import { createHash } from 'node:crypto'
import { listenH2, sendBody, type H2Connection, type H2Listener } from '../../../src/http2/bun-listener.ts'
import { H2Code } from '../../../src/http2/errors.ts'
import type { Http2Limits } from '../../../src/http2/limits.ts'
import type { ServerStream } from '../../../src/http2/stream.ts'
import { makeCerts } from '../../support/certs.ts'

export interface TestH2Server {
  url: string
  port: number
  listener: H2Listener
  caFile: string
  /** Requests that reached the handler, and the connection each came on. */
  requests: { path: string; method: string; conn: H2Connection; headers: [string, string][] }[]
  /** The streams handed to the handler, in order. */
  streams: ServerStream[]
  /** Highest number of /wait requests in flight at once. */
  peakWaiting: number
  /** Bytes the /big handler's source has produced so far (what an upstream would have sent). */
  bigProduced: number
  close(): void
}

/** Bytes of a deterministic pattern, so a download can be checked by hash. */
export function pattern(offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (offset + i) * 31 % 251
  return out
}

export function startServer(opts: { tls: boolean; limits?: Partial<Http2Limits> }): TestH2Server {
  const certs = makeCerts(['origin.test'], ['127.0.0.1'])
  let waiting = 0
  const state: Omit<TestH2Server, 'url' | 'port' | 'listener' | 'close'> = { caFile: certs.caFile, requests: [], streams: [], peakWaiting: 0, bigProduced: 0 }
  const listener = listenH2({
    hostname: '127.0.0.1',
    port: 0,
    ...(opts.tls ? { tls: { cert: certs.cert, key: certs.key } } : {}),
    limits: opts.limits,
    onRequest(stream, conn) {
      const r = stream.request
      state.requests.push({ path: r.path, method: r.method, conn, headers: r.headers })
      state.streams.push(stream)
      handle(stream).catch(() => stream.reset(H2Code.INTERNAL_ERROR))
    },
  })
  async function handle(stream: ServerStream): Promise<void> {
    const r = stream.request
    const url = new URL(r.path, 'http://x')
    if (url.pathname === '/hash') {
      // Reads the whole body as it streams, answers with its length and SHA-256.
      const h = createHash('sha256')
      let n = 0
      if (stream.body) for await (const chunk of stream.body) { h.update(chunk); n += chunk.byteLength }
      stream.respond(200, [['content-type', 'text/plain']])
      return sendBody(stream, `${n} ${h.digest('hex')}`)
    }
    if (url.pathname === '/big') {
      const total = Number(url.searchParams.get('bytes') ?? 1_000_000)
      stream.respond(200, [['content-length', String(total)]])
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (sent >= total) return ctrl.close()
          const n = Math.min(64 * 1024, total - sent)
          ctrl.enqueue(pattern(sent, n))
          sent += n
          state.bigProduced += n
        },
      }, { highWaterMark: 0 })
      return sendBody(stream, body)
    }
    if (url.pathname === '/wait') {
      waiting++
      state.peakWaiting = Math.max(state.peakWaiting, waiting)
      await Bun.sleep(Number(url.searchParams.get('ms') ?? 300))
      waiting--
      stream.respond(200, [['content-type', 'text/plain']])
      return sendBody(stream, `waited ${stream.id}\n`)
    }
    if (url.pathname === '/trailers') {
      // Reads the body, then answers with its length and the request's trailers echoed as response trailers.
      let n = 0
      if (stream.body) for await (const chunk of stream.body) n += chunk.byteLength
      stream.respond(200, [['content-type', 'text/plain']])
      const echoed: [string, string][] = (stream.requestTrailers ?? []).map(([k, v]) => [`x-echo-${k}`, v])
      return stream.end(new TextEncoder().encode(String(n)), [...echoed, ['x-length', String(n)]])
    }
    if (url.pathname === '/headers') {
      stream.respond(200, [['content-type', 'application/json']])
      return sendBody(stream, JSON.stringify(r.headers))
    }
    const text = `hello ${r.method} ${r.path}\n`
    stream.respond(200, [['content-type', 'text/plain'], ['content-length', String(text.length)], ['connection', 'keep-alive'], ['x-test', 'yes']], r.method === 'HEAD')
    if (r.method !== 'HEAD') return sendBody(stream, text)
  }
  const scheme = opts.tls ? 'https' : 'http'
  return Object.assign(state, {
    url: `${scheme}://127.0.0.1:${listener.port}`,
    port: listener.port,
    listener,
    close: () => listener.stop(),
  }) as TestH2Server
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a client CLI; kills it after `timeoutMs`. */
export async function run(cmd: string[], opts: { timeoutMs?: number; stdin?: Uint8Array } = {}): Promise<RunResult> {
  const proc = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe', stdin: opts.stdin ? 'pipe' : 'ignore' })
  if (opts.stdin && proc.stdin) {
    proc.stdin.write(opts.stdin)
    proc.stdin.end()
  }
  const timer = setTimeout(() => proc.kill(), opts.timeoutMs ?? 30_000)
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
    proc.kill()
  }
}
