/**
 * One HTTP/2 client connection on the own listener (negotiated by ALPN on TLS): the session of
 * http2/ (framing, HPACK, flow control, flood budgets) feeding the same request path as HTTP/1.1.
 * Each stream becomes a ProxyRequest (:authority as Host, cookies joined, RFC 9113 §8.3), goes
 * through the handler, and its reply is sent back with backpressure both ways: the request body
 * is pulled as the upstream takes it (window credit follows), the response body is written as the
 * client's windows allow (a slow reader pauses the upstream). Connection-specific fields never
 * cross (§8.2.2). `expect: 100-continue` gets its interim 100 at the body's first read, and a
 * body silent for client_body_timeout while it is waited for fails (408), as on HTTP/1.1. The
 * listener sweeps it (idle timeout) and shuts it down on drain with GOAWAY (on a reload two:
 * 2^31-1, then the last stream id).
 */
import type { Socket } from 'bun'
import { isHostValue } from '../../http1/chars.ts'
import { HeadHeaders } from '../../http1/request-head.ts'
import { isBodiless } from '../../http1/response-encode.ts'
import { httpDateNow } from '../../lib/clock.ts'
import { H2Connection, sendBody } from '../../http2/bun-listener.ts'
import { H2Code, h2CodeName } from '../../http2/errors.ts'
import type { Http2Limits } from '../../http2/limits.ts'
import type { HeaderField } from '../../http2/hpack.ts'
import type { H2Request } from '../../http2/request.ts'
import type { Refused } from '../../http2/refused.ts'
import type { ServerStream } from '../../http2/stream.ts'
import { failureReply, type FailureCode } from '../errors.ts'
import { clientAddress, ForwardingLines, requestIdFor } from '../headers.ts'
import { farRoundTripMs } from '../../runtime/receive-buffer.ts'
import { StoredReply } from '../cache/stored-reply.ts'
import { ForwardedReply } from '../forwarded-reply.ts'
import { unparsedRequest, type GoneListener, type ProxyReply, type ProxyRequest, type ReplySink, type WriteCut } from '../message.ts'
import type { ClientInfo, ListenerState } from './connection-options.ts'
import { CONTINUE_WAIT_MS, continueLater } from './continue-wait.ts'

export class H2Client {
  /** The listener's sweep: when something is due. The session keeps its own idle clock. */
  deadlineAt = 0
  readonly isTunnel = false
  private readonly conn: H2Connection
  readonly client: ClientInfo
  private closed = false
  /** A reload's drain: when the GOAWAY naming the last stream goes out (0: none due); the first, of 2^31-1, went at once. */
  private goawayDueAtMs = 0

  constructor(
    sock: Socket<unknown>,
    readonly shared: ListenerState,
    limits: Partial<Http2Limits>,
    /** Set for a connection the listener refuses (max_connections): each stream gets this answer, then GOAWAY. */
    private readonly refusal?: [FailureCode, string],
  ) {
    this.client = { ip: clientAddress(sock.remoteAddress), tls: true, streamKeepsLength: true, protocol: 'HTTP/2', forwarding: new ForwardingLines() }
    this.conn = new H2Connection(sock, {
      limits, roundTripMs: farRoundTripMs(sock), // a far client's windows grow larger (http2/limits.ts FAR_WINDOWS)
      sendTimeoutMs: shared.opts.sendTimeoutMs,
      onRequest: (stream) => this.serve(stream),
      onRefused: (r) => this.refused(r),
      onHeadTimeout: () => shared.opts.onQuietClose('CLIENT_HEADER_TIMEOUT', this.client.ip), // as an HTTP/1.1 connection that sent no whole head in time: counted, and warned of (no request to record)
      onClose: (err) => void (err && err.h2Code !== H2Code.NO_ERROR && shared.opts.onHttp2Error?.(h2CodeName(err.h2Code), err.message, this.client.ip)),
      onError: (err) => shared.opts.onError(err),
      // After the last bytes, a lingering close, as HTTP/1.1's over TLS (lingering-close.ts).
      end: shared.linger === undefined ? undefined : () => shared.linger!(sock, () => this.onClose()),
    })
    this.deadlineAt = performance.now() + 1000
  }

