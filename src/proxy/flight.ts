/**
 * One request in flight on the request path (handler.ts): its route, its access record and when that may be written, where its
 * reply goes (ReplySink), and its attempts: the first pick goes straight to an exchange that reports to this flight (ExchangeSink:
 * the head, the failure, the end, interim heads), so the usual request makes no promise between the client's read and the client's
 * write; after a failure that may be retried, the attempt loop (attempts.ts) runs the rest with this flight as its Attempt. Methods
 * rather than closures made for every request; the phases themselves are the handler's.
 */
import { isoNow, monoNow } from '../lib/clock.ts'
import { IDEMPOTENT_METHODS } from '../http1/methods.ts'
import type { ResponseHead } from '../http1/response-head.ts'
import { firstFailed, firstSucceeded, pickFirst, type Attempt, type AttemptOutcome, type AttemptSuccess } from './attempts.ts'
import type { CacheExchange } from './cache/cache.ts'
import { failureReply, RequestFailure, statusFor, type FailureCode } from './errors.ts'
import { clientResponseHeaders, type ForwardingLines } from './headers.ts'
import type { ResolvedRoute } from '../config/schema.ts'
import { type GoneListener, type ProxyReply, type ProxyRequest, type ReplySink, type WriteCut } from './message.ts'
import type { AMBIGUOUS_ROUTE } from './routes.ts'
import { roundMs, type RequestRecord } from './observe/record.ts'
import type { ExchangeEnd, ExchangeSink, Http1Connection, IncomingResponse, OutgoingRequest } from './upstream/connection.ts'
import type { AcquiredConnection, AddressState, UpstreamPool } from './upstream/pool.ts'

export interface ClientInfo {
  ip: string
  /** Whether the client reached us over TLS. */
  tls: boolean
  /** Called once when the request is over (a listener may restore its keep-alive timer). */
  onDone?: () => void
  /** The listener sends a streamed body with the upstream's Content-Length (the own listener does; Bun.serve and Deno.serve chunk). */
  streamKeepsLength?: boolean
  /** The highest status the listener can send (Deno.serve: 599); a higher one from the upstream is a 502. */
  maxStatus?: number
  /** How the client speaks to us (the access log's protocol); HTTP/1.1 when unsaid. */
  protocol?: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2'
  /** The connection's X-Forwarded-* lines (proxy/headers.ts), where the listener keeps them. */
  forwarding?: ForwardingLines
  /** Sends an interim (1xx) response ahead of the final one, where the client can take it. */
  interim?(status: number, headers: [string, string][]): void
}

/** What a request in flight reports to (part of the handler's hooks). */
export interface FlightHooks {
  /** Called once per request when it is over (after the body has been relayed or failed). */
  onRecord?(record: RequestRecord): void
  /** True once a drain has run out of time: connections closed now are the proxy's cut. */
  cutting?(): boolean
  /** A body stall the request path timed itself (header_timeout) and answers 408: counted as the listener's own body_timeout refusals are. */
  onBodyStall?(ip: string, detail: string): void
}

/**
 * Where the attempts phase's outcome goes (the handler's respond phase). It reads the outcome
 * before it returns: a first attempt's success is one object filled again for each (FIRST_SUCCEEDED).
 */
export type OutcomeFn = (flight: Flight, outcome: AttemptOutcome<IncomingResponse>) => void

/** The success of a first attempt, as the outcome function is handed it (filled per request, cleared after). */
const FIRST_SUCCEEDED: AttemptSuccess<IncomingResponse> = { ok: true, value: undefined!, state: undefined!, retries: 0 }

