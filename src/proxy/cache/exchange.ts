/**
 * One request's passage through the cache phase: what lookup decided (a stored answer, or forward
 * with validators), and what becomes of the upstream's answer (stored, shared with collapsed
 * requests while it streams, merged from a 304, replaced by a stale response on an origin error).
 * The store, the in-flight table and the counters belong to cache.ts, reached through CacheInternals
 * (exchange-shapes.ts, with the other shapes the two share).
 */
import type { ProxyReply, ProxyRequest } from '../message.ts'
import { headerValue } from './directives.ts'
import { keyedAsSent, overridesTarget } from './key.ts'
import { currentAgeMs, evaluateReuse, freshnessLifetimeMs, isErrorStatus, responseDirectives, staleIfErrorAllows, whyNotStorable, type NotStorable, type RequestDirectives } from './policy.ts'
import { answerFromStore, discardBody, withCacheStatus, type CacheStatus, type StoredAnswer } from './reply.ts'
import { failsOriginPrecondition, hasValidators, invalidatedKeys, isConditional, fieldsAfterNotModified, namesValidator, notModifiedSelects, storableHeaders, validatorHeaders } from './revalidate.ts'
import { entryBytes, type CacheEntry } from './store.ts'
import { pinWhileRead } from './hit-body.ts'
import { BodyTee } from './tee.ts'
import { varyKeyFor, varyMatches, varyNames, varyNamesKept } from './vary.ts'
import type { CacheInternals, CacheResult, Fill, Flight, LookupContext } from './exchange-shapes.ts'

/** Bytes a reader of a response too large to store may fall behind before the upstream is paused. */
const SHARED_WINDOW_BYTES = 256 * 1024

/** Reasons about the response itself (not this one request) that make a key's answers uncacheable. */
const RESPONSE_REASONS = new Set<NotStorable>(['no-store', 'private', 'no-freshness', 'set-cookie', 'vary-star', 'unverified-end'])

/**
 * Those and 'cookie' (no lifetime given; the next request is as likely to carry a Cookie) stop
 * requests for the key waiting for each other a while; 'cookie' drops nothing a 304 refreshes.
 */
const UNSHARED_REASONS = new Set<NotStorable>([...RESPONSE_REASONS, 'cookie'])

const EMPTY = new Uint8Array(0)
/** The validators of a request that sends none (most: every hit), shared. */
const NO_VALIDATORS: readonly [string, string][] = Object.freeze([])
const encoder = new TextEncoder()

/** The per-request handle the request path holds between lookup and the upstream's answer. */
export class CacheExchange {
  /** A reply the cache makes: the request goes no further. */
  hit: ProxyReply | undefined
  /** Headers to add to the upstream request (the stored response's validators). */
  validators: readonly [string, string][] = NO_VALIDATORS
  result: CacheResult = 'miss'
  fwd: CacheStatus['fwd'] = 'uri-miss'
  /** The stored response this request would revalidate, or fall back on after an origin error. */
  candidate: CacheEntry | undefined
  flight: Flight | undefined
  private bypassed = false
  private counted = false
  /** A background refresh the cache sent itself (stale-while-revalidate): counted as 'refresh'. */
  background = false
  /** Forward without the stored response's validators (a retry after a 304 that matched none). */
  noValidators = false
  private readonly requestTimeMs: number

  constructor(
    private readonly cache: CacheInternals,
    readonly req: ProxyRequest,
    readonly ctx: LookupContext,
    readonly rd: RequestDirectives,
  ) {
    this.requestTimeMs = cache.now()
  }

  private count(outcome: CacheResult): void {
    const result = this.background ? 'refresh' : outcome
    this.result = result
    if (this.counted) return
    this.counted = true
    this.cache.count(result)
  }

  bypass(fwd: 'bypass' | 'method'): this {
    this.bypassed = true
    this.fwd = fwd
    return this
  }

  /** Answers from a stored response. */
  serve(entry: CacheEntry, ageMs: number, result: CacheResult, status: CacheStatus | string): this {
    this.cache.store.touch(entry)
    this.count(result)
    this.hit = this.pinned(answerFromStore(this.req, entry, entry.body.byteLength, ageMs, this.ctx.requestId, status), entry)
    return this
  }

  reply(reply: ProxyReply, result: CacheResult): this {
    this.count(result)
    this.hit = reply
    return this
  }

  /** unkeyed(), worked out once. */
  private unkeyedSeen: boolean | undefined