  get isClosed(): boolean {
    return this.closed
  }

  private serve(stream: ServerStream): void {
    const r = stream.request
    const req = proxyRequest(r, stream.body)
    const headers = req.headers
    // What the HTTP/1.1 parser refuses is refused here too: never an open proxy (CONNECT), only origin-form
    // targets, and one valid authority to route by. Over max_connections (this.refusal), every stream is refused, then GOAWAY.
    const refusal: [FailureCode, string] | undefined =
      this.refusal ??
      (r.method === 'CONNECT'
        ? ['METHOD_NOT_ALLOWED', 'CONNECT is not supported: this is not an open proxy']
        : !(r.path.startsWith('/') || (r.path === '*' && r.method === 'OPTIONS'))
          ? ['BAD_REQUEST', 'invalid :path']
          : r.authority === '' || !isHostValue(r.authority)
            ? ['BAD_REQUEST', 'missing or invalid :authority']
            : undefined)
    if (refusal) {
      // The answer carries what its status calls for (Allow with the 405: errors.ts failureHeaders).
      this.send(stream, r.method, this.shared.opts.refuse(refusal[0], refusal[1], this.client, req, true))
      if (this.refusal) this.conn.session.shutdown(H2Code.NO_ERROR, this.refusal[1])
      return
    }
    this.shared.requestStarted()
    const exchange = new StreamExchange(this, stream, r.method, req)
    // Our own "100 Continue" only once the request path reads the body, not before a refusal (RFC 9110
    // §15.2.1), after the upstream's wait (continue-wait.ts), as on HTTP/1.1; Expect goes upstream.
    const expects = stream.body !== null && headers.get('expect')?.toLowerCase() === '100-continue'
    if (expects) stream.onFirstRead = () => exchange.continueLater()
    // client_body_timeout: the longest silence of a body while the request path waits for it, as on
    // HTTP/1.1; a client waiting for its 100 is timed from the 100 (interim()), at most the wait later.
    if (stream.body) stream.bodyStallMs = this.shared.opts.bodyTimeoutMs
    if (expects) stream.firstReadGraceMs = CONTINUE_WAIT_MS
    try {
      this.shared.opts.handle(req, exchange, exchange)
    } catch (err) {
      exchange.failed(err)
    }
  }

  /**
   * A request the session refused itself, counted and recorded as the HTTP/1.1 listener does the
   * same: a head above the cap 431 HEAD_TOO_LARGE, with what of it came before the cap; trailers
   * above it as a chunked trailer section too large, BAD_BODY, with the status sent (431); a body
   * whose length is not its content-length (the stream reset) as a malformed chunked body,
   * 400 BAD_BODY. A request the request path had is recorded by its flight (StreamExchange, as
   * the stream closes), under its id; one reset after its answer began is no answer of the
   * proxy's own, and not counted. A 431 carries the request id, as every answer of the proxy's does.
   */
  private refused(r: Refused): HeaderField[] | undefined {
    if (r.status === 0) return
    const refuse = this.shared.opts.refuse
    let reply: ProxyReply
    if (r.request) {
      const req = proxyRequest(r.request, null)
      const exchange = r.owner
      if (exchange instanceof StreamExchange) req.id = exchange.requestId
      reply = refuse('BAD_BODY', r.detail, this.client, req, !r.dispatched, r.status)
    } else if (r.why === 'malformed') reply = refuse('BAD_REQUEST', r.detail, this.client, headBeforeCap(r.fields ?? []), true, r.status)
    else reply = refuse('HEAD_TOO_LARGE', r.detail, this.client, headBeforeCap(r.fields ?? []), true, r.status) // the session's 431, without content
    const id = reply.headers.find(([n]) => n === 'x-request-id')
    return id ? [id] : undefined
  }

