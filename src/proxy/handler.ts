/**
 * The request path, one request at a time, as named phases:
 *
 *   route → admit → body → cache → attempts → respond → record
 *
 * - route: the upstream (routes.ts), the request id and the access record;
 * - admit: admission limits and the drain (the server's hook); refusals are answered and logged; a TRACE or
 *   OPTIONS with Max-Forwards: 0 is answered here (max-forwards.ts);
 * - body: small bodies are read ahead so they can be replayed (request-body.ts), limits checked;
 * - cache: with the edge cache on (cache/), a stored answer returns here; a miss goes on, with the validators the
 *   cache asks for, and the cache sees the answer in respond (or the failure);
 * - attempts: the one attempt loop (attempts.ts) over the pool, each attempt one exchange on an idle or new
 *   upstream connection (upstream/connection.ts); what one attempt does is the request's own (flight.ts);
 * - respond: the upstream's head with the response header rules (headers.ts) and its body as a stream, or the
 *   proxy's own answer for a failure (errors.ts);
 * - record: one access record when the response is over (observe/record.ts).
 * An upgrade request takes the same route and admit phases, then a tunnel (upgrade/tunnel.ts) through the same
 * attempt loop, and is recorded when the tunnel closes. Answers the listener makes itself (malformed heads,
 * timeouts) are recorded here too (refusal()). It never awaits DNS.
 */
import type { ResolvedConfig } from '../config/schema.ts'
import { cidrContains, type Cidr } from '../lib/cidr.ts'
import type { AttemptOutcome } from './attempts.ts'
import { Flight, type ClientInfo, type FlightHooks, type OutcomeFn } from './flight.ts'
import { encodeClosingResponse } from '../http1/response-encode.ts'
import { HeadHeaders } from '../http1/request-head.ts'
import { contentLength } from '../http1/chars.ts'
import type { Conn } from '../runtime/socket.ts'
import { failureReply, isUpstreamFailure, type FailureCode } from './errors.ts'
import { ForwardedReply } from './forwarded-reply.ts'
import { clientResponseHeaders, requestIdFor, upstreamAuthority, upstreamRequestFields, upstreamRequestHeaders, upstreamRequestLines, type ForwardContext, type UpstreamFields } from './headers.ts'
import { maxForwardsStep } from './max-forwards.ts'
import { unparsedRequest, type ProxyReply, type ProxyRequest, type ReplySink } from './message.ts'
import { roundMs } from './observe/record.ts'
import { prepareBody, type BodyFailed } from './request-body.ts'
import { responseRewriterFor, rewriteResponseHeaders, rewrites, type ResponseRewriter } from './rewrite.ts'
import { AMBIGUOUS_PATH, AMBIGUOUS_ROUTE, Router } from './routes.ts'
import { tunnelUpgrade } from './upgrade/tunnel.ts'
import type { CacheExchange, EdgeCache } from './cache/cache.ts'
import { requestKey } from './cache/key.ts'
import { discardBody, withCacheStatus } from './cache/reply.ts'
import type { IncomingResponse, OutgoingRequest } from './upstream/connection.ts'
import type { UpstreamPool } from './upstream/pool.ts'

export interface HandlerHooks extends FlightHooks {
  /** Admission: a failure code to refuse the request with (the drain, max_concurrent_requests), or undefined. */
  admit?(client: ClientInfo): FailureCode | undefined
  /** A bug: something on the request path threw. */
  onError?(err: unknown): void
  /** The edge cache, when [cache] max_size is set. */
  cache?: EdgeCache
}

export type { ClientInfo }

/** Heads with more fields than this forward their lines from their bytes (upstreamRequestLines). */
const LINES_FROM_FIELDS = 3