  /**
   * Whether the request carries what its key does not cover and an origin may act on: content, a
   * field that stands for another method or URL (key.ts overridesTarget), or a Host spelled otherwise
   * than the key has it (RequestState.hostSent). Asked on a miss only: a stored answer may still answer it.
   */
  private unkeyed(): boolean {
    const c = this.ctx
    const hostSent = c.state?.hostSent
    return (this.unkeyedSeen ??= c.hasContent === true || (hostSent !== undefined && !keyedAsSent(c.key, hostSent)) || overridesTarget(this.req.headers))
  }

  /** May this request wait for, and share, another request's upstream answer? */
  collapsible(uncollapsible: boolean): boolean {
    const r = this.req
    const h = r.headers
    return r.method === 'GET' && !uncollapsible && !this.unkeyed() && !this.rd.noCache && !this.rd.noStore && this.rd.maxAgeMs === undefined && h.get('authorization') === null && h.get('range') === null && !isConditional(h)
  }

  /** Can this request be answered from a response still arriving? Its Vary must match and it must be fresh enough.
   * Not a GET with Range: a 206 is cut only from a whole body (reply.ts), so it is forwarded as it came; nor one whose If-Match fails. */
  canShare(fill: Fill, nowMs: number): boolean {
    if (!fill.tee.joinable || fill.discarded || !varyMatches(fill.entry.vary, this.req.headers)) return false
    if ((this.req.method === 'GET' && this.req.headers.get('range') !== null) || failsOriginPrecondition(this.req.headers, fill.entry.status, fill.entry.headers)) return false
    const r = evaluateReuse(fill.entry, this.rd, nowMs).reuse
    return r === 'fresh' || r === 'stale-ok'
  }

  serveFill(fill: Fill, nowMs: number): this {
    const ageMs = evaluateReuse(fill.entry, this.rd, nowMs).ageMs
    const e = fill.entry
    const answer: StoredAnswer = { status: e.status, statusText: e.statusText, headers: e.headers, body: () => fill.tee.reader() }
    const bodyLength = this.ctx.streamKeepsLength === false ? undefined : fill.contentLength
    this.count('collapsed')
    this.hit = answerFromStore(this.req, answer, bodyLength, ageMs, this.ctx.requestId, { fwd: this.fwd, collapsed: true })
    return this
  }

  /** Goes upstream, with the candidate's validators unless the client sent its own conditions (§4.3.1). */
  forward(): this {
    // Not for a request whose answer may not be stored (unkeyed): a 304 to it would update the stored response.
    if (this.candidate && !this.noValidators && !isConditional(this.req.headers) && !this.unkeyed()) this.validators = validatorHeaders(this.candidate.headers)
    return this
  }

  /** This request leads the key's collapsed forwarding: it holds `flight` until settle() or abandon(). */
  holding(flight: Flight): this {
    this.flight = flight
    return this
  }

  private settle(fill?: Fill, failed = false): void {
    const f = this.flight
    this.flight = undefined
    if (f) this.cache.settle(f.key, f, fill, failed)
  }

  /** The request failed on a throw (a bug) before its answer was decided: its flight, if any, is released (waiters look again). */
  abandon(): void {
    this.settle()
  }

  /** The upstream answered (`endUnverified`: its body ends where a TLS connection closes, policy.ts): returns what to send to the client. A throw releases the flight and cancels the body first. */
  onReply(reply: ProxyReply, endUnverified = false): ProxyReply | Promise<ProxyReply> {
    try {
      return this.decide(reply, endUnverified)
    } catch (err) {
      this.settle()
      discardBody(reply.body)
      throw err
    }
  }