  /**
   * The reply on its stream: the head, then the body with backpressure. The session drops the
   * connection-specific fields (RFC 9113 §8.2.2; a proxy-made answer's Connection: close means
   * nothing per stream) and lower-cases names (http2/request.ts responseFields).
   */
  send(stream: ServerStream, method: string, reply: ProxyReply): void {
    if (stream.closed) {
      if (reply.body instanceof ReadableStream) reply.body.cancel().catch(() => {})
      return
    }
    const bodiless = isBodiless(method, reply.status)
    const body = reply.body
    // A whole body's length: sent as Content-Length where the fields have none.
    const whole = bodiless || body instanceof ReadableStream ? undefined : body === null ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
    if (bodiless && body instanceof ReadableStream) body.cancel().catch(() => {})
    // An upstream's answer, a stored one: its block coded from its bytes (forwarded-reply.ts), from the stored fields (stored-reply.ts).
    const head = reply instanceof ForwardedReply || reply instanceof StoredReply ? reply.h2Head(whole) : undefined
    if (head) stream.respondWith(head, bodiless)
    else {
      stream.respond(reply.status, withDateAndLength(reply.headers, whole), bodiless)
    }
    if (!bodiless) sendBody(stream, body, this.shared.opts.sendTimeoutMs)
  }

  onData(chunk: Uint8Array): void {
    this.conn.onData(chunk)
  }

  onDrain(): void {
    this.conn.onDrain()
  }

  onEnd(): void {
    this.conn.session.shutdown(H2Code.NO_ERROR, 'client closed its side')
    // Bun closes the socket once this returns: the GOAWAY and what else is held go out now.
    this.conn.sendBatch()
  }

  onClose(): void {
    if (this.closed) return
    this.closed = true
    this.deadlineAt = 0
    this.conn.onClose()
    this.shared.closed(this)
  }

  /** The sweep: the session's idle timeout, checked once a second, and a drain's second GOAWAY. */
  onDeadline(): void {
    if (this.closed) return
    const now = performance.now()
    if (this.goawayDueAtMs !== 0 && now >= this.goawayDueAtMs) {
      this.goawayDueAtMs = 0
      this.conn.session.shutdown(H2Code.NO_ERROR, 'shutting down')
    } else this.conn.session.sweep()
    this.deadlineAt = this.goawayDueAtMs === 0 ? now + 1000 : Math.min(now + 1000, this.goawayDueAtMs)
  }

  /**
   * A graceful stop. Without a grace (a drain at shutdown), GOAWAY naming the last stream taken: a stream on its way
   * is not processed, and the client retries it elsewhere (§8.7). With one (a reload, whose new listener serves), in
   * two steps (RFC 9113 §6.8): GOAWAY of 2^31-1 now, so the client opens no more streams while those on their way are
   * still served; after graceMs, GOAWAY naming the last stream taken. Open streams finish, then the connection ends.
   */
  closeIfIdle(graceMs: number): void {
    if (this.closed || this.goawayDueAtMs !== 0) return
    this.conn.session.shutdown(H2Code.NO_ERROR, 'shutting down', graceMs > 0)
    this.conn.sendBatch()
    if (graceMs <= 0) return
    this.goawayDueAtMs = performance.now() + graceMs
    this.deadlineAt = Math.min(this.deadlineAt, this.goawayDueAtMs)
  }

  destroy(): void {
    this.conn.session.destroy()
  }

  /**
   * drain_timeout's end: each stream whose request came whole and whose answer has not begun gets the 503 its record
   * says (DRAIN_TIMEOUT), the rest are reset (an upload still coming in, an answer under way); GOAWAY; once this
   * turn's output is framed, the connection ends (cut if its socket takes not all), as HTTP/1.1's cut() does.
   */
  cut(): void {
    if (this.closed) return
    const session = this.conn.session
    for (const s of [...session.openStreams]) if (!(s.owner instanceof StreamExchange && s.owner.cutByDrain())) s.reset(H2Code.CANCEL)
    session.shutdown(H2Code.NO_ERROR, 'drain timeout')
    queueMicrotask(() => this.conn.endOrCut()) // after the output's own flush, queued by the answers
  }
}

/**
 * One request on a stream, as the request path sees it: its client (interim answers go to this
 * stream) and where its reply goes (ReplySink). One object per stream rather than a closure for
 * each of those; the listener's in-flight count ends when the stream closes.
 */
