/**
 * The bench's own HTTP/1.1 client over node:net and node:tls (the same on Bun and Deno), which
 * records a mark at every step: DNS (a fresh lookup each time, no runtime cache), TCP connect,
 * TLS handshake, request written, first response byte, last byte. Response framing reuses the
 * proxy's parser (http1/response-head.ts, http1/chunked.ts). Bodies are counted, never
 * kept. Phases are derived from the marks in timings.ts.
 */
import { Buffer } from 'node:buffer'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { Lookup } from '../dns/lookup.ts'
import { ChunkedDecoder } from '../http1/chunked.ts'
import { parseResponseHead, type ResponseHead } from '../http1/response-head.ts'
import type { Marks } from './timings.ts'
import { bracketHost } from '../lib/net.ts'

export interface Target {
  scheme: 'http' | 'https'
  /** Host for the Host header and SNI. */
  host: string
  port: number
  /** Path and query. */
  path: string
  /** Where to connect: a name (looked up) or an IP. --connect-to changes it; --resolve pins it. */
  connectHost: string
  connectPort: number
  /** --resolve: the address to use without a lookup. */
  pinnedAddress: string | undefined
}

export interface RequestSpec {
  method: string
  headers: [string, string][]
  body: Uint8Array | undefined
}

export interface ClientOptions {
  timeoutMs: number
  insecure: boolean
  ca: string | undefined
  lookup: Lookup
}

export interface ConnectionInfo {
  remoteAddress: string
  family: 4 | 6
  tlsVersion?: string
  alpn?: string
  cipher?: string
}

export interface ResponseInfo {
  status: number
  bytes: number
  /** The server allows another request on this connection. */
  keepAlive: boolean
}

/** A failure with a short, countable kind (ECONNREFUSED, timeout, NXDOMAIN, a TLS code, …). */
export class BenchRequestError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message)
    this.name = 'BenchRequestError'
  }
}

function kindOf(err: unknown): string {
  const e = err as { code?: string; name?: string }
  if (err instanceof BenchRequestError) return err.kind
  return e?.code ?? e?.name ?? 'error'
}

export function asBenchError(err: unknown): BenchRequestError {
  return err instanceof BenchRequestError ? err : new BenchRequestError(kindOf(err), (err as Error)?.message ?? String(err))
}

const CRLFCRLF = Buffer.from('\r\n\r\n')

export class TimingConnection {
  private buf: Buffer | null = null
  private closed = false
  private onData: ((chunk: Buffer) => void) | undefined
  private onEnd: ((err?: Error) => void) | undefined
  requests = 0