  private decide(reply: ProxyReply, endUnverified: boolean): ProxyReply | Promise<ProxyReply> {
    const c = this.cache
    const req = this.req
    const nowMs = c.now()
    const wallMs = c.wallNow()
    if (this.bypassed) {
      // §4.4: an unsafe method that succeeded invalidates what it may have changed.
      for (const k of invalidatedKeys(req.method, reply.status, this.ctx.key, reply.headers)) c.invalidate(k)
      this.count('bypass')
      return { ...reply, headers: withCacheStatus(reply.headers, { fwd: this.fwd }) }
    }
    const headers = reply.headers
    const candidate = this.candidate
    // A 304 to our validators: the stored response is still good; update it and serve it (§4.3.3, §4.3.4).
    if (reply.status === 304 && candidate && this.validators.length > 0 && notModifiedSelects(candidate.headers, headers)) {
      const updated = this.refreshed(candidate, headers, nowMs, wallMs)
      // Still stale (max-age=0, no-cache): every request must go to the origin anyway.
      if (updated.lifetimeMs <= currentAgeMs(updated.headers, updated, nowMs) || updated.rd.cc.has('no-cache')) c.markUncollapsible(this.ctx.key)
      this.settle()
      this.count('revalidated')
      const v = evaluateReuse(updated, this.rd, nowMs)
      const answer = this.pinned(answerFromStore(req, updated, updated.body.byteLength, v.ageMs, this.ctx.requestId, { fwd: this.fwd, fwdStatus: 304, ttlS: Math.floor(v.ttlMs / 1000) }), updated)
      // The 304's Set-Cookie is not stored (revalidate.ts), but it is this client's: its answer is
      // the response as the 304 updated it, whose Set-Cookie lines are the 304's alone (§4.3.4).
      const cookies = headers.filter(isSetCookie)
      if (cookies.length > 0) answer.headers = [...answer.headers.filter((p) => !isSetCookie(p)), ...(cookies as [string, string][])]
      return answer
    }
    // A 304 to the client's own validators goes to the client as it is, and it freshens the stored
    // response it names by a validator (§4.3.4: a cache updates what a 304 selects, whoever asked).
    if (reply.status === 304 && candidate && this.validators.length === 0 && !this.unkeyed() && namesValidator(headers) && notModifiedSelects(candidate.headers, headers)) {
      this.refreshed(candidate, headers, nowMs, wallMs)
    }
    // A 304 for a validator the cache did not send (§4.3.4: it updates nothing) cannot answer a
    // client that asked unconditionally: ask again, without validators.
    if (reply.status === 304 && candidate && this.validators.length > 0) {
      const again = c.refetch(req, this.ctx.client)
      if (again) {
        this.settle()
        this.count('miss')
        return again
      }
    }
    // The origin failed, and a stale response may stand in (RFC 5861 §4).
    if (isErrorStatus(reply.status) && candidate && staleIfErrorAllows(candidate, this.rd, nowMs, c.staleIfErrorMs)) {
      discardBody(reply.body)
      this.settle(undefined, true)
      return this.serveStale(nowMs, { fwd: this.fwd, fwdStatus: reply.status, detail: 'stale-if-error' })
    }
    const rd = responseDirectives(headers)
    const lifetimeMs = freshnessLifetimeMs(reply.status, headers, rd, wallMs)
    // The age it came with (an upstream cache's Age, clock skew): a response already stale on
    // arrival is fresh for no time (whyNotStorable's Set-Cookie rule reads how long it is fresh).
    const arrivalAgeMs = currentAgeMs(headers, { requestTimeMs: this.requestTimeMs, responseTimeMs: nowMs, responseWallMs: wallMs }, nowMs)
    const why = this.unkeyed() ? 'request-content' : endUnverified ? 'unverified-end' : whyNotStorable(req.method, req.headers, this.rd, reply.status, headers, rd, lifetimeMs - arrivalAgeMs)
    const lengthValue = headerValue(headers, 'content-length')
    const contentLength = lengthValue !== null && /^\d+$/.test(lengthValue) ? Number(lengthValue) : undefined
    // Stored only if it can ever be of use: fresh for a while (its lifetime past the age it came with), or revalidatable, or allowed stale.
    const useful = lifetimeMs > arrivalAgeMs || hasValidators(headers) || rd.cc.has('stale-if-error') || rd.cc.has('stale-while-revalidate') || c.staleIfErrorMs > 0
    this.count('miss')
    const tooBig = contentLength !== undefined && contentLength > c.maxObjectBytes
    if (why !== undefined || !useful || tooBig) {
      // Requests for this key cannot share its answers: for a while, they stop waiting for each
      // other. Not after a server error: that is the origin failing now, not what the resource is,
      // and the waiters hand the lead on (cache.ts) rather than all going upstream at once.
      const failed = reply.status >= 500
      if (!failed && ((why !== undefined && UNSHARED_REASONS.has(why)) || (why === undefined && !useful) || tooBig)) c.markUncollapsible(this.ctx.key)
      this.settle(undefined, isErrorStatus(reply.status))
      return { ...reply, headers: withCacheStatus(headers, { fwd: this.fwd }) }
    }
    const names = varyNames(headers) as string[] // '*' was refused above
    const stored = storableHeaders(headers)
    // A response without Date gets the time it was received before it is cached (RFC 9110 §6.6.1).
    if (headerValue(headers, 'date') === null) stored.push(['date', new Date(wallMs).toUTCString()])
    const entry: CacheEntry = {
      key: this.ctx.key,
      vary: varyKeyFor(names, req.headers),
      status: reply.status,
      statusText: reply.statusText,
      headers: stored,
      body: EMPTY,
      requestTimeMs: this.requestTimeMs,
      responseTimeMs: nowMs,
      responseWallMs: wallMs,
      rd,
      lifetimeMs,
      bytes: 0,
      refreshing: false,
    }
    // Stale on arrival (max-age=0, no-cache): every request must go to the origin anyway.
    if (lifetimeMs <= arrivalAgeMs || rd.cc.has('no-cache')) c.markUncollapsible(this.ctx.key)
    const body = reply.body
    if (!(body instanceof ReadableStream)) {
      // The whole body arrived with the head; it may be a view of a socket buffer, so it is copied.
      const bytes = body === null ? EMPTY : typeof body === 'string' ? encoder.encode(body) : body.slice()
      const stored = bytes.byteLength <= c.maxObjectBytes
      if (stored) c.commit(entry, bytes)
      else c.markUncollapsible(this.ctx.key)
      this.settle()
      return { ...reply, headers: withCacheStatus(headers, { fwd: this.fwd, stored }) }
    }
    // A streamed body says 'stored' only when its length is known to fit, in max_object_size and
    // in what the bodies being kept may hold now (RFC 9211 §2.5: the cache stored it); one of
    // unknown length may yet pass max_object_size, so it says nothing.
    const budget = c.fillBudget
    const out = withCacheStatus(headers, { fwd: this.fwd, stored: contentLength !== undefined && budget.keptBytes + contentLength <= budget.maxKeptBytes })
    const fill: Fill = { entry, tee: undefined as never, contentLength, discarded: false }
    const flightKey = this.flight?.key ?? this.ctx.key
    fill.tee = new BodyTee(body, {
      maxStoreBytes: c.maxObjectBytes,
      budget: c.fillBudget,
      windowBytes: SHARED_WINDOW_BYTES,
      onStored: (bytes) => {
        if (!fill.discarded) c.commit(entry, bytes)
        c.endFill(flightKey, fill)
      },
      onAbandoned: () => c.endFill(flightKey, fill),
    })
    c.fillStarted(fill)
    const own = fill.tee.reader()
    this.settle(fill)
    return { ...reply, headers: out, body: own }
  }