export class Flight implements Attempt<IncomingResponse>, ExchangeSink, GoneListener {
  startedAt = monoNow()
  readonly record: RequestRecord
  private emitted = false
  /** The attempt whose response is returned has its head; its end may come before or after. */
  answered = false
  endOfAnswer: ExchangeEnd | undefined
  /** The cache phase's exchange, when the cache is on. */
  cached: CacheExchange | undefined
  /** The answer is a stored response (a hit, stale, revalidated): recorded by recordHit, not by the exchange's end. */
  private fromStore = false
  // The attempts phase: what is sent, how long the upstream may take, when the last one was sent.
  outgoing!: OutgoingRequest
  headerTimeoutMs = 0
  idleTimeoutMs = 0
  sentAt = 0
  /** The attempts phase: its first address, its deadline for retries, where its outcome goes. */
  private first: AddressState | undefined
  /** The connection of this flight's latest exchange (clientGone aborts that exchange, if still on). */
  private connection: Http1Connection | undefined
  /** The client left before any answer: nothing more is sent upstream. */
  private gone = false
  private retryDeadlineMs = 0
  private outcome: OutcomeFn | undefined
  /** The listener refused the request itself (refused()): the code, the status sent (0: none) and why, recorded so. */
  private refusal: { code: FailureCode; status: number; detail: string | undefined } | undefined = undefined

  constructor(
    readonly requestId: string,
    /** What the route phase picked (Router.pick): the [[route]], none, or a path read two ways (refused). */
    readonly route: ResolvedRoute | undefined | typeof AMBIGUOUS_ROUTE,
    readonly pool: UpstreamPool,
    readonly clientHost: string,
    readonly req: ProxyRequest,
    readonly client: ClientInfo,
    /** Where the reply goes: the listener's writer. */
    readonly sink: ReplySink,
    private readonly hooks: FlightHooks,
  ) {
    if ('inFlight' in sink) sink.inFlight = this
    this.record = {
      ts: isoNow(),
      request_id: requestId,
      client: client.ip,
      method: req.method,
      host: clientHost,
      path: req.target,
      protocol: client.protocol ?? 'HTTP/1.1',
      status: 0,
      bytes_in: 0,
      bytes_out: 0,
      duration_ms: 0,
      upstream: pool.upstream.name,
      // Every field from the start (undefined ones are left out of the log line): one shape for every record while the phases fill it in.
      upstream_addr: undefined,
      upstream_status: undefined,
      upstream_connect_ms: undefined,
      upstream_header_ms: undefined,
      upstream_reused: undefined,
      retries: 0,
      error: undefined,
      cache: undefined,
    }
  }

  /** The record phase: written once, when the response is over. */
  emit(end?: ExchangeEnd): void {
    if (this.emitted) return
    this.emitted = true
    const record = this.record
    if (this.cached) record.cache = this.cached.result
    if (end) {
      record.bytes_in = end.requestBodyBytes
      record.bytes_out = end.responseBodyBytes
      if (end.error) record.error = this.cutByDrain(end.error.code)
    }
    // Whatever ended it after (the client's stream closed, its body cut), it was the listener's refusal.
    if (this.refusal !== undefined) {
      record.error = this.refusal.code
      if (this.refusal.status !== 0) record.status = this.refusal.status
      if (this.refusal.detail !== undefined) record.error_detail = this.refusal.detail // not "client closed ..." of the abort
    }
    // The own listener keeps it until the socket took the reply, or the connection ended first (written).
    if (this.sink.holdRecord?.(this)) return
    this.recordNow()
  }

  /** A held record (emit): its reply was written whole, or cut with its last `unsentBytes` never sent (the body's end: its bytes first). */
  written(unsentBytes: number, cut: WriteCut | undefined, framedBytes = Number.POSITIVE_INFINITY): void {
    const record = this.record
    if (cut !== undefined) {
      record.bytes_out = Math.max(0, Math.min(record.bytes_out, framedBytes) - unsentBytes)
      record.error ??= this.cutByDrain(cut)
    }
    this.recordNow()
  }

  private recordNow(): void {
    this.record.duration_ms = roundMs(monoNow() - this.startedAt)
    this.client.onDone?.()
    this.hooks.onRecord?.(this.record)
  }

