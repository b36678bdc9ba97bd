/**
 * RFC 9111 for a shared cache, as pure functions on headers and millisecond times: which
 * responses may be stored (§3, §3.5), their freshness lifetime (§4.2.1, §4.2.2), their current
 * age (§4.2.3), and whether a stored response may answer a request (§4.2.4, §5.2.1, §5.2.2,
 * RFC 5861, RFC 9213). No I/O and no clock of its own: callers pass `nowMs`. Vary is in vary.ts,
 * conditional requests and 304 merging in revalidate.ts.
 */
import type { HeaderReader } from '../message.ts'
import { parseHttpDate } from '../../lib/http-date.ts'
import { deltaSeconds, headerValue, parseDirectives, parseTargetedDirectives, type Directives } from './directives.ts'
import { varyNames } from './vary.ts'

export type Headers_ = readonly (readonly [string, string])[]

/** Status codes cacheable by default, so heuristic freshness applies (RFC 9110 §15.1). 206 is left out: partial content is not stored. */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/**
 * Statuses about the request or its client, not the resource, never stored whatever freshness they
 * carry: one client's malformed, oversized or too frequent request would otherwise answer
 * everyone's for the URI (cache-poisoned denial of service). RFC 9110 §15.5: Bad Request, Request
 * Timeout, Length Required, Precondition Failed (the request's If-Match or If-Unmodified-Since,
 * which RFC 9111 §4.3.2 leaves to the origin), Content Too Large, Range Not Satisfiable (the
 * request's Range), Expectation Failed; RFC 6585: Precondition Required (§3, SHOULD NOT be
 * stored), Too Many Requests (§4, MUST NOT), Request Header Fields Too Large (§5), Network
 * Authentication Required (§6, MUST NOT).
 */
const REQUEST_ERROR_STATUSES = new Set([400, 408, 411, 412, 413, 416, 417, 428, 429, 431, 511])

/** Final status codes whose semantics this cache understands (for must-understand, §5.2.2.3). */
const UNDERSTOOD_STATUSES = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501])

/** Heuristic freshness is 10% of the time since Last-Modified (§4.2.2), capped at one day. */
const HEURISTIC_FRACTION = 0.1
const HEURISTIC_MAX_MS = 24 * 3600 * 1000

/** The directives that govern this cache for a response. */
export interface ResponseDirectives {
  cc: Directives
  /** True when CDN-Cache-Control applied (RFC 9213 §2.2): Cache-Control and Expires are then ignored. */
  targeted: boolean
}

export function responseDirectives(headers: Headers_): ResponseDirectives {
  // RFC 9213 §2.2: a cache that honours a targeted field uses it when it is valid and not
  // empty, and then ignores Cache-Control and Expires for its own policy.
  const cdn = parseTargetedDirectives(headerValue(headers, 'cdn-cache-control'))
  if (cdn !== undefined && cdn.size > 0) return { cc: cdn, targeted: true }
  return { cc: parseDirectives(headerValue(headers, 'cache-control')), targeted: false }
}

/**
 * Why a response is not stored, or undefined when it may be (RFC 9111 §3). 'unverified-end': a
 * body delimited by the close of a TLS connection, whose end may be an attacker's bare FIN rather
 * than the origin's close_notify (RFC 9112 §8: an incomplete close leaves it incomplete, and
 * RFC 9111 §3.3 forbids storing an incomplete response). Bun's TLS socket reports both alike.
 */
export type NotStorable = 'method' | 'request-content' | 'status' | 'no-store' | 'request-no-store' | 'private' | 'authorization' | 'no-freshness' | 'set-cookie' | 'cookie' | 'vary-star' | 'unverified-end'