export class ProxyHandler {
  private readonly trusted: readonly Cidr[]
  readonly router: Router<UpstreamPool>
  /** Location and Set-Cookie rewrites (rewrite.ts), by upstream name; absent when an upstream has none. */
  private readonly rewriters = new Map<string, ResponseRewriter>()
  /** The ForwardContext forwardContext() fills per request (headers.ts keeps none of it). */
  private readonly forwarding: ForwardContext = { clientIp: '', trustedPeer: false, proto: 'http', clientHost: '', clientSentHost: true, hostOverride: undefined, requestId: '', via: undefined, forwarding: undefined }
  /** This proxy's Via entries (headers.ts addVia) by the client's protocol; undefined with server.via "off". */
  private readonly via: { 'HTTP/1.0': string; 'HTTP/1.1': string; 'HTTP/2': string } | undefined

  constructor(
    private readonly config: ResolvedConfig,
    pools: ReadonlyMap<string, UpstreamPool>,
    trusted: readonly Cidr[],
    private readonly hooks: HandlerHooks = {},
  ) {
    this.trusted = trusted
    const name = config.server.via
    this.via = name === undefined ? undefined : { 'HTTP/1.0': `1.0 ${name}`, 'HTTP/1.1': `1.1 ${name}`, 'HTTP/2': `2 ${name}` }
    this.router = new Router(config.routes, pools, config.server.defaultUpstream)
    // Requests the cache makes itself (a stale-while-revalidate refresh, a retry without
    // validators) go through this same request path, as the client they were made for.
    if (hooks.cache) hooks.cache.forwarder = (r, c) => this.handle(r, c as ClientInfo)
    for (const u of Object.values(config.upstreams)) {
      const rw = responseRewriterFor(u)
      if (rw) this.rewriters.set(u.name, rw)
    }
  }

  /** Whether `ip` is in trusted_proxies (its X-Forwarded-* are appended to). */
  trustedPeer(ip: string): boolean {
    return this.trusted.length > 0 && this.trusted.some((c) => cidrContains(c, ip))
  }

  /** The request path as a promise (Bun.serve and Deno.serve fronts, the cache's own requests). */
  handle(req: ProxyRequest, client: ClientInfo): Promise<ProxyReply> {
    return new Promise((resolve, reject) => this.serve(req, client, { answer: resolve, failed: reject }))
  }

  /**
   * The request path: the reply goes to `sink` once it is decided. A request goes from phase to
   * phase in the events that move it (the client's read, the upstream's answer) with no promise
   * between them unless a phase has to wait (a body read ahead, the cache, a retry); a refusal is
   * answered in the same turn. A throw here is the caller's to answer.
   */
  serve(req: ProxyRequest, client: ClientInfo, sink: ReplySink): void {
    // route
    const flight = this.route(req, client, sink)
    if (flight.route === AMBIGUOUS_ROUTE) return sink.answer(flight.fail('BAD_REQUEST', AMBIGUOUS_PATH))
    // admit
    const refusal = this.hooks.admit?.(client)
    if (refusal) return sink.answer(flight.fail(refusal))
    // Max-Forwards on TRACE and OPTIONS: answered here at 0, else counted down (max-forwards.ts).
    const method = req.method
    const own = method === 'OPTIONS' || method === 'TRACE' ? this.maxForwardsAnswer(flight) : undefined
    if (own) return sink.answer(own)
    // body (read ahead only when there is one to read: most requests go on in the same turn)
    const outgoing = this.body(flight)
    if (outgoing instanceof Promise) outgoing.then((o) => this.afterBody(flight, o)).catch((err) => flight.failed(err))
    else this.afterBody(flight, outgoing)
  }

  private afterBody(flight: Flight, outgoing: Outgoing | FailureCode | BodyFailed): void {
    if (typeof outgoing === 'string') return flight.sink.answer(flight.fail(outgoing))
    if ('kind' in outgoing) return flight.sink.answer(flight.fail(outgoing.code, outgoing.detail, outgoing.ownTimer)) // in the listener's words, as it answered (the record's bytes_out is that answer's; a client gone is sent none)
    // cache (a throw once the cache has been asked goes through the flight, which gives back its slot)
    if (this.hooks.cache) {
      try {
        const hit = this.cache(flight, outgoing)
        if (hit instanceof Promise) hit.then((h) => this.afterCache(flight, outgoing, h)).catch((err) => flight.failed(err))
        else this.afterCache(flight, outgoing, hit)
      } catch (err) {
        flight.failed(err)
      }
      return
    }
    // attempts, then respond
    this.attempts(flight, outgoing)
  }