  /**
   * A body answered from the cache that is still arriving (a collapsed request's share of another request's upstream body),
   * wrapped so that the record is written when it ends, as an upstream exchange's is: with the bytes passed on and the
   * failure that cut it (the upstream's, the tee's, or the client's leaving). The wrapper pulls only when read, as the body it wraps;
   * a share the tee cuts while nobody pulls (a reader that fell behind) errors it at once, so that a writer waiting on its client hears.
   */
  emitAtEnd(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const reader = body.getReader()
    let bytes = 0
    const end = (code: FailureCode | undefined): void => {
      if (this.emitted) return // once: a failure reaches both the pull reading and the closed promise
      this.record.bytes_out = bytes
      if (code !== undefined) this.record.error = this.cutByDrain(code)
      this.emit()
    }
    const failed = (err: unknown) => end(err instanceof RequestFailure ? err.code : ((err as { code?: FailureCode })?.code ?? 'RESET_MID_BODY'))
    return new ReadableStream<Uint8Array>(
      {
        start: (ctl) =>
          void reader.closed.catch((err) => {
            ctl.error(err) // a no-op once the pull that failed has errored it
            failed(err)
          }),
        pull: async (ctl) => {
          let next: Awaited<ReturnType<typeof reader.read>>
          try {
            next = await reader.read()
          } catch (err) {
            ctl.error(err)
            return failed(err)
          }
          if (next.done) {
            ctl.close()
            return end(undefined)
          }
          bytes += next.value.byteLength
          ctl.enqueue(next.value)
        },
        // The client went away, or took nothing for send_timeout (told apart as the exchange does).
        cancel: (why) => {
          end((why as { code?: string } | undefined)?.code === 'CLIENT_SEND_TIMEOUT' ? 'CLIENT_SEND_TIMEOUT' : 'CLIENT_GONE')
          return reader.cancel(why)
        },
      },
      { highWaterMark: 0 },
    )
  }

  /**
   * The record of a cache hit, written when its reply is over, as a proxied reply's is. A body still arriving (shared
   * with the request that went upstream) is recorded when it ends (emitAtEnd); so is a stored one the own listeners
   * send in slices anyway (larger than SLICE_BYTES: the cache hands it over as that stream, cache/hit-body.ts): a
   * reply cut on its way (the client gone, even half-closed; send_timeout) is then logged with the bytes passed on
   * and the code that cut it, not as a whole 200. A smaller one (one write) is recorded now, whole; so is any for a
   * listener that frames a stream itself (the runtime's: it would drop the length).
   */
  recordHit(hit: ProxyReply): void {
    this.fromStore = true
    const record = this.record
    record.status = hit.status
    const body = hit.body
    if (body instanceof ReadableStream) hit.body = this.emitAtEnd(body)
    else {
      if (body instanceof Uint8Array) record.bytes_out = body.byteLength
      this.emit()
    }
  }

  /**
   * The attempts phase (`outgoing` and the timeouts set): the first pick, as the attempt loop
   * would pick it, goes to an idle connection (or one dialled) with this flight as the sink; its
   * outcome, or the loop's after a failure, goes to `outcome`.
   */
  attempt(outcome: OutcomeFn): void {
    this.outcome = outcome
    const pool = this.pool
    this.retryDeadlineMs = monoNow() + pool.upstream.retryTimeoutMs
    const first = pickFirst(pool, this, this.retryDeadlineMs)
    if (first instanceof Promise) return this.settle(first)
    this.first = first
    this.attemptOn(first, 0)
    const probe = !replayable(this.outgoing)
    const idle = pool.takeIdleConnection(first, probe)
    if (idle) this.sendOn(idle, true, undefined)
    else pool.acquire(first, false, probe).then((a) => this.sendOn(a.connection, a.reused, a.connectMs), (err) => this.firstEnded(err))
  }

  private sendOn(connection: Http1Connection, reused: boolean, connectMs: number | undefined): void {
    if (this.gone) return this.unsent(connection, (f) => this.firstEnded(f))
    try {
      this.exchangeOn(reused, connectMs)
      this.connection = connection
      connection.send(this.outgoing, this)
    } catch (err) {
      this.firstEnded(err)
    }
  }