/** `freshForMs`: how long from now the response is fresh, its freshness lifetime less the age it came with (0 or less: stale already). */
export function whyNotStorable(method: string, req: HeaderReader, reqDirectives: RequestDirectives, status: number, headers: Headers_, rd: ResponseDirectives, freshForMs: number): NotStorable | undefined {
  const cc = rd.cc
  // Only GET responses are stored; HEAD is answered from them (§4.3.5 is not used).
  if (method !== 'GET') return 'method'
  // A final status; 206 and 304 are never stored as such (§3, §3.3 is not implemented). One past
  // 599 is no status (RFC 9110 §15: invalid, to be read as a 5xx; libraries use 600-999 for their own errors).
  if (status < 200 || status > 599 || status === 206 || status === 304 || REQUEST_ERROR_STATUSES.has(status)) return 'status'
  if (cc.has('must-understand')) {
    // §5.2.2.3: store only status codes the cache understands; then no-store is overridden.
    if (!UNDERSTOOD_STATUSES.has(status)) return 'status'
  } else if (cc.has('no-store')) return 'no-store'
  if (reqDirectives.noStore) return 'request-no-store'
  // A shared cache never stores a private response, qualified or not (§5.2.2.7 lets it store a
  // qualified one without the named fields; not storing is the safer choice that is allowed).
  if (cc.has('private')) return 'private'
  // §3.5: a response to a request with Authorization only with one of these directives.
  if (req.get('authorization') !== null && !cc.has('public') && !cc.has('s-maxage') && !cc.has('must-revalidate')) return 'authorization'
  if (varyNames(headers) === '*') return 'vary-star' // it can never match a later request (§4.1)
  const explicit = cc.has('public') || cc.has('max-age') || cc.has('s-maxage') || (!rd.targeted && headerValue(headers, 'expires') !== null)
  if (!explicit && !HEURISTIC_STATUSES.has(status)) return 'no-freshness'
  // A Set-Cookie is one client's. Stored on a heuristic, or only to be revalidated, one client's
  // cookie would go to others (served fresh, or after any 304 that does not replace it): a
  // dynamic page with a session cookie and a Last-Modified or an ETag, or one that says
  // "max-age=0" or "no-cache" (with or without field names: no-cache="set-cookie" names exactly
  // this field). Not storing is always allowed (§3); nginx and Varnish store no response with
  // Set-Cookie at all. Explicit freshness of some length (an origin that made the response
  // cacheable to share) still stores it.
  if ((!explicit || freshForMs <= 0 || cc.has('no-cache')) && headerValue(headers, 'set-cookie') !== null) return 'set-cookie'
  // A request with a Cookie may be answered with a page made for that client and nothing that
  // says so (web cache deception: /account/settings.css answered with the account page, a
  // Last-Modified and no Cache-Control, was everyone's for a day). Stored only as the Set-Cookie
  // rule above allows: fresh for some time by the origin's explicit say; a heuristic, a
  // validator, or max-age=0 / no-cache (kept to revalidate, and then served stale-if-error to
  // anyone) do not (until the eighteenth round of outside reviews they did). nginx uses no
  // heuristic at all; Varnish stores nothing for a Cookie.
  if ((!explicit || freshForMs <= 0 || cc.has('no-cache')) && req.get('cookie') !== null) return 'cookie'
  return undefined
}

/**
 * Freshness lifetime in ms (§4.2.1): s-maxage, then max-age, then Expires - Date, then a
 * heuristic where allowed (§4.2.2). An invalid or conflicting s-maxage/max-age, or an invalid
 * Expires (such as "0"), makes the response stale (0).
 */
export function freshnessLifetimeMs(status: number, headers: Headers_, rd: ResponseDirectives, responseWallMs: number): number {
  const cc = rd.cc
  if (cc.has('s-maxage')) return (deltaSeconds(cc.get('s-maxage')) ?? 0) * 1000
  if (cc.has('max-age')) return (deltaSeconds(cc.get('max-age')) ?? 0) * 1000
  const dateMs = parseHttpDate(headerValue(headers, 'date')) ?? responseWallMs
  if (!rd.targeted) {
    const expires = headerValue(headers, 'expires')
    if (expires !== null) {
      const expiresMs = parseHttpDate(expires)
      return expiresMs === undefined ? 0 : Math.max(0, expiresMs - dateMs)
    }
  }
  if (!HEURISTIC_STATUSES.has(status) && !cc.has('public')) return 0
  const lastModifiedMs = parseHttpDate(headerValue(headers, 'last-modified'))
  if (lastModifiedMs === undefined || lastModifiedMs >= dateMs) return 0
  return Math.min(HEURISTIC_MAX_MS, Math.floor((dateMs - lastModifiedMs) * HEURISTIC_FRACTION))
}

