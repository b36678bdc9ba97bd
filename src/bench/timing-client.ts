/**
 * The bench's own HTTP/1.1 client over a socket from dial.ts (node:net / node:tls, the same on
 * Bun and Deno), which records a mark at every step: request written, first response byte, last
 * byte. Response framing reuses the proxy's parser (http1/response-head.ts,
 * http1/chunked.ts). Bodies are counted, never kept. Phases are derived from the marks in
 * timings.ts; opening the connection is dial.ts.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { ChunkedDecoder } from '../http1/chunked.ts'
import { IDEMPOTENT_METHODS } from '../http1/methods.ts'
import { parseResponseHeadBytes, type ResponseHead } from '../http1/response-head.ts'
import { asBenchError, BenchRequestError, hostHeader, type BenchConnection, type ClientOptions, type ConnectionInfo, type RequestSpec, type ResponseInfo, type Target } from './dial.ts'
import type { Marks } from './timings.ts'

const CRLFCRLF = Buffer.from('\r\n\r\n')

export class TimingConnection implements BenchConnection {
  private buf: Buffer | null = null
  private closed = false
  private onData: ((chunk: Buffer) => void) | undefined
  private onEnd: ((err?: Error) => void) | undefined
  requests = 0
  /** HTTP/1.1 sends one request at a time (no pipelining). */
  peakInFlight = 1

  constructor(
    private readonly socket: Socket | TLSSocket,
    readonly info: ConnectionInfo,
    readonly id: number,
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

  /** Sends one request and reads the whole response, counting body bytes. */
  request(target: Target, spec: RequestSpec, opts: ClientOptions, marks: Marks): Promise<ResponseInfo> {
    if (this.onData) return Promise.reject(new BenchRequestError('BUSY', 'an HTTP/1.1 connection carries one request at a time'))
    this.requests++
    let head = `${spec.method} ${target.path} HTTP/1.1\r\n`
    const names = new Set(spec.headers.map(([n]) => n.toLowerCase()))
    const own = (name: string) => !names.has(name) && !spec.omit?.has(name)
    if (!names.has('host')) head += `Host: ${hostHeader(target)}\r\n`
    if (own('user-agent')) head += 'User-Agent: proxy-bench\r\n'
    if (own('accept')) head += 'Accept: */*\r\n'
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
      // Every request byte is with the kernel. An answer may come before (a 413 to a large upload).
      let sent = false
      // A kept-alive connection the server closed as the request went out, nothing of an answer
      // on it: sent again on a new connection, as curl and browsers do (RFC 9112 §9.3.1), when
      // the method allows it (RFC 9110 §9.2.2) or nothing was sent at all.
      const reused = this.requests > 1
      const timer = setTimeout(() => fail(new BenchRequestError('timeout', `no complete response within ${opts.timeoutMs}ms`)), Math.max(1, opts.timeoutMs - (performance.now() - marks.start)))
      const finish = () => {
        if (state === 'done') return
        state = 'done'
        marks.end = performance.now()
        clearTimeout(timer)
        this.onData = undefined
        this.onEnd = undefined
        resolve({ status: parsed!.status, bytes: count, keepAlive: !parsed!.closeAfter && this.usable && sent })
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
        if (marks.firstByte === undefined) {
          marks.firstByte = performance.now()
          // Answered before the request was all written: the wait is 0, from the answer on (the
          // write's callback, later, leaves the mark as it is).
          if (!sent) marks.requestWritten ??= marks.firstByte
        }
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
            parsed = parseResponseHeadBytes(buf, end, spec.method, true)
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
        if (reused && marks.firstByte === undefined && IDEMPOTENT_METHODS.has(spec.method)) {
          return fail(new BenchRequestError(err ? asBenchError(err).kind : 'CLOSED_EARLY', 'the server closed a kept-alive connection before answering', true))
        }
        if (err) return fail(asBenchError(err))
        // A FIN, not a reset: said as curl says it ("transfer closed with N bytes remaining").
        const f = parsed?.framing
        const missing = state !== 'body' ? 'before the response head was complete' : f?.kind === 'length' ? `with ${remaining} of ${f.length} body bytes remaining` : 'before the last chunk of the body'
        fail(new BenchRequestError('CLOSED_EARLY', `the server closed the connection ${missing}`))
      }
      if (!this.usable) return fail(new BenchRequestError('CLOSED_EARLY', 'the server had closed the connection before the request was sent', reused))
      // The request is "written" when the kernel has it: at once when write() took it all,
      // else when its callback says the queued bytes were flushed.
      const flushed = this.socket.write(bytes, () => {
        marks.requestWritten ??= performance.now()
        sent = true
      })
      if (flushed) {
        marks.requestWritten = performance.now()
        sent = true
      }
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