class StreamExchange implements ClientInfo, ReplySink {
  readonly ip: string
  readonly tls = true
  readonly streamKeepsLength = true
  readonly protocol = 'HTTP/2'
  readonly forwarding: ForwardingLines
  /**
   * What the stream's close handler reads: whether the request was counted out, and the request
   * path's flight (ReplySink.inFlight), told when the client resets the stream before any answer.
   * The handler reaches them through this one object, not `this` or the stream: measured, a close
   * handler that used either cost --h2 8-10% of its req/s. `held`: the flight's record, kept
   * until the stream ends (holdRecord): its reply's DATA all framed for the client, or cut first.
   */
  private readonly closing: { ended: boolean; flight: GoneListener | undefined; held: GoneListener | undefined; cut: WriteCut | undefined; framedBytes: number } = { ended: false, flight: undefined, held: undefined, cut: undefined, framedBytes: 0 }
  /** A 100 went out on the stream. */
  private continued = false
  /** The wait before the proxy's own 100 (continue-wait.ts). */
  private continueTimer: ReturnType<typeof setTimeout> | undefined
  /** drain_timeout's end answered the request 503 (cutByDrain). */
  private answeredByDrain = false

  constructor(
    private readonly owner: H2Client,
    private readonly stream: ServerStream,
    private readonly method: string,
    private readonly req: ProxyRequest,
  ) {
    this.ip = owner.client.ip
    this.forwarding = owner.client.forwarding
    stream.owner = this
    const prevClose = stream.onClose
    const closing = this.closing
    stream.onClose = (code, s) => {
      prevClose?.(code, s)
      // A reset (by the client, or the connection gone): the flight aborts if no answer came yet.
      // Closed by the session's refusal (trailers above the cap, a body length not its content-length): recorded as that, not as a client gone.
      if (code !== undefined) {
        if (s.refused) closing.flight?.refused('BAD_BODY', s.refused.status, s.refused.detail)
        else closing.flight?.clientGone()
      }
      closing.flight = undefined
      // A reset or the connection gone before the body was all framed: what was not is the record's cut (the client's windows held it back).
      const held = closing.held
      closing.held = undefined
      const cut = s.outBytes === 0 ? undefined : s.sendTimedOut ? 'CLIENT_SEND_TIMEOUT' : 'CLIENT_GONE'
      held?.written(s.outBytes, cut)
      // For a record that comes after (its upstream body still being read as the client reset): what went into DATA frames.
      closing.cut = code === undefined ? undefined : (cut ?? 'CLIENT_GONE')
      closing.framedBytes = s.queuedBytes - s.outBytes
      if (closing.ended) return
      closing.ended = true
      owner.shared.requestEnded()
    }
  }

  /** The request's id: what its record and its answers carry. */
  get requestId(): string | undefined {
    return this.req.id
  }

  set inFlight(flight: GoneListener | undefined) {
    this.closing.flight = flight
  }

  /** The record waits for the stream's end (a whole reply is written before the client's windows take it): see `closing`. */
  holdRecord(of: GoneListener): boolean {
    if (this.stream.closed) {
      // Reset before the record: it counts what the client was sent, not what the upstream gave (193,536 of 65,535).
      if (this.closing.cut === undefined) return false
      of.written(0, this.closing.cut, this.closing.framedBytes)
      return true
    }
    this.closing.held = of
    return true
  }

  /** A 1xx as an interim HEADERS; one 100 at most (the proxy's own, for Expect, or the upstream's): a second carries nothing. */
  interim(status: number, headers: [string, string][]): void {
    if (this.stream.closed || this.stream.responseStarted || (status === 100 && this.continued)) return
    if (status === 100) this.continued = true
    // A client waiting for its 100: its body's silences count from here, as over HTTP/1.1.
    if (status === 100) this.stream.restartBodyStall()
    this.stream.respond(status, headers)
  }

  /** The proxy's own 100, unless the upstream's or an answer comes within CONTINUE_WAIT_MS (continue-wait.ts). */
  continueLater(): void {
    if (this.continued || this.continueTimer !== undefined) return
    // Not once body bytes came: the client is sending, not waiting.
    this.continueTimer = continueLater(() => this.stream.receivedBytes === 0 && this.interim(100, []))
  }