/** Whether the freshness lifetime came from a heuristic (no explicit expiration time). */
export function isHeuristic(headers: Headers_, rd: ResponseDirectives): boolean {
  return !rd.cc.has('s-maxage') && !rd.cc.has('max-age') && (rd.targeted || headerValue(headers, 'expires') === null)
}

/**
 * When a stored response was requested and received: marks of the cache's monotonic clock, for
 * response_delay and resident_time (lengths of time, which a step of the wall clock must not
 * stretch or shrink), and the wall-clock time it was received, for apparent_age against its Date.
 */
export interface ExchangeTimes {
  requestTimeMs: number
  responseTimeMs: number
  responseWallMs: number
}

/**
 * current_age (§4.2.3), in ms. Date has one-second resolution (RFC 9110 §5.6.7), so the
 * response was generated up to 999 ms after its Date value: the apparent age counts from the
 * end of that second, or an entry stored within the same second would look up to 1 s old.
 */
export function currentAgeMs(headers: Headers_, times: ExchangeTimes, nowMs: number): number {
  let initial = initialAges.get(times)
  if (initial === undefined || initial.headers !== headers) {
    initial = { headers, ms: correctedInitialAgeMs(headers, times) }
    initialAges.set(times, initial)
  }
  const residentTimeMs = Math.max(0, nowMs - times.responseTimeMs)
  return initial.ms + residentTimeMs
}

/**
 * corrected_initial_age depends only on what was stored (its Age and Date fields, its request
 * and response times): worked out once per stored response (keyed by its times, with the field
 * list it was read from), not on every hit.
 */
const initialAges = new WeakMap<ExchangeTimes, { headers: Headers_; ms: number }>()

function correctedInitialAgeMs(headers: Headers_, times: ExchangeTimes): number {
  // The first value of the first Age line counts; an invalid one is ignored (§5.1).
  const age = headerValue(headers, 'age')
  const ageValueMs = (deltaSeconds(age === null ? undefined : age.split(',')[0]!.trim()) ?? 0) * 1000
  const dateMs = parseHttpDate(headerValue(headers, 'date'))
  const apparentAgeMs = dateMs === undefined ? 0 : Math.max(0, times.responseWallMs - (dateMs + 999))
  const responseDelayMs = Math.max(0, times.responseTimeMs - times.requestTimeMs)
  const correctedAgeValueMs = ageValueMs + responseDelayMs
  return Math.max(apparentAgeMs, correctedAgeValueMs)
}

/** The request's cache directives (§5.2.1), with Pragma: no-cache where Cache-Control is absent (§5.4). */
export interface RequestDirectives {
  noCache: boolean
  noStore: boolean
  onlyIfCached: boolean
  maxAgeMs: number | undefined
  /** Infinity for max-stale without an argument. */
  maxStaleMs: number | undefined
  minFreshMs: number | undefined
  staleIfErrorMs: number | undefined
}

export function requestDirectives(req: HeaderReader): RequestDirectives {
  const raw = req.get('cache-control')
  const pragma = raw === null ? req.get('pragma') : null
  // Most requests carry neither field: one shared answer, never changed.
  if (raw === null && pragma === null) return NO_REQUEST_DIRECTIVES
  const cc = parseDirectives(raw)
  const pragmaNoCache = raw === null && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma ?? '')
  // An invalid request max-age is taken as 0 (revalidate): the client asked for something fresh.
  const maxAgeMs = cc.has('max-age') ? (secondsMs(cc, 'max-age') ?? 0) : undefined
  const maxStaleMs = cc.has('max-stale') ? (cc.get('max-stale') === true ? Infinity : secondsMs(cc, 'max-stale')) : undefined
  return {
    noCache: cc.has('no-cache') || pragmaNoCache,
    noStore: cc.has('no-store'),
    onlyIfCached: cc.has('only-if-cached'),
    maxAgeMs,
    maxStaleMs,
    minFreshMs: secondsMs(cc, 'min-fresh'),
    staleIfErrorMs: secondsMs(cc, 'stale-if-error'),
  }
}

/** A directive's delta-seconds in ms; undefined when absent or invalid. */
function secondsMs(cc: Directives, name: string): number | undefined {
  if (!cc.has(name)) return undefined
  const s = deltaSeconds(cc.get(name))
  return s === undefined ? undefined : s * 1000
}