  /** Max-Forwards on a TRACE or OPTIONS (RFC 9110 §7.6.2): counted down in the request, or at 0 the proxy's own answer as the final recipient, recorded, for the caller to send. */
  private maxForwardsAnswer(flight: Flight): ProxyReply | undefined {
    const step = maxForwardsStep(flight.req, flight.requestId, flight.record.protocol)
    if (step === undefined) return undefined
    if ('headers' in step) {
      flight.req.headers = step.headers
      return undefined
    }
    flight.record.status = step.answer.status
    flight.emit()
    return step.answer
  }

  /** An upgrade request: route, admit (Max-Forwards too), then a tunnel; recorded once the tunnel is over. `conn` is the client's, taken over. */
  upgrade(req: ProxyRequest, upgrade: string, client: ClientInfo, conn: Conn, early: Uint8Array): void {
    const flight = this.route(req, client, NO_SINK)
    const refusal = flight.route === AMBIGUOUS_ROUTE ? 'BAD_REQUEST' : this.hooks.admit?.(client)
    // Max-Forwards as for any other request: at 0 answered here, and nothing is switched.
    const own = refusal ? flight.fail(refusal, refusal === 'BAD_REQUEST' ? AMBIGUOUS_PATH : undefined) : this.maxForwardsAnswer(flight)
    if (own) {
      conn.write(encodeClosingResponse(own.status, own.headers, own.body as string))
      conn.end()
      return
    }
    const { pool, record } = flight
    const u = pool.upstream
    const headers = this.forwardHeaders(flight)
    tunnelUpgrade(conn, early, {
      pool,
      method: req.method,
      target: req.target,
      headers,
      upgrade,
      requestId: flight.requestId,
      openTimeoutMs: u.connectTimeoutMs + u.headerTimeoutMs,
      idleTimeoutMs: u.idleTimeoutMs,
      // One access record per upgrade, when it is over (as nginx logs a WebSocket: 101, with its bytes).
      onEnd: (end) => {
        record.status = end.status
        record.bytes_in = end.bytesIn
        record.bytes_out = end.bytesOut
        record.retries = end.retries
        if (end.upstreamAddr !== undefined) record.upstream_addr = end.upstreamAddr
        if (end.upstreamStatus !== undefined) record.upstream_status = end.upstreamStatus
        if (end.error !== undefined) record.error = end.error
        if (end.detail !== undefined) record.error_detail = end.detail
        if (this.hooks.cutting?.()) record.error = 'DRAIN_TIMEOUT'
        flight.emit()
      },
    }).catch((err) => {
      record.status = 500
      record.error = 'INTERNAL'
      flight.emit()
      conn.destroy()
      this.hooks.onError?.(err)
    })
  }

  /**
   * An answer the listener makes itself (a malformed head, a timeout, the connection cap): its reply with a request
   * id, written to the access log when `record`. `req` is what was parsed; `status`, what the listener sent when it
   * answered itself otherwise than the code's own (the HTTP/2 stack's 431 for trailers too large).
   */
  refusal(code: FailureCode, detail: string, client: ClientInfo, req: ProxyRequest | undefined, record: boolean, status?: number, sinceMs?: number): ProxyReply {
    // The route phase gives it its id, upstream and record; nothing of an unparsed request is known.
    const flight = this.route(req ?? unparsedRequest(), client, NO_SINK)
    if (sinceMs !== undefined) flight.startedAt = sinceMs
    if (status !== undefined) flight.refused(code, status)
    return record ? flight.fail(code, detail) : failureReply(code, flight.requestId, detail)
  }

  /** The request headers sent upstream: hop-by-hop removed, X-Forwarded-* and the request id set (headers.ts). */
  private forwardHeaders(flight: Flight): [string, string][] {
    return upstreamRequestHeaders(flight.req.headers, this.forwardContext(flight))
  }