  /** A throw in sending (a bug) is logged and resets the stream rather than leaving it open. */
  answer(reply: ProxyReply): void {
    if (this.continueTimer !== undefined) this.continueTimer = void clearTimeout(this.continueTimer)
    // The flight's own failure reply, after a drain's end answered for it (cutByDrain), is not a second answer.
    if (this.answeredByDrain) return void (reply.body instanceof ReadableStream && reply.body.cancel().catch(() => {}))
    try {
      this.owner.send(this.stream, this.method, reply)
    } catch (err) {
      this.owner.shared.opts.onError(err)
      this.stream.reset(H2Code.INTERNAL_ERROR)
    }
  }

  /**
   * drain_timeout's end (H2Client.cut): answered 503 DRAIN_TIMEOUT if no answer began; false otherwise. An upload still coming
   * in gets it too, then RST_STREAM(NO_ERROR) once it is sent (the session's rule for an answer before the request's end, RFC 9113 §8.1).
   */
  cutByDrain(): boolean {
    const flight = this.closing.flight
    if (flight === undefined || this.stream.responseStarted) return false
    this.closing.flight = undefined
    this.answer(failureReply('DRAIN_TIMEOUT', flight.requestId))
    this.answeredByDrain = true
    flight.clientGone() // its upstream exchange ends; recorded DRAIN_TIMEOUT (flight.ts cutByDrain), as the answer said
    return true
  }

  failed(err: unknown): void {
    this.owner.shared.opts.onError(err)
    this.answer(this.owner.shared.opts.refuse('INTERNAL', 'internal error', this.owner.client, this.req, true))
  }
}

/** A stream's request as the request path takes it: the fields as a HeadHeaders (over the request's own arrays: it only reads them), the request id given. */
function proxyRequest(r: H2Request, body: ReadableStream<Uint8Array> | null): ProxyRequest {
  const headers = new HeadHeaders(r.names, r.values)
  return { method: r.method, target: r.path, headers, body: body ?? noContent(r.method), id: requestIdFor(headers) }
}

/** The body of every request that ended with its head and whose method anticipates content: empty, and never written to. */
const NO_CONTENT = new Uint8Array(0)

/**
 * The body of a request that ended with its head (END_STREAM on HEADERS: its content is known to
 * be empty). Where its method anticipates content (POST, PUT, PATCH, an extension method) an empty
 * body, which goes upstream as "content-length: 0": HTTP/1.1 has no other way to say "empty"
 * there, and a user agent SHOULD send it (RFC 9110 §8.6; origins such as IIS answer a POST without
 * it 411). None for the methods whose requests carry no content (GET, HEAD, DELETE, OPTIONS,
 * TRACE), which SHOULD NOT have the field.
 */
function noContent(method: string): Uint8Array | null {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'DELETE':
    case 'OPTIONS':
    case 'TRACE':
    case 'CONNECT':
      return null
    default:
      return NO_CONTENT
  }
}

/**
 * What the access log shows of a head refused above the cap: its method, path and authority as
 * sent, when they came before the cap (pseudo-header fields come first, RFC 9113 §8.3), else "-",
 * as for an HTTP/1.1 head refused before its request line was read.
 */
function headBeforeCap(fields: readonly HeaderField[]): ProxyRequest {
  let method = '-'
  let target = '-'
  let authority: string | undefined
  let host: string | undefined
  for (const [n, v] of fields) {
    if (n === ':method') method = v
    else if (n === ':path') target = v
    else if (n === ':authority') authority = v
    else if (n === 'host') host ??= v
  }
  return unparsedRequest({ method, target, host: authority || host || '-' })
}

/**
 * A reply's fields as the stream sends them: with Date where they have none (RFC 9110 §6.6.1:
 * the proxy's own answers, and a forwarded one without it, get one over HTTP/1.1 too), and a
 * whole body's Content-Length where they have none. The reply's list is copied only to add.
 */
export function withDateAndLength(headers: [string, string][], whole: number | undefined): [string, string][] {
  let hasDate = false
  let hasLength = whole === undefined
  for (const [n] of headers) {
    if (n.length === 4 && n.toLowerCase() === 'date') hasDate = true
    else if (n.length === 14 && n.toLowerCase() === 'content-length') hasLength = true
  }
  if (hasDate && hasLength) return headers
  const out = [...headers]
  if (!hasDate) out.push(['date', httpDateNow()])
  if (!hasLength) out.push(['content-length', String(whole)])
  return out
}