  private constructor(
    private readonly socket: Socket | TLSSocket,
    readonly info: ConnectionInfo,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.onData) this.onData(chunk)
      else this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk
    })
    const end = (err?: Error) => {
      this.closed = true
      this.onEnd?.(err)
    }
    socket.on('error', (err) => end(err))
    socket.on('close', () => end())
  }

  get usable(): boolean {
    return !this.closed && !this.socket.destroyed
  }

  /** DNS, TCP and TLS, recording marks. */
  static async open(target: Target, opts: ClientOptions, marks: Marks): Promise<TimingConnection> {
    let address = target.pinnedAddress
    let family: 4 | 6
    if (address === undefined) {
      const literal = isIP(target.connectHost)
      if (literal) {
        address = target.connectHost
        family = literal as 4 | 6
      } else {
        marks.dnsStart = performance.now()
        let found
        try {
          found = await opts.lookup(target.connectHost, { family: 'auto', timeoutMs: Math.min(opts.timeoutMs, 5000) })
        } catch (err) {
          throw new BenchRequestError((err as { code?: string }).code ?? 'DNS', (err as Error).message)
        }
        marks.dnsEnd = performance.now()
        address = found.addresses[0]!.address
        family = found.addresses[0]!.family
      }
    } else family = isIP(address) === 6 ? 6 : 4
    marks.connectStart = performance.now()
    const remaining = () => Math.max(1, opts.timeoutMs - (performance.now() - marks.start))
    const tcp = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: address!, port: target.connectPort })
      s.setNoDelay(true)
      const timer = setTimeout(() => {
        s.destroy()
        reject(new BenchRequestError('timeout', `connect to ${address}:${target.connectPort} timed out`))
      }, remaining())
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(s)
      })
      s.once('error', (err) => {
        clearTimeout(timer)
        reject(asBenchError(err))
      })
    })
    marks.connectEnd = performance.now()
    if (target.scheme === 'http') return new TimingConnection(tcp, { remoteAddress: address, family })
    const tls = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({
        socket: tcp,
        servername: isIP(target.host) ? undefined : target.host,
        ca: opts.ca,
        rejectUnauthorized: !opts.insecure,
        ALPNProtocols: ['http/1.1'],
      })
      const timer = setTimeout(() => {
        s.destroy()
        reject(new BenchRequestError('timeout', 'TLS handshake timed out'))
      }, remaining())
      s.once('secureConnect', () => {
        clearTimeout(timer)
        resolve(s)
      })
      s.once('error', (err) => {
        clearTimeout(timer)
        tcp.destroy()
        reject(asBenchError(err))
      })
    })
    marks.tlsEnd = performance.now()
    const cipher = tls.getCipher()
    return new TimingConnection(tls, {
      remoteAddress: address,
      family,
      tlsVersion: tls.getProtocol() ?? undefined,
      alpn: typeof tls.alpnProtocol === 'string' ? tls.alpnProtocol : undefined,
      cipher: cipher?.name,
    })
  }

  /** Sends one request and reads the whole response, counting body bytes. */
  request(target: Target, spec: RequestSpec, opts: ClientOptions, marks: Marks): Promise<ResponseInfo> {
    this.requests++
    let head = `${spec.method} ${target.path} HTTP/1.1\r\n`
    const names = new Set(spec.headers.map(([n]) => n.toLowerCase()))
    if (!names.has('host')) head += `Host: ${hostHeader(target)}\r\n`
    if (!names.has('user-agent')) head += 'User-Agent: proxy-bench\r\n'
    if (!names.has('accept')) head += 'Accept: */*\r\n'
    for (const [n, v] of spec.headers) head += `${n}: ${v}\r\n`
    if (spec.body) head += `Content-Length: ${spec.body.byteLength}\r\n`
    head += '\r\n'
    const bytes = spec.body ? Buffer.concat([Buffer.from(head, 'latin1'), spec.body]) : Buffer.from(head, 'latin1')
    return new Promise<ResponseInfo>((resolve, reject) => {
      let state: 'head' | 'body' | 'done' = 'head'
      let parsed: ResponseHead | undefined
      let remaining = 0
      let count = 0
      let decoder: ChunkedDecoder | undefined
      const timer = setTimeout(() => fail(new BenchRequestError('timeout', `no complete response within ${opts.timeoutMs}ms`)), Math.max(1, opts.timeoutMs - (performance.now() - marks.start)))
      const finish = () => {
        if (state === 'done') return
        state = 'done'
        marks.end = performance.now()
        clearTimeout(timer)
        this.onData = undefined
        this.onEnd = undefined
        resolve({ status: parsed!.status, bytes: count, keepAlive: !parsed!.closeAfter && this.usable })
      }
      const fail = (err: Error) => {
        if (state === 'done') return
        state = 'done'
        clearTimeout(timer)
        this.onData = undefined
        this.onEnd = undefined
        this.close()
        reject(asBenchError(err))
      }
      const body = (chunk: Buffer) => {
        const f = parsed!.framing
        if (f.kind === 'length') {
          const take = Math.min(remaining, chunk.length)
          count += take
          remaining -= take
          if (remaining === 0) finish()
        } else if (f.kind === 'chunked') {
          try {
            decoder!.feed(chunk, (s) => (count += s.byteLength))
          } catch (err) {
            return fail(new BenchRequestError('BAD_RESPONSE', (err as Error).message))
          }
          if (decoder!.done) finish()
        } else count += chunk.length
      }
      this.onData = (chunk: Buffer) => {
        if (marks.firstByte === undefined) marks.firstByte = performance.now()
        if (state === 'body') return body(chunk)
        if (state !== 'head') return
        let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk
        this.buf = null
        for (;;) {
          const end = buf.indexOf(CRLFCRLF)
          if (end < 0) {
            if (buf.length > 256 * 1024) return fail(new BenchRequestError('BAD_RESPONSE', 'response head too large'))
            this.buf = buf
            return
          }
          try {
            parsed = parseResponseHead(buf.toString('latin1', 0, end), spec.method)
          } catch (err) {
            return fail(new BenchRequestError('BAD_RESPONSE', (err as Error).message))
          }
          buf = buf.subarray(end + 4)
          if (parsed.status >= 100 && parsed.status < 200) continue
          break
        }
        const f = parsed.framing
        state = 'body'
        if (f.kind === 'none') return finish()
        if (f.kind === 'length') remaining = f.length
        if (f.kind === 'chunked') decoder = new ChunkedDecoder()
        if (buf.length > 0) body(buf)
      }
      this.onEnd = (err?: Error) => {
        if (state === 'body' && parsed?.framing.kind === 'close') return finish()
        fail(err ? asBenchError(err) : new BenchRequestError('ECONNRESET', 'connection closed before the response was complete'))
      }
      if (!this.usable) return this.onEnd()
      // The request is "written" when the kernel has it: at once when write() took it all,
      // else when its callback says the queued bytes were flushed.
      const flushed = this.socket.write(bytes, () => {
        marks.requestWritten ??= performance.now()
      })
      if (flushed) marks.requestWritten = performance.now()
      if (this.buf) {
        const pending = this.buf
        this.buf = null
        this.onData(pending)
      }
    })
  }

  close(): void {
    this.closed = true
    this.socket.destroy()
  }
}

function hostHeader(t: Target): string {
  const h = bracketHost(t.host)
  return t.port === (t.scheme === 'https' ? 443 : 80) ? h : `${h}:${t.port}`
}