  /**
   * The same, for the exchange: a head the own listener parsed, with more than a few fields, has its kept lines go
   * upstream as they came (for a head of one to three fields, like a load tool's or curl's, the list costs less).
   */
  private forwardFields(flight: Flight, into: Outgoing): void {
    const req = flight.req
    const head = req.headers instanceof HeadHeaders ? req.headers.head : undefined
    if (head === undefined || head.names.length <= LINES_FROM_FIELDS) upstreamRequestFields(req.headers, this.forwardContext(flight), into)
    else upstreamRequestLines(req.headers, head, this.forwardContext(flight), into)
  }

  private forwardContext(flight: Flight): ForwardContext {
    const client = flight.client
    const ctx = this.forwarding
    ctx.clientIp = client.ip
    ctx.trustedPeer = this.trustedPeer(client.ip)
    ctx.proto = client.tls ? 'https' : 'http'
    ctx.clientHost = flight.clientHost
    // Only an HTTP/1.0 request (or one through the runtime front, which cannot say) may lack Host.
    ctx.clientSentHost = client.protocol === 'HTTP/1.1' || client.protocol === 'HTTP/2' || flight.req.headers.get('host') !== null
    ctx.hostOverride = flight.pool.upstream.hostHeader
    ctx.requestId = flight.requestId
    ctx.via = this.via?.[client.protocol ?? 'HTTP/1.1']
    ctx.forwarding = client.forwarding
    return ctx
  }

  /** The route phase: the upstream, the request id, the Host sent upstream and the record. */
  private route(req: ProxyRequest, client: ClientInfo, sink: ReplySink): Flight {
    const hostHeader = req.headers.get('host')
    const route = this.router.pick(req.target, hostHeader)
    const pool = this.router.upstreamOf(route === AMBIGUOUS_ROUTE ? undefined : route)
    const u = pool.upstream
    // An HTTP/1.0 request may lack Host; the upstream then gets its own name.
    const clientHost = hostHeader ?? upstreamAuthority(u)
    const requestId = req.id ?? requestIdFor(req.headers)
    req.id = requestId
    return new Flight(requestId, route, pool, clientHost, req, client, sink, this.hooks)
  }

  /** The body phase: small bodies (declared or chunked) are read first, replayable; larger ones stream once. The request to send, or the failure. */
  private body(flight: Flight): Outgoing | FailureCode | Promise<Outgoing | FailureCode | BodyFailed> {
    const req = flight.req
    const lengthHeader = req.headers.get('content-length') // a list of one value ("5, 5", two lines) is that value (RFC 9110 §8.6), not NaN
    const declaredLength = lengthHeader !== null ? contentLength(lengthHeader, undefined) : undefined
    if (typeof declaredLength === 'string') return 'BAD_REQUEST' // the listeners refuse these first
    const maxBody = this.config.server.maxBodyBytes
    if (maxBody > 0 && declaredLength !== undefined && declaredLength > maxBody) return 'BODY_TOO_LARGE'
    // The own listener hands over a small body that arrived whole as bytes; none is the usual case.
    if (req.body instanceof Uint8Array || (req.body === null && declaredLength !== 0)) return this.outgoing(flight, req.body, declaredLength)
    if (req.body instanceof ReadableStream && req.headers.get('expect')?.toLowerCase() === '100-continue') return this.outgoing(flight, req.body, declaredLength) // a client waiting for 100 sends nothing before it: the head goes on at once (RFC 9110 §10.1.1: a proxy MUST forward it or answer)
    return prepareBody(req.body, declaredLength, flight.pool.upstream.headerTimeoutMs).then((prepared) => {
      // A failed read-ahead: the client left, or its chunked body was malformed (the listener
      // has answered 400 itself). Nothing was sent upstream.
      if (prepared.kind === 'failed') return prepared
      return this.outgoing(flight, prepared.kind === 'buffered' ? prepared.bytes : prepared.kind === 'stream' ? prepared.stream : null, declaredLength)
    })
  }

