/**
 * Validation (RFC 9111 §4.3): the conditional headers a cache adds to refresh a stored response
 * (§4.3.1), how a 304 updates it (§3.2, §4.3.4), evaluating a client's own conditional request
 * against a stored response (§4.3.2), and which stored responses an unsafe request invalidates
 * (§4.4). Pure.
 */
import type { HeaderReader } from '../message.ts'
import { parseHttpDate } from '../../lib/http-date.ts'
import { headerValue } from './directives.ts'
import type { Headers_ } from './policy.ts'
import { forwardedHostOf, urlKeyOf } from './key.ts'

/** Hop-by-hop fields (RFC 9110 §7.6.1): never stored (§3.1) nor merged from a 304. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization'])

/**
 * Never stored either: proxy authentication fields (§3.1), and the request id the proxy sets
 * per answer.
 */
const PER_ANSWER = new Set(['proxy-authentication-info', 'x-request-id'])

/** The fields of a response to store: hop-by-hop ones (and those Connection lists) removed (§3.1). */
export function storableHeaders(headers: Headers_): [string, string][] {
  const listed = new Set<string>()
  for (const [n, v] of headers) if (n.toLowerCase() === 'connection') for (const t of v.split(',')) listed.add(t.trim().toLowerCase())
  const out: [string, string][] = []
  for (const [n, v] of headers) {
    const lower = n.toLowerCase()
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || PER_ANSWER.has(lower) || lower === 'content-length') continue
    out.push([n, v])
  }
  return out
}

/** Conditional headers that validate a stored response (§4.3.1): its entity tag and its Last-Modified. */
export function validatorHeaders(stored: Headers_): [string, string][] {
  const out: [string, string][] = []
  const etag = headerValue(stored, 'etag')
  if (etag !== null) out.push(['if-none-match', etag])
  const lastModified = headerValue(stored, 'last-modified')
  if (lastModified !== null) out.push(['if-modified-since', lastModified])
  return out
}

export function hasValidators(stored: Headers_): boolean {
  return headerValue(stored, 'etag') !== null || headerValue(stored, 'last-modified') !== null
}

export const CONDITIONAL_FIELDS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range']

export function isConditional(req: HeaderReader): boolean {
  return CONDITIONAL_FIELDS.some((n) => req.get(n) !== null)
}

/**
 * Fields a 304 does not change in the stored response (§3.2): Content-Length, and Content-Range
 * (partial responses are not stored). The body is stored as received, so Content-Type and
 * Content-Encoding are updated like any other field. Nor Set-Cookie: a 304's is for the client
 * whose request (and cookies) it answered, and merged into the stored response it would go to
 * everyone that response answers.
 */
const NOT_UPDATED = new Set(['content-length', 'content-range', 'set-cookie'])

/**
 * The stored response's fields updated from a 304 (§3.2, §4.3.4): each field in the 304
 * replaces the stored lines of that name; the rest are kept.
 */
export function mergeNotModified(stored: Headers_, notModified: Headers_): [string, string][] {
  const incoming = storableHeaders(notModified).filter(([n]) => !NOT_UPDATED.has(n.toLowerCase()))
  const replaced = new Set(incoming.map(([n]) => n.toLowerCase()))
  const out: [string, string][] = stored.filter(([n]) => !replaced.has(n.toLowerCase())) as [string, string][]
  out.push(...incoming)
  return out
}

/**
 * The fields a stored response has once a 304 received at `wallMs` (the wall clock) updated it:
 * merged as above; without a Date in the 304, the time it was received (RFC 9110 §6.6.1), as a
 * stored response gets: the stored Date described the first receipt, and the age would count
 * from it; and without an Age in the 304, none: the times start again from this 304.
 */
export function fieldsAfterNotModified(stored: Headers_, notModified: Headers_, wallMs: number): [string, string][] {
  let merged = mergeNotModified(stored, notModified)
  if (headerValue(notModified, 'date') === null) merged = [...merged.filter(([n]) => n.toLowerCase() !== 'date'), ['date', new Date(wallMs).toUTCString()]]
  if (headerValue(notModified, 'age') === null) merged = merged.filter(([n]) => n.toLowerCase() !== 'age')
  return merged
}

/** Whether a 304 carries a validator (ETag or Last-Modified) to select a stored response by. */
export function namesValidator(headers: Headers_): boolean {
  return headerValue(headers, 'etag') !== null || headerValue(headers, 'last-modified') !== null
}

/**
 * Does a 304 describe this stored response (§4.3.4)? A strong entity tag in the 304 selects only
 * a stored response with the same strong tag (strong comparison, RFC 9110 §8.8.3.2: a stored
 * W/"a" is not "a"); a weak one, a stored response whose tag it matches weakly; without a tag,
 * the stored Last-Modified (if any) must be the same.
 */
export function notModifiedSelects(stored: Headers_, notModified: Headers_): boolean {
  const etag = headerValue(notModified, 'etag')?.trim()
  if (etag !== undefined && !etag.startsWith('W/')) return headerValue(stored, 'etag')?.trim() === etag
  if (etag !== undefined) return opaqueTag(etag) === opaqueTag(headerValue(stored, 'etag'))
  const lm = headerValue(notModified, 'last-modified')
  if (lm !== null) return parseHttpDate(lm) === parseHttpDate(headerValue(stored, 'last-modified'))
  return true
}

function opaqueTag(tag: string | null): string | null {
  if (tag === null) return null
  const t = tag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}