  /**
   * The request failed before an answer: a stale response within stale-if-error, or undefined. Only
   * an upstream failure is an error it stands in for (RFC 5861 §4), here and for the waiters; when
   * the client left, nothing is served (logged 499) and a waiter leads next.
   */
  onError(upstreamFailed = true): ProxyReply | undefined {
    this.settle(undefined, upstreamFailed)
    const candidate = this.candidate
    if (upstreamFailed && !this.bypassed && candidate && staleIfErrorAllows(candidate, this.rd, this.cache.now(), this.cache.staleIfErrorMs)) {
      return this.serveStale(this.cache.now(), { fwd: this.fwd, detail: 'stale-if-error' })
    }
    this.count(this.bypassed ? 'bypass' : 'miss')
    return undefined
  }

  private serveStale(nowMs: number, status: CacheStatus): ProxyReply {
    const entry = this.candidate!
    const v = evaluateReuse(entry, this.rd, nowMs)
    this.count('stale')
    return this.pinned(answerFromStore(this.req, entry, entry.body.byteLength, v.ageMs, this.ctx.requestId, { ...status, ttlS: Math.floor(v.ttlMs / 1000) }), entry)
  }

  /** A hit's body the listener streams, pinned in the store while read (hit-body.ts). */
  private pinned(reply: ProxyReply, entry: CacheEntry): ProxyReply {
    return pinWhileRead(reply, this.cache.store, entry, this.ctx.streamKeepsLength)
  }

  /** The candidate updated from a 304 (§3.2, §4.3.4), replacing it in the store, or dropped when it no longer may be stored. */
  private refreshed(candidate: CacheEntry, notModified: ProxyReply['headers'], nowMs: number, wallMs: number): CacheEntry {
    const merged = fieldsAfterNotModified(candidate.headers, notModified, wallMs)
    const rd = responseDirectives(merged)
    const updated: CacheEntry = {
      ...candidate,
      headers: merged,
      rd,
      requestTimeMs: this.requestTimeMs,
      responseTimeMs: nowMs,
      responseWallMs: wallMs,
      lifetimeMs: freshnessLifetimeMs(candidate.status, merged, rd, wallMs),
      refreshing: false,
    }
    updated.bytes = entryBytes(updated.key, merged, updated.body, updated.vary)
    const store = this.cache.store
    const why = whyNotStorable('GET', this.req.headers, this.rd, candidate.status, merged, rd, updated.lifetimeMs - currentAgeMs(merged, updated, nowMs))
    // A 304 whose Vary names other fields: it answers this request, but the stored response is
    // dropped; the values of the newly named fields in the request it was stored for are not known (§4.1).
    if ((why !== undefined && RESPONSE_REASONS.has(why)) || !varyNamesKept(candidate.vary, merged)) store.remove(candidate)
    else store.replace(candidate, updated)
    return updated
  }
}

function isSetCookie([name]: readonly [string, string]): boolean {
  return name.length === 10 && name.toLowerCase() === 'set-cookie'
}