  private outgoing(flight: Flight, body: Uint8Array | ReadableStream<Uint8Array> | null, declaredLength: number | undefined): Outgoing | FailureCode {
    const maxBody = this.config.server.maxBodyBytes
    if (maxBody > 0 && body instanceof Uint8Array && body.byteLength > maxBody) return 'BODY_TOO_LARGE'
    const req = flight.req
    const out: Outgoing = { method: req.method, target: req.target, headers: NO_HEADERS, lines: undefined, body, bodyLength: body instanceof ReadableStream ? declaredLength : undefined, maxBodyBytes: maxBody }
    // With a cache, the headers are made once the cache has not answered (looked(), below): a hit needs none.
    if (!this.hooks.cache) this.forwardFields(flight, out)
    return out
  }

  private afterCache(flight: Flight, outgoing: Outgoing, hit: ProxyReply | undefined): void {
    if (hit) flight.sink.answer(hit)
    else this.attempts(flight, outgoing)
  }

  /**
   * The cache phase: a stored (or shared, collapsed) answer, or undefined to go upstream with the
   * validators the cache asks for. The cache then sees the answer (respond) or the failure. In
   * the same turn when the cache can tell at once (a hit, a miss nobody else is fetching).
   */
  private cache(flight: Flight, outgoing: Outgoing): ProxyReply | undefined | Promise<ProxyReply | undefined> {
    const cache = this.hooks.cache
    if (!cache) return undefined
    const { req, client, pool } = flight
    const u = pool.upstream
    const key = requestKey(client.tls, flight.clientHost, req.target, this.trustedPeer(client.ip) ? req.headers : undefined)
    const route = flight.route
    const enabled = route === undefined || route === AMBIGUOUS_ROUTE || route.cache
    const body = outgoing.body
    const hasContent = body instanceof ReadableStream || (body instanceof Uint8Array && body.byteLength > 0)
    const cached = cache.lookup(req, { key, enabled, requestId: flight.requestId, client, maxWaitMs: u.connectTimeoutMs + u.headerTimeoutMs, streamKeepsLength: client.streamKeepsLength === true, hasContent, state: flight })
    return cached instanceof Promise ? cached.then((c) => this.looked(flight, outgoing, c)) : this.looked(flight, outgoing, cached)
  }

  /** What the cache said: its answer (recorded), or the request goes upstream with its validators. */
  private looked(flight: Flight, outgoing: Outgoing, cached: CacheExchange): ProxyReply | undefined {
    flight.cached = cached
    const hit = cached.hit
    if (hit) {
      flight.recordHit(hit)
      return hit
    }
    // A list made for this request (never NO_HEADERS), which the validators join.
    this.forwardFields(flight, outgoing)
    for (const v of cached.validators) outgoing.headers.push(v)
    return undefined
  }

  /** The attempts phase (flight.ts), then respond: the first answer any address gives, or the last failure. */
  private attempts(flight: Flight, outgoing: Outgoing): void {
    const u = flight.pool.upstream
    flight.outgoing = outgoing
    flight.headerTimeoutMs = u.headerTimeoutMs
    flight.idleTimeoutMs = u.idleTimeoutMs
    flight.attempt(this.responded)
  }

  /** The attempts' outcome, through the respond phase, to the flight's sink (one function for every request). */
  private readonly responded: OutcomeFn = (flight, outcome) => {
    let reply: ProxyReply | Promise<ProxyReply>
    try {
      reply = this.respond(flight, outcome)
    } catch (err) {
      return flight.failed(err)
    }
    if (reply instanceof Promise) reply.then((r) => flight.sink.answer(r), (err) => flight.failed(err))
    else flight.sink.answer(reply)
  }