  // ExchangeSink, for the first attempt (later ones go through exchange()'s promise)
  onResponse(r: IncomingResponse): void {
    // The outcome function reads the success at once (the handler's respond phase): one object for every first attempt's.
    this.outcome!(this, firstSucceeded(this.pool, this.first!, r, FIRST_SUCCEEDED))
    FIRST_SUCCEEDED.value = FIRST_SUCCEEDED.state = undefined!
  }
  onFailure(f: RequestFailure): void {
    this.firstEnded(f)
  }

  private firstEnded(err: unknown): void {
    this.settle(firstFailed(this.pool, this, this.first!, err, this.retryDeadlineMs))
  }

  private settle(o: AttemptOutcome<IncomingResponse> | Promise<AttemptOutcome<IncomingResponse>>): void {
    if (o instanceof Promise) o.then((x) => this.outcome!(this, x), (err) => this.failed(err))
    else this.outcome!(this, o)
  }

  /**
   * A throw on the request path (a bug): the cache's collapsed-forwarding slot this request holds,
   * if any, is given back (its waiters look again), and the listener answers 500. Every failure of
   * a flight goes through here, so no path has to remember the slot.
   */
  failed(err: unknown): void {
    this.cached?.abandon()
    this.sink.failed(err)
  }

  /** One attempt of the loop (after a failure) on `state`: an idle pooled connection, or a new one (always, when `fresh`). */
  run(state: AddressState, index: number, fresh = false): Promise<IncomingResponse> {
    this.attemptOn(state, index)
    const probe = !replayable(this.outgoing)
    const idle = fresh ? undefined : this.pool.takeIdle(state, probe)
    return idle ? this.exchange(idle) : this.pool.acquire(state, fresh, probe).then((a) => this.exchange(a))
  }

  /** A connection that closed before any answer (a stale keep-alive one, or an upstream going away). */
  staleConnection(failure: RequestFailure): boolean {
    return failure.code === 'RESET_BEFORE_RESPONSE'
  }

  private attemptOn(state: AddressState, index: number): void {
    this.record.retries = index
    this.record.upstream_addr = state.label
  }

  private exchange(acquired: AcquiredConnection): Promise<IncomingResponse> {
    if (this.gone) return new Promise((_, reject) => this.unsent(acquired.connection, reject))
    this.exchangeOn(acquired.reused, acquired.connectMs)
    this.connection = acquired.connection
    return acquired.connection.exchange(this.outgoing, this)
  }

  private exchangeOn(reused: boolean, connectMs: number | undefined): void {
    this.record.upstream_reused = reused
    this.record.upstream_connect_ms = connectMs === undefined ? undefined : roundMs(connectMs) // this attempt's: none on a reused connection
    this.endOfAnswer = undefined
    this.sentAt = monoNow()
  }

  mayRetry(failure: RequestFailure): boolean {
    return canRetry(this.outgoing, failure)
  }

  /** An exchange is over (its body relayed, or failed). Only the attempt whose response is returned is logged, once its head and end are known. */
  onEnd(end: ExchangeEnd): void {
    // An answer from the store (stale, revalidated) is recorded as a hit is (recordHit): its bytes, not the exchange's.
    if (this.fromStore) return
    if (this.answered) this.emit(end)
    else this.endOfAnswer = end
  }

  /**
   * 1xx heads are forwarded as they come, hop-by-hop fields removed: RFC 9110 §15.2, a proxy MUST
   * unless it asked for them itself (it never sends Expect of its own). A 100 too (nginx drops
   * it), but for a second one after the listener's own: the listener keeps to one.
   */
  onInterim(head: ResponseHead): void {
    this.client.interim?.(head.status, clientResponseHeaders(head.headers, this.requestId, false))
  }

  /** The client left before any answer (the cache asks, of a request waiting for another's). */
  get left(): boolean {
    return this.gone
  }

  /** The Host the origin is sent when it is the client's; undefined with host_header (the cache asks, on a miss). */
  get hostSent(): string | undefined {
    return this.pool.upstream.hostHeader === undefined ? this.clientHost : undefined
  }

