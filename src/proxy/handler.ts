/**
 * The request path: route -> pick an address -> acquire a connection -> exchange -> relay the
 * response, retrying on another address when that is safe. It reads the pool's current state and
 * never awaits DNS. Header rules are in headers.ts, statuses in status.ts, pooling in pool.ts.
 */
import type { ResolvedConfig, ResolvedRoute } from '../config/schema.ts'
import { cidrContains, type Cidr } from '../lib/cidr.ts'
import { isoNow } from '../lib/clock.ts'
import { clientResponseHeaders, hostWithoutPort, requestIdFor, upstreamRequestHeaders } from './headers.ts'
import type { AcquiredConnection, AddressState, UpstreamPool } from './pool.ts'
import { prepareBody } from './request-body.ts'
import type { ProxyReply, ProxyRequest } from './message.ts'
import { errorReply, statusForUpstreamError } from './status.ts'
import type { ExchangeEnd, IncomingResponse, OutgoingRequest } from './transport/http1.ts'
import { UpstreamError } from './upstream-error.ts'
import type { CacheExchange, EdgeCache } from './cache/cache.ts' // [cache]
import { cacheKey } from './cache/key.ts' // [cache]

/** One line of the access log; field names follow nginx's upstream variables where one exists. */
export interface RequestRecord {
  ts: string
  request_id: string
  client: string
  method: string
  host: string
  path: string
  status: number
  bytes_in: number
  bytes_out: number
  duration_ms: number
  upstream: string
  upstream_addr?: string
  upstream_status?: number
  upstream_connect_ms?: number
  upstream_header_ms?: number
  upstream_reused?: boolean
  retries: number
  error?: string
  /** [cache] How the edge cache answered: hit, stale, revalidated, collapsed, miss, bypass, refresh. */
  cache?: string
}

export interface HandlerHooks {
  /** Called once per request when it is over (after the body has been relayed or failed). */
  onRecord?(record: RequestRecord): void
  /** [cache] The edge cache, when [cache] max_size is set. */
  cache?: EdgeCache
}

export interface ClientInfo {
  ip: string
  /** Whether the client reached us over TLS. */
  tls: boolean
  /** Called once when the request is over (the listener restores its keep-alive timer). */
  onDone?: () => void
  /** The listener sends a streamed body with the upstream's Content-Length (the own listener does; Bun.serve always chunks). */
  streamKeepsLength?: boolean
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

export class ProxyHandler {
  private readonly trusted: readonly Cidr[]
  private readonly routes: readonly ResolvedRoute[]

  constructor(
    private readonly config: ResolvedConfig,
    private readonly pools: ReadonlyMap<string, UpstreamPool>,
    trusted: readonly Cidr[],
    private readonly hooks: HandlerHooks = {},
  ) {
    this.trusted = trusted
    this.routes = config.routes
    // [cache] Requests the cache sends itself (a stale-while-revalidate refresh, a retry without
    // validators) go through this same request path, as the client they were made for.
    const cache = hooks.cache
    if (cache) cache.forwarder = (r, c) => this.handle(r, { ip: (c as ClientInfo).ip, tls: (c as ClientInfo).tls, streamKeepsLength: (c as ClientInfo).streamKeepsLength })
  }

  /** Finds the upstream for a request: first matching [[route]], else the default. */
  route(host: string, path: string): UpstreamPool {
    return this.pools.get(this.matchRoute(host, path).upstream)!
  }

  private matchRoute(host: string, path: string): ResolvedRoute {
    for (const r of this.routes) {
      if (r.host !== undefined && !hostMatches(r.host, host)) continue
      if (r.pathPrefix !== undefined && !path.startsWith(r.pathPrefix)) continue
      return r
    }
    return this.routes[this.routes.length - 1]!
  }

  /** The route for a request target and its Host header (the port dropped, the query ignored). */
  routeEntryFor(target: string, hostHeader: string | null): ResolvedRoute {
    const qs = target.indexOf('?')
    return this.matchRoute(hostHeader === null ? '' : hostWithoutPort(hostHeader), qs < 0 ? target : target.slice(0, qs))
  }

  /** The upstream for a request target and its Host header. */
  routeFor(target: string, hostHeader: string | null): UpstreamPool {
    return this.pools.get(this.routeEntryFor(target, hostHeader).upstream)!
  }