/** The directives of a request without Cache-Control or Pragma. */
const NO_REQUEST_DIRECTIVES: RequestDirectives = Object.freeze({ noCache: false, noStore: false, onlyIfCached: false, maxAgeMs: undefined, maxStaleMs: undefined, minFreshMs: undefined, staleIfErrorMs: undefined })

/** A stored response as policy sees it. */
export interface StoredView extends ExchangeTimes {
  status: number
  headers: Headers_
  rd: ResponseDirectives
  lifetimeMs: number
}

export type Reuse =
  /** Fresh, and acceptable to the request: answer from the cache. */
  | 'fresh'
  /** Stale, but the request accepts it (max-stale). */
  | 'stale-ok'
  /** Stale within stale-while-revalidate: answer now, refresh in the background (RFC 5861 §3). */
  | 'stale-while-revalidate'
  /** Must be validated with the origin before use: the request asks for it (no-cache, max-age, min-fresh). */
  | 'revalidate-request'
  /** Must be validated with the origin before use: it is stale, or no-cache says so. */
  | 'revalidate'

export interface ReuseVerdict {
  reuse: Reuse
  ageMs: number
  /** Freshness left; negative when stale. */
  ttlMs: number
}

/** May a stored response answer this request, and how (§4, §4.2.4, §5.2)? */
export function evaluateReuse(entry: StoredView, req: RequestDirectives, nowMs: number): ReuseVerdict {
  const ageMs = currentAgeMs(entry.headers, entry, nowMs)
  const ttlMs = entry.lifetimeMs - ageMs
  return { reuse: reuseOf(entry, req, ageMs, ttlMs), ageMs, ttlMs }
}

/** evaluateReuse's answer (no closure made per request). */
function reuseOf(entry: StoredView, req: RequestDirectives, ageMs: number, ttlMs: number): Reuse {
  const cc = entry.rd.cc
  // no-cache (qualified or not; a qualified one is treated as whole, which is allowed) (§5.2.2.4).
  if (cc.has('no-cache')) return 'revalidate'
  if (req.noCache) return 'revalidate-request'
  if (req.maxAgeMs !== undefined && ageMs > req.maxAgeMs) return 'revalidate-request'
  if (ttlMs > 0) {
    if (req.minFreshMs !== undefined && ttlMs < req.minFreshMs) return 'revalidate-request'
    return 'fresh'
  }
  // Stale (§4.2.4): served only where a directive allows it and nothing forbids it.
  if (forbidsStale(entry.rd)) return 'revalidate'
  const staleByMs = -ttlMs
  if (req.maxStaleMs !== undefined && staleByMs <= req.maxStaleMs) return 'stale-ok'
  const swrS = deltaSeconds(cc.get('stale-while-revalidate'))
  if (swrS !== undefined && staleByMs <= swrS * 1000 && req.minFreshMs === undefined && req.maxAgeMs === undefined) return 'stale-while-revalidate'
  return 'revalidate'
}

/** must-revalidate, proxy-revalidate and s-maxage (which implies proxy-revalidate, §5.2.2.10) forbid serving stale. */
export function forbidsStale(rd: ResponseDirectives): boolean {
  return rd.cc.has('must-revalidate') || rd.cc.has('proxy-revalidate') || rd.cc.has('s-maxage') || rd.cc.has('no-cache')
}

/**
 * May a stored response be served because the origin failed (RFC 5861 §4)? Within the
 * response's stale-if-error (or the configured default when it has none), or the request's,
 * and never when a directive forbids stale responses (RFC 9111 §4.2.4).
 */
export function staleIfErrorAllows(entry: StoredView, req: RequestDirectives, nowMs: number, defaultMs: number): boolean {
  if (forbidsStale(entry.rd)) return false
  const responseS = deltaSeconds(entry.rd.cc.get('stale-if-error'))
  const windowMs = Math.max(responseS !== undefined ? responseS * 1000 : defaultMs, req.staleIfErrorMs ?? 0)
  if (windowMs <= 0) return false
  const staleByMs = currentAgeMs(entry.headers, entry, nowMs) - entry.lifetimeMs
  return staleByMs <= windowMs
}

/** Statuses that count as the origin failing, for stale-if-error (RFC 5861 §4). */
export function isErrorStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504
}