  /** The client left before any answer (the listener says so): the exchange in progress fails CLIENT_GONE (attempts end, upstream freed, logged 499). */
  clientGone(): void {
    if (this.answered || this.emitted) return
    this.gone = true
    this.connection?.abortExchange(this, 'CLIENT_GONE', 'client closed the connection before the response')
  }

  /**
   * The listener refused the request itself once this flight had it (HTTP/2 request trailers above the cap): it answered `status`, or none (0: the answer
   * had begun, the stream was reset). The record carries `code` and the status sent, whatever ends it after; the exchange ends as for a client gone.
   */
  refused(code: FailureCode, status: number, detail?: string): void {
    if (this.emitted) return
    this.refusal = { code, status, detail }
    this.clientGone()
  }

  /** A connection acquired after the client left: given back unused, and the attempt fails CLIENT_GONE. */
  private unsent(connection: Http1Connection, fail: (f: RequestFailure) => void): void {
    connection.releaseUnused()
    fail(new RequestFailure('CLIENT_GONE', 'request', 'client closed the connection before the request was sent'))
  }

  /** A client cut when a drain ran out of time is the proxy's doing: DRAIN_TIMEOUT, not CLIENT_GONE. */
  private cutByDrain(code: FailureCode): FailureCode {
    return code === 'CLIENT_GONE' && this.hooks.cutting?.() ? 'DRAIN_TIMEOUT' : code
  }

  /** The proxy's own answer for a failure, recorded (a client cut by a drain's end: DRAIN_TIMEOUT); `ownTimer`: a body stall the request path timed (RequestFailure). */
  fail(failed: FailureCode, detail?: string, ownTimer = false): ProxyReply {
    if (ownTimer) this.hooks.onBodyStall?.(this.client.ip, detail ?? '')
    const code = this.cutByDrain(failed)
    if (code !== failed) this.record.error_detail = 'cut at the end of drain_timeout' // not the abort's "client closed ...", whichever path it took
    this.record.status = statusFor(code).status
    this.record.error = code
    if (this.endOfAnswer) this.record.bytes_in = this.endOfAnswer.requestBodyBytes // what the failed exchange had sent on (an upload cut by the client)
    const reply = failureReply(code, this.requestId, detail)
    // As nginx's $body_bytes_sent counts its error pages (a cut one: written()); none to a client gone, nor where the HTTP/2 stack answered itself (refused(): a 431 without content, or a reset).
    this.record.bytes_out = this.req.method === 'HEAD' || code === 'CLIENT_GONE' || this.refusal !== undefined ? 0 : Buffer.byteLength(reply.body as string)
    this.emit()
    return reply
  }
}

/**
 * Whether a reset before any answer could be retried: an idempotent method, and a body held whole
 * or none. A request that could not is sent on a pooled connection only after the kernel is asked
 * whether its upstream has closed it already (pool.ts, runtime/socket-poll.ts).
 */
function replayable(req: OutgoingRequest): boolean {
  return IDEMPOTENT_METHODS.has(req.method) && !(req.body instanceof ReadableStream)
}

/**
 * Retry after a failed exchange only when the request can be replayed without harm
 * (RFC 9110 §9.2.2): the upstream closed before any response byte, nothing of a streamed body
 * was consumed, and the method is idempotent, or nothing of the request was written (a pooled
 * connection found closed as it was taken: phase `request` with a body held whole or none). A
 * non-idempotent request that reached the upstream is never replayed, reused connection or not
 * ("A proxy MUST NOT automatically retry non-idempotent requests", §9.2.2): the upstream may have
 * acted on it before its connection went away. nginx does the same (`non_idempotent` is off).
 */
function canRetry(req: OutgoingRequest, err: RequestFailure): boolean {
  if (err.code !== 'RESET_BEFORE_RESPONSE') return false
  if (req.body instanceof ReadableStream) return false
  if (err.bodyConsumed) return false
  return IDEMPOTENT_METHODS.has(req.method) || err.phase === 'request'
}