  /** The respond phase: the upstream's answer with the response header rules, or the proxy's own for the failure. */
  private respond(flight: Flight, outcome: AttemptOutcome<IncomingResponse>): ProxyReply | Promise<ProxyReply> {
    const { pool, record } = flight
    record.retries = outcome.retries
    if (!outcome.ok) {
      const f = outcome.failure
      record.error_detail = f.message // the failure in words for the log (a BAD_RESPONSE's cause); then a stored response within stale-if-error may answer instead
      const stale = flight.cached?.onError(isUpstreamFailure(f.code))
      if (stale) {
        record.error = f.code
        flight.recordHit(stale)
        return stale
      }
      // The table's reason, except where the failure says more (DNS not answered yet; the body's fault, in the words the client got); with the cache's Cache-Status (RFC 9211).
      const failed = flight.fail(f.code, f.code === 'NOT_RESOLVED' || f.code === 'BAD_BODY' || f.code === 'CLIENT_BODY_TIMEOUT' ? f.message : undefined, f.ownTimer)
      return flight.cached ? { ...failed, headers: withCacheStatus(failed.headers, { fwd: flight.cached.fwd }) } : failed
    }
    const res = outcome.value
    record.upstream_header_ms = roundMs(res.firstByteAt - flight.sentAt)
    record.upstream_status = res.head.status
    // A status the listener cannot send (600-999 on Deno.serve, which throws for them): 502, the upstream's body cancelled.
    if (res.head.status > (flight.client.maxStatus ?? 999)) {
      discardBody(res.body)
      return flight.fail('BAD_RESPONSE', `upstream sent status ${res.head.status}, which this runtime's server cannot send (200-599); run the Bun build to relay it`)
    }
    const keepLength = flight.client.streamKeepsLength === true || !(res.body instanceof ReadableStream)
    const rewriter = this.rewriters.get(pool.upstream.name)
    let reply: ProxyReply
    const raw = res.head.raw
    if (raw && !flight.cached && (!rewriter || !rewrites(raw, rewriter))) {
      // Nothing changes the fields: they stay in the upstream's bytes until a writer needs them.
      // A small whole body still in the upstream's read stays there until a writer copies it (encodeWhole).
      reply = res.wholeIn !== undefined ? new ForwardedReply(res.head, raw, flight.requestId, keepLength, null, res) : new ForwardedReply(res.head, raw, flight.requestId, keepLength, res.body)
    } else {
      const headers = clientResponseHeaders(res.head.headers, flight.requestId, keepLength)
      if (rewriter) rewriteResponseHeaders(headers, rewriter, { tls: flight.client.tls, headers: flight.req.headers, trustedPeer: this.trustedPeer(flight.client.ip) })
      reply = { status: res.head.status, statusText: res.head.statusText, headers, body: res.body }
    }
    // The cache stores or shares it, merges a 304 into the stored one, or serves stale for a 5xx.
    if (flight.cached) {
      const stored = flight.cached.onReply(reply, pool.upstream.scheme === 'https' && res.head.framing.kind === 'close') // a TLS close may be a cut (cache/policy.ts)
      return stored instanceof Promise ? stored.then((r) => this.answeredCached(flight, reply, r)) : this.answeredCached(flight, reply, stored)
    }
    return this.answered(flight, reply)
  }

  /**
   * The cache's answer: a stored response it gave instead of the upstream's (after a 304, or stale for a 5xx) is recorded as a hit
   * is, with its own body's bytes, not the 304's or the 5xx's. So is this request's share of a body it fills the cache with (the
   * tee's, not the upstream's body): at its own end, as a collapsed request's, since the fill goes on after its client leaves.
   */
  private answeredCached(flight: Flight, upstream: ProxyReply, answer: ProxyReply): ProxyReply {
    const result = flight.cached?.result
    const share = answer.body instanceof ReadableStream && answer.body !== upstream.body
    if (!share && (answer === upstream || (result !== 'revalidated' && result !== 'stale'))) return this.answered(flight, answer)
    flight.answered = true
    flight.recordHit(answer)
    return answer
  }

  /** The reply is decided: recorded now if its exchange is already over. */
  private answered(flight: Flight, reply: ProxyReply): ProxyReply {
    flight.record.status = reply.status
    flight.answered = true
    if (flight.endOfAnswer) flight.emit(flight.endOfAnswer)
    return reply
  }
}

/** The request sent upstream, its fields filled in place (headers.ts UpstreamFields). */
type Outgoing = OutgoingRequest & UpstreamFields

/** The fields of a request before the cache has been asked (looked() replaces them on a miss), shared and never changed. */
const NO_HEADERS = Object.freeze([]) as unknown as [string, string][]

/** The sink of a flight whose reply its caller writes itself (refusals, upgrades). */
const NO_SINK: ReplySink = { answer() {}, failed() {} }
