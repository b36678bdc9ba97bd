/**
 * HTTP/2 over a TLS socket that dial.ts opened and timed (ALPN h2), through the runtime's
 * node:http2 client session, given the socket by `createConnection` so that DNS, connect and TLS
 * stay ours to time. The connection phases belong to the connection; each stream records its own
 * marks: request written (the stream got its id, so its HEADERS went to the session, RFC 9113
 * §5.1.1), first response byte (the response HEADERS), last byte (END_STREAM). Bodies are counted,
 * never kept. HTTP/1.1 is timing-client.ts.
 */
import { connect as h2Connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import type { TLSSocket } from 'node:tls'
import { asBenchError, BenchRequestError, hostHeader, type BenchConnection, type ClientOptions, type ConnectionInfo, type RequestSpec, type ResponseInfo, type Target } from './dial.ts'
import type { Marks } from './timings.ts'

/** Connection-specific fields that HTTP/2 forbids (RFC 9113 §8.2.2); Host becomes :authority (§8.3.1). */
const FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'content-length'])

export class H2Connection implements BenchConnection {
  requests = 0
  peakInFlight = 0
  private inFlight = 0
  private closed = false
  /** From the server's GOAWAY: streams above it were not processed (RFC 9113 §6.8). */
  private goawayLastStreamId: number | undefined
  private readonly session: ClientHttp2Session

  constructor(
    socket: TLSSocket,
    target: Target,
    readonly info: ConnectionInfo,
    readonly id: number,
  ) {
    const authority = hostHeader(target)
    this.session = h2Connect(`https://${authority}`, { createConnection: () => socket })
    // Errors reach each stream too; the session's own only mark it unusable.
    this.session.on('error', () => (this.closed = true))
    this.session.on('close', () => (this.closed = true))
    this.session.on('goaway', (_code: number, lastStreamId: number) => {
      this.closed = true
      this.goawayLastStreamId = lastStreamId
    })
  }

  get usable(): boolean {
    return !this.closed && !this.session.destroyed && !this.session.closed
  }

  request(target: Target, spec: RequestSpec, opts: ClientOptions, marks: Marks): Promise<ResponseInfo> {
    this.requests++
    this.inFlight++
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight
    const headers: OutgoingHttpHeaders = { ':method': spec.method, ':path': target.path, ':scheme': 'https', ':authority': hostHeader(target) }
    const names = new Set(spec.headers.map(([n]) => n.toLowerCase()))
    const own = (name: string) => !names.has(name) && !spec.omit?.has(name)
    if (own('user-agent')) headers['user-agent'] = 'proxy-bench'
    if (own('accept')) headers.accept = '*/*'
    for (const [n, v] of spec.headers) {
      const lower = n.toLowerCase()
      if (lower === 'host') headers[':authority'] = v
      else if (!FORBIDDEN.has(lower)) headers[lower] = v
    }
    if (spec.body) headers['content-length'] = String(spec.body.byteLength)
    return new Promise<ResponseInfo>((resolve, reject) => {
      let done = false
      let status = 0
      let count = 0
      const settle = (err?: Error) => {
        if (done) return
        done = true
        this.inFlight--
        clearTimeout(timer)
        if (this.closed && this.inFlight === 0 && !this.session.destroyed) this.session.destroy()
        if (err) {
          stream?.close(constants.NGHTTP2_CANCEL)
          const e = asBenchError(err)
          if (status !== 0 || !this.wasUnprocessed(stream, e)) return reject(e)
          this.requests-- // the server never saw it
          return reject(new BenchRequestError(e.kind, e.message, true))
        }
        marks.end = performance.now()
        resolve({ status, bytes: count, keepAlive: this.usable })
      }
      const timer = setTimeout(() => settle(new BenchRequestError('timeout', `no complete response within ${opts.timeoutMs}ms`)), Math.max(1, opts.timeoutMs - (performance.now() - marks.start)))
      if (!this.usable) return settle(new BenchRequestError('ECONNRESET', 'the HTTP/2 connection is closed'))
      let stream: ReturnType<ClientHttp2Session['request']> | undefined
      try {
        stream = this.session.request(headers, { endStream: !spec.body })
      } catch (err) {
        // Refused before anything was sent (a GOAWAY arrived first): the connection is done.
        this.closed = true
        return settle(err as Error)
      }
      stream.once('ready', () => (marks.requestWritten ??= performance.now()))
      let declared: number | undefined
      stream.once('response', (h) => {
        marks.firstByte ??= performance.now()
        status = Number(h[':status'])
        const cl = h['content-length']
        // A HEAD, 204 or 304 answer's content-length is not its DATA's (RFC 9110 §8.6).
        if (cl !== undefined && /^\d+$/.test(String(cl)) && spec.method !== 'HEAD' && status !== 204 && status !== 304) declared = Number(cl)
      })
      stream.on('data', (chunk: Uint8Array) => (count += chunk.byteLength))
      // A stream whose DATA stops short of its content-length was cut (RFC 9113 §8.1.1), however
      // it ended: Bun's client reports a RST_STREAM after some DATA as a clean end. One that ended
      // with no response HEADERS at all (a RST_STREAM(NO_ERROR), or DATA first; §8.1) got no answer.
      stream.once('end', () => {
        if (status === 0) return settle(new BenchRequestError('ECONNRESET', 'the stream ended without a response (no HEADERS with a :status)'))
        if (declared !== undefined && count !== declared) return settle(new BenchRequestError('ECONNRESET', `the stream ended after ${count} of ${declared} bytes`))
        settle()
      })
      stream.once('error', (err) => settle(err))
      stream.once('close', () => {
        if (!done) settle(new BenchRequestError(stream!.rstCode ? `RST_STREAM_${stream!.rstCode}` : 'ECONNRESET', 'the stream closed before the response was complete'))
      })
      if (spec.body) stream.end(spec.body)
    })
  }

  /** Not processed by the server: never sent, refused (REFUSED_STREAM), or above the GOAWAY's last stream. */
  private wasUnprocessed(stream: { id?: number; rstCode?: number } | undefined, e: BenchRequestError): boolean {
    if (!stream || stream.id === undefined) return true
    if (e.kind === 'ERR_HTTP2_GOAWAY_SESSION' || stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) return true
    return this.goawayLastStreamId !== undefined && stream.id > this.goawayLastStreamId
  }

  /**
   * Other streams may still be in flight on a connection one stream gave up on: close gracefully
   * then (no new streams; those finish or time out on their own), at once when none is.
   */
  close(): void {
    this.closed = true
    if (this.inFlight === 0) this.session.destroy()
    else if (!this.session.closed) this.session.close()
  }
}
