/**
 * Secondary cache keys (RFC 9111 §4.1): the request header values a response's Vary names (a
 * field hop-by-hop for the request as absent: it is not forwarded), recorded when it is stored
 * and compared with each later request. Pure.
 */
import type { HeaderReader } from '../message.ts'
import { connectionTokens, HOP_BY_HOP } from '../headers.ts'
import { headerValue, type Directives } from './directives.ts'

/** A response's field list, as policy.ts's Headers_ (not imported from there: policy.ts imports this file). */
type Headers_ = readonly (readonly [string, string])[]

export interface VaryKey {
  /** Lower-case request header names, in the order Vary lists them. */
  names: readonly string[]
  /** Their normalized values in the request that fetched the response; null where absent. */
  values: readonly (string | null)[]
}

export const NO_VARY: VaryKey = { names: [], values: [] }

/** A field name is a token (RFC 9110 §5.1, §5.6.2). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/

/**
 * Most fields one Vary may name for its response to be stored. Every request for the key reads
 * each named field once per stored variant (up to store.ts MAX_VARIANTS_PER_KEY): a 64 KiB Vary of
 * 12,000 names made each request for that URL cost 768,000 field lookups. Real lists name a few.
 */
export const MAX_VARY_NAMES = 32

/**
 * The names a response's Vary lists (lower-case, without duplicates); '*' never matches (§4.1).
 * Nor does a member that is not a field name ("Accept Encoding", "a:b", a quoted name): no request
 * can carry such a field, and where the request's fields are a fetch Headers (the runtime front,
 * Deno) asking for one throws. It is '*' too: the response is not stored; so is a list of more
 * than MAX_VARY_NAMES fields.
 */
export function varyNames(headers: Headers_): string[] | '*' {
  const v = headerValue(headers, 'vary')
  if (v === null) return []
  const names = new Set<string>()
  for (const t of v.split(',')) {
    const name = t.trim().toLowerCase()
    if (name === '') continue
    if (name === '*' || !FIELD_NAME.test(name)) return '*'
    names.add(name)
    if (names.size > MAX_VARY_NAMES) return '*'
  }
  return [...names]
}

/**
 * A header value normalized as §4.1 allows, and no further: repeated lines are already combined
 * by the reader and whitespace at the ends is not part of a value (RFC 9110 §5.5). In the Accept
 * lists, whose syntax has optional whitespace around their commas and semicolons (RFC 9110
 * §5.6.1, §5.6.6), that whitespace goes too, and -Encoding, -Language and -Charset are compared
 * without case (Accept is compared as written: its parameter values may be case-sensitive, and a
 * variant more costs only a hit). Only Accept-Encoding's members are sorted: its order means nothing, where some
 * servers read Accept-Language's order as a preference among equal weights (RFC 9110 §12.5.4). Any
 * other field is compared as it came: "a  b" in quotes is not "a b".
 */
export function normalizeVaryValue(value: string | null, name = ''): string | null {
  if (value === null) return null
  const v = value.replace(/^[ \t]+|[ \t]+$/g, '')
  if (!ACCEPT_LISTS.has(name)) return v
  const list = v.replace(/[ \t]*([,;])[ \t]*/g, '$1')
  if (name === 'accept-encoding') return list.toLowerCase().split(',').sort().join(',')
  return name === 'accept' ? list : list.toLowerCase()
}

const ACCEPT_LISTS = new Set(['accept', 'accept-encoding', 'accept-language', 'accept-charset'])

/**
 * The normalized value of the request's field `name` as the origin is sent it: a field that is
 * hop-by-hop for the request (always, or listed in its Connection, RFC 9110 §7.6.1) is not
 * forwarded, so it is absent here. Until the eighteenth round of outside reviews the client's
 * value was keyed: `User-Agent` with `Connection: User-Agent` stored the origin's answer to no
 * User-Agent as the variant for that browser's string, and every later request with it got that.
 */
function sentValue(req: HeaderReader, name: string): string | null {
  const value = req.get(name)
  if (value === null || HOP_BY_HOP.has(name)) return null
  const connection = req.get('connection')
  // Tokenized only when the name is in it at all ("close", "Keep-Alive": no Set made per hit).
  if (connection !== null && connection.length >= name.length && connection.toLowerCase().includes(name) && connectionTokens(connection)?.has(name)) return null
  return normalizeVaryValue(value, name)
}

export function varyKeyFor(names: readonly string[], req: HeaderReader): VaryKey {
  return { names, values: names.map((n) => sentValue(req, n)) }
}

/** Does a request select a response stored with this key (§4.1)? An absent header matches only an absent one. */
export function varyMatches(key: VaryKey, req: HeaderReader): boolean {
  for (let i = 0; i < key.names.length; i++) {
    if (sentValue(req, key.names[i]!) !== key.values[i]) return false
  }
  return true
}

/**
 * Whether a response's Vary (a 304's, merged into a stored response) names the same fields as the
 * secondary key it was stored with, in any order. When not, the stored response no longer holds
 * the values of what its Vary names in the request it was stored for (§4.1).
 */
export function varyNamesKept(key: VaryKey, headers: Headers_): boolean {
  const names = varyNames(headers)
  return names !== '*' && names.length === key.names.length && names.every((n) => key.names.includes(n))
}

/** Two stored responses answer the same requests (one replaces the other, §4.1 / §3). */
export function sameVaryKey(a: VaryKey, b: VaryKey): boolean {
  if (a.names.length !== b.names.length) return false
  for (let i = 0; i < a.names.length; i++) if (a.names[i] !== b.names[i] || a.values[i] !== b.values[i]) return false
  return true
}

export type { Directives }

/**
 * The key a request's collapsed forwarding is kept under (cache.ts): the URL's own while no
 * answer for it said Vary, else the URL's and the request's values of the fields Vary named
 * (after a line feed, which no key or field value holds; an absent field as a NUL), so that
 * requests for one variant wait for each other and not for another variant's.
 */
export function variantFlightKey(key: string, names: readonly string[] | undefined, req: HeaderReader): string {
  if (names === undefined || names.length === 0) return key
  let k = key
  for (const n of names) k += `\n${sentValue(req, n) ?? '\0'}`
  return k
}