/**
 * The members of an If-None-Match or If-Match value (RFC 9110 §13.1.2, §13.1.1: "*", or a list of
 * entity-tags): "*" when that is the whole value, else each entity-tag's opaque tag, quotes kept (a
 * comma inside the quotes is the tag's: etagc, §8.8.3), with its "W/" when `keepWeak`. A member
 * that is no entity-tag ("*x", "a", `"a"junk`, an unclosed quote) is skipped.
 */
function entityTags(value: string, keepWeak = false): string[] {
  const list = value.replace(/^[ \t]+|[ \t]+$/g, '')
  if (list === '*') return ['*']
  const tags: string[] = []
  let i = 0
  while (i < list.length) {
    const c = list[i]
    if (c === ',' || c === ' ' || c === '\t') {
      i++
      continue
    }
    const open = list.startsWith('W/', i) ? i + 2 : i
    const close = list[open] === '"' ? list.indexOf('"', open + 1) : -1
    let next = close > 0 ? close + 1 : i
    while (list[next] === ' ' || list[next] === '\t') next++
    // Whole only when the member ends there: at a comma or at the end.
    if (close > 0 && (next === list.length || list[next] === ',')) tags.push(list.slice(keepWeak ? i : open, close + 1))
    const comma = list.indexOf(',', close > 0 ? close + 1 : i)
    i = comma < 0 ? list.length : comma + 1
  }
  return tags
}

/**
 * A client's conditional GET/HEAD evaluated against a stored response (§4.3.2, RFC 9110 §13.2.2):
 * true when the answer is 304. If-None-Match uses the weak comparison and, when present, If-Modified-Since is ignored.
 */
export function clientNotModified(req: HeaderReader, stored: Headers_): boolean {
  const inm = req.get('if-none-match')
  if (inm !== null) {
    const etag = opaqueTag(headerValue(stored, 'etag'))
    if (etag === null) return false
    return entityTags(inm).some((t) => t === '*' || t === etag)
  }
  const ims = parseHttpDate(req.get('if-modified-since'))
  if (ims === undefined) return false
  const lm = parseHttpDate(headerValue(stored, 'last-modified')) ?? parseHttpDate(headerValue(stored, 'date'))
  return lm !== undefined && lm <= ims
}

/**
 * Whether a client's If-Match or If-Unmodified-Since says a stored response is not the
 * representation it means (RFC 9110 §13.1.1: the strong comparison, "*" any; §13.1.4: modified
 * after the date; If-Unmodified-Since only without If-Match, §13.2.2). The cache then does not
 * answer: the request goes to the origin as it came, which evaluates them (RFC 9111 §4.3.2 leaves
 * these preconditions to it; a resumed download with `If-Match` and `Range` must not be given
 * another representation's bytes). Not for a stored status other than 2xx, whose preconditions
 * are ignored (RFC 9110 §13.2.1); an unreadable date, or no Last-Modified, is no condition.
 */
export function failsOriginPrecondition(req: HeaderReader, status: number, stored: Headers_): boolean {
  if (status < 200 || status > 299) return false
  const ifMatch = req.get('if-match')
  if (ifMatch !== null) {
    const tags = entityTags(ifMatch, true)
    if (tags[0] === '*') return false
    const etag = headerValue(stored, 'etag')?.trim()
    return etag === undefined || etag.startsWith('W/') || !tags.includes(etag)
  }
  const since = req.get('if-unmodified-since')
  if (since === null) return false
  const sinceMs = parseHttpDate(since)
  const modifiedMs = parseHttpDate(headerValue(stored, 'last-modified'))
  return sinceMs !== undefined && modifiedMs !== undefined && modifiedMs > sinceMs
}

/** Fields a 304 carries from the stored 200 (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'cdn-cache-control'])

export function notModifiedHeaders(stored: Headers_): [string, string][] {
  return stored.filter(([n]) => NOT_MODIFIED_FIELDS.has(n.toLowerCase())) as [string, string][]
}

/** Methods that are safe (RFC 9110 §9.2.1): they invalidate nothing. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * The URIs an unsafe request's answer invalidates (§4.4), as keys of the URL alone (without the
 * request key's forwarded-host suffix; the cache drops every key and variant of each): for a
 * non-error status, its target URI, and the URIs in Location and Content-Location when they have
 * the same origin. Behind a trusted balancer that forwarded another host, the origin saw that
 * host as its own and built absolute URLs from it: that origin is the target's too.
 */
export function invalidatedKeys(method: string, status: number, requestKey: string, headers: Headers_): string[] {
  if (SAFE.has(method) || status < 200 || status >= 400) return []
  const key = urlKeyOf(requestKey)
  const forwardedHost = forwardedHostOf(requestKey)
  const out = [key]
  for (const name of ['location', 'content-location']) {
    const v = headerValue(headers, name)
    if (v === null) continue
    const other = resolveSameOrigin(key, v.trim(), forwardedHost)
    if (other !== undefined && !out.includes(other)) out.push(other)
  }
  return out
}

/**
 * `ref` resolved against the absolute key, in the key's origin; undefined when it points to
 * another origin than the key's (or than `alsoHost`'s, over the key's scheme).
 */
export function resolveSameOrigin(base: string, ref: string, alsoHost?: string): string | undefined {
  try {
    const b = new URL(base)
    const u = new URL(ref, base)
    if (u.origin !== b.origin && (alsoHost === undefined || u.origin !== new URL(`${b.protocol}//${alsoHost}`).origin)) return undefined
    return `${originOf(base)}${u.pathname}${u.search}`
  } catch {
    return undefined
  }
}

/** "http://host[:port]" of an absolute key, as the key spells it. */
function originOf(key: string): string {
  const slash = key.indexOf('/', key.indexOf('//') + 2)
  return slash < 0 ? key : key.slice(0, slash)
}