  async handle(req: ProxyRequest, client: ClientInfo): Promise<ProxyReply> {
    const startedAt = performance.now()
    const requestId = requestIdFor(req.headers.get('x-request-id'))
    const target = req.target
    const hostHeader = req.headers.get('host')
    const route = this.routeEntryFor(target, hostHeader)
    const pool = this.pools.get(route.upstream)!
    const upstream = pool.upstream
    // An HTTP/1.0 request may lack Host; the upstream then gets its own name.
    const clientHost = hostHeader ?? (upstream.port === (upstream.scheme === 'https' ? 443 : 80) ? upstream.host : `${upstream.host}:${upstream.port}`)
    const record: RequestRecord = {
      ts: isoNow(),
      request_id: requestId,
      client: client.ip,
      method: req.method,
      host: clientHost,
      path: target,
      status: 0,
      bytes_in: 0,
      bytes_out: 0,
      duration_ms: 0,
      upstream: upstream.name,
      retries: 0,
    }
    let emitted = false
    let cached: CacheExchange | undefined // [cache]
    const emit = (end?: ExchangeEnd) => {
      if (emitted) return
      emitted = true
      if (cached) record.cache = cached.result // [cache]
      if (end) {
        record.bytes_in = end.requestBodyBytes
        record.bytes_out = end.responseBodyBytes
        if (end.error) record.error = end.error.code
      }
      record.duration_ms = Math.round((performance.now() - startedAt) * 1000) / 1000
      client.onDone?.()
      this.hooks.onRecord?.(record)
    }
    const fail = (status: number, reason: string, code: string) => {
      record.status = status
      record.error = code
      emit()
      return errorReply(status, reason, requestId)
    }

    const trustedPeer = this.trusted.length > 0 && this.trusted.some((c) => cidrContains(c, client.ip))
    const headers = upstreamRequestHeaders(req.headers, {
      clientIp: client.ip,
      trustedPeer,
      proto: client.tls ? 'https' : 'http',
      clientHost,
      hostOverride: upstream.hostHeader,
      requestId,
    })

    // Body: small ones (declared or chunked) are read first, replayable; larger ones stream once.
    const lengthHeader = req.headers.get('content-length')
    const declaredLength = lengthHeader !== null ? Number(lengthHeader) : undefined
    const maxBody = this.config.server.maxBodyBytes
    if (maxBody > 0 && declaredLength !== undefined && declaredLength > maxBody) {
      return fail(413, 'request body too large', 'BODY_TOO_LARGE')
    }
    let body: Uint8Array | ReadableStream<Uint8Array> | null = null
    if (req.body instanceof Uint8Array) {
      // The own listener hands over a small body that arrived whole as bytes.
      body = req.body
    } else if (req.body || declaredLength === 0) {
      const prepared = await prepareBody(req.body, declaredLength)
      // A failed read-ahead: the client left, or its chunked body was malformed (the listener
      // has answered 400 itself). Nothing was sent upstream.
      if (prepared.kind === 'failed') return fail(499, 'client request body failed', 'CLIENT_GONE')
      body = prepared.kind === 'buffered' ? prepared.bytes : prepared.kind === 'stream' ? prepared.stream : null
    }
    if (maxBody > 0 && body instanceof Uint8Array && body.byteLength > maxBody) return fail(413, 'request body too large', 'BODY_TOO_LARGE')

    // ── [cache] phase: a stored answer returns here; a miss goes on with the validators it asks for.
    const cache = this.hooks.cache
    if (cache) {
      const key = cacheKey(client.tls ? 'https' : 'http', clientHost, target)
      const maxWaitMs = upstream.connectTimeoutMs + upstream.headerTimeoutMs
      cached = await cache.lookup(req, { key, enabled: route.cache, requestId, client, maxWaitMs, streamKeepsLength: client.streamKeepsLength === true })
      if (cached.hit) {
        record.status = cached.hit.status
        if (cached.hit.body instanceof Uint8Array) record.bytes_out = cached.hit.body.byteLength
        emit()
        return cached.hit
      }
      headers.push(...cached.validators)
    }
    // ── end [cache]

    const outgoing: OutgoingRequest = {
      method: req.method,
      target,
      headers,
      body,
      bodyLength: body instanceof ReadableStream ? declaredLength : undefined,
      maxBodyBytes: maxBody,
    }

    const snapshot = pool.source.snapshot()
    // Addresses already tried; made on the first retry (most requests never need it).
    let tried: Set<string> | undefined
    let lastAddress: string | undefined
    const deadline = performance.now() + upstream.retryTimeoutMs
    let lastError: UpstreamError | undefined
    // The exchange reports its end once the body has been relayed; only the attempt whose
    // response we return is logged, and only when both its head and its end are known.
    let answered = false
    let endOfAnswer: ExchangeEnd | undefined
    const onEnd = (end: ExchangeEnd) => {
      if (answered) emit(end)
      else endOfAnswer = end
    }
    for (let attempt = 0; attempt <= upstream.retries; attempt++) {
      if (attempt > 0 && performance.now() > deadline) break
      if (lastAddress !== undefined) (tried ??= new Set()).add(lastAddress)
      const state = pool.pick(tried)
      if (!state) break
      lastAddress = state.address
      record.retries = attempt
      record.upstream_addr = state.label
      let acquired: AcquiredConnection | undefined = pool.takeIdle(state)
      if (!acquired) {
        try {
          acquired = await pool.acquire(state)
        } catch (err) {
          lastError = err as UpstreamError
          if (lastError.isAddressFailure) pool.reportFailure(state, lastError)
          continue // nothing was sent: always safe to try another address
        }
      }
      record.upstream_reused = acquired.reused
      if (acquired.connectMs !== undefined) record.upstream_connect_ms = round3(acquired.connectMs)
      const sentAt = performance.now()
      endOfAnswer = undefined
      let res: IncomingResponse
      try {
        res = await acquired.connection.exchange(outgoing, {
          headerTimeoutMs: upstream.headerTimeoutMs,
          idleTimeoutMs: upstream.idleTimeoutMs,
          onEnd,
        })
      } catch (err) {
        lastError = err as UpstreamError
        if (lastError.code === 'CLIENT_GONE' || lastError.code === 'BODY_TOO_LARGE' || lastError.code === 'HEADER_TIMEOUT') break
        if (!this.canRetry(outgoing, lastError, acquired.reused)) break
        // The exchange already logged through onEnd; the next attempt logs again at its end.
        continue
      }
      pool.reportSuccess(state)
      record.upstream_status = res.head.status
      record.upstream_header_ms = round3(res.firstByteAt - sentAt)
      record.status = res.head.status
      const keepLength = client.streamKeepsLength === true || !(res.body instanceof ReadableStream)
      let reply: ProxyReply = { status: res.head.status, statusText: res.head.statusText, headers: clientResponseHeaders(res.head.headers, requestId, keepLength), body: res.body }
      if (cached) reply = await cached.onReply(reply) // [cache] stored, shared, merged from a 304, or stale for a 5xx
      record.status = reply.status
      answered = true
      if (endOfAnswer) emit(endOfAnswer)
      return reply
    }
    // [cache] The upstream failed: a stored response within stale-if-error may answer instead.
    const stale = cached?.onError()
    if (stale) {
      record.status = stale.status
      record.error = lastError?.code ?? 'NO_ADDRESS'
      emit()
      return stale
    }
    if (!lastError) {
      const why = snapshot.ready ? 'no upstream address available' : `upstream ${upstream.host} has not resolved yet${snapshot.lastError ? ` (${snapshot.lastError.code})` : ''}`
      record.status = 503
      record.error = 'NO_ADDRESS'
      emit()
      return errorReply(503, why, requestId, [['retry-after', '1']])
    }
    const { status, reason } = statusForUpstreamError(lastError.code)
    record.status = status
    record.error = lastError.code
    emit()
    return errorReply(status, reason, requestId)
  }

  /**
   * Retry after a failed exchange only when the request can be replayed without harm
   * (RFC 9110 §9.2.2): nothing of a streamed body was consumed, and the method is idempotent
   * or the request never reached the upstream.
   */
  private canRetry(req: OutgoingRequest, err: UpstreamError, reused: boolean): boolean {
    if (err.code !== 'RESET_BEFORE_RESPONSE' && !err.isAddressFailure) return false
    if (req.body instanceof ReadableStream) return false
    if (err.bodyConsumed) return false
    // A reused keep-alive connection closing before any response byte is the classic stale
    // connection race: the request was most likely never processed.
    return IDEMPOTENT.has(req.method) || reused
  }
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000
}

export type { AddressState }
