/**
 * Parsing of the header values the cache decides on: Cache-Control and CDN-Cache-Control
 * directive lists (RFC 9111 §5.2, RFC 9213) and delta-seconds (RFC 9111 §1.2.2); HTTP dates are
 * lib/http-date.ts's. Pure functions; what the directives mean is decided in policy.ts.
 */

/** A directive's argument; `true` when it has none; `null` when it repeats with different arguments. */
export type DirectiveValue = string | true | null

export type Directives = ReadonlyMap<string, DirectiveValue>

export const NO_DIRECTIVES: Directives = new Map()

/**
 * Parses a comma-separated directive list. Names are case-insensitive (§5.2); arguments may be a
 * token or a quoted-string, and recipients accept both forms. A directive repeated with another
 * argument is recorded as `null` (conflicting), so that callers can treat it as invalid.
 */
export function parseDirectives(value: string | null | undefined): Directives {
  if (!value) return NO_DIRECTIVES
  const out = new Map<string, DirectiveValue>()
  let i = 0
  const n = value.length
  while (i < n) {
    // One element: name [ "=" ( token / quoted-string ) ], up to the next comma outside quotes.
    while (i < n && (value[i] === ',' || value[i] === ' ' || value[i] === '\t')) i++
    const nameStart = i
    while (i < n && value[i] !== '=' && value[i] !== ',') i++
    const rawName = value.slice(nameStart, i)
    const name = rawName.trim().toLowerCase()
    let arg: string | true = true
    // The grammar has no whitespace around "=" (§5.2): "max-age = 5" is not max-age, and is ignored.
    let valid = !/[ \t]/.test(name) && !(value[i] === '=' && /[ \t]$/.test(rawName))
    if (i < n && value[i] === '=') {
      i++
      if (value[i] === ' ' || value[i] === '\t') valid = false
      if (value[i] === '"') {
        let s = ''
        i++
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++
          s += value[i]
          i++
        }
        i++ // the closing quote
        arg = s
        while (i < n && value[i] !== ',') i++
      } else {
        const argStart = i
        while (i < n && value[i] !== ',') i++
        arg = value.slice(argStart, i).trim()
      }
    }
    if (name === '' || !valid) continue
    const prev = out.get(name)
    out.set(name, prev === undefined || prev === arg ? arg : null)
  }
  return out
}

/** 2^31: the largest delta-seconds a cache must represent (RFC 9111 §1.2.2). */
const MAX_DELTA_SECONDS = 2147483648

/**
 * delta-seconds: digits only. A larger value than a cache can represent is taken as 2^31
 * (§1.2.2). undefined for anything else (absent, conflicting, negative, fractional).
 */
export function deltaSeconds(v: DirectiveValue | undefined): number | undefined {
  if (typeof v !== 'string' || !/^[0-9]+$/.test(v)) return undefined
  const n = Number(v)
  return n > MAX_DELTA_SECONDS ? MAX_DELTA_SECONDS : n
}

/** A header's value from a reply's list, repeated lines joined with ", " (RFC 9110 §5.3); null if absent. */
export function headerValue(headers: readonly (readonly [string, string])[], name: string): string | null {
  let out: string | null = null
  for (const [n, v] of headers) {
    if (n.length === name.length && n.toLowerCase() === name) out = out === null ? v : `${out}, ${v}`
  }
  return out
}

/** How many lines of a header a reply carries. */
export function headerCount(headers: readonly (readonly [string, string])[], name: string): number {
  let count = 0
  for (const [n] of headers) if (n.length === name.length && n.toLowerCase() === name) count++
  return count
}

/** Directives of CDN-Cache-Control whose value must be a non-negative Integer (RFC 9213 §2.1, RFC 9111 §5.2.2). */
const INTEGER_DIRECTIVES = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error'])
/** Directives that take no argument: in a Dictionary, Boolean true (RFC 9213 §2.1: no field-name lists). */
const BOOLEAN_DIRECTIVES = new Set(['public', 'private', 'no-store', 'no-cache', 'must-revalidate', 'proxy-revalidate', 'must-understand', 'no-transform', 'immutable'])
const SF_KEY = /^[a-z*][a-z0-9_.*-]*/
const SF_BARE_ITEM = /^(?:-?\d{1,15}(?:\.\d{1,3})?|"(?:[^"\\\x00-\x1f\x7f]|\\["\\])*"|[A-Za-z*][!#$%&'*+\-.^_`|~:/0-9A-Za-z]*|:[A-Za-z0-9+/=]*:|\?[01])/

/**
 * A targeted cache-control field (RFC 9213 §2.1) parsed as a Structured Field Dictionary
 * (RFC 8941 §3.2). undefined when it is not a valid Dictionary, or a known directive has a value
 * of the wrong type: the field is then ignored as a whole and Cache-Control applies.
 */
export function parseTargetedDirectives(value: string | null): Directives | undefined {
  if (value === null) return undefined
  const out = new Map<string, DirectiveValue>()
  let rest = value.replace(/^[ \t]+|[ \t]+$/g, '')
  if (rest === '') return undefined
  for (;;) {
    const key = SF_KEY.exec(rest)?.[0]
    if (key === undefined) return undefined
    rest = rest.slice(key.length)
    let item: string | true = true
    if (rest.startsWith('=')) {
      const bare = SF_BARE_ITEM.exec(rest.slice(1))?.[0]
      if (bare === undefined) return undefined
      rest = rest.slice(1 + bare.length)
      item = bare === '?1' ? true : bare
    }
    // Parameters (";key[=item]") are allowed and ignored.
    while (rest.startsWith(';')) {
      const m = /^;[ ]*([a-z*][a-z0-9_.*-]*)/.exec(rest)
      if (!m) return undefined
      rest = rest.slice(m[0].length)
      if (rest.startsWith('=')) {
        const bare = SF_BARE_ITEM.exec(rest.slice(1))?.[0]
        if (bare === undefined) return undefined
        rest = rest.slice(1 + bare.length)
      }
    }
    if (INTEGER_DIRECTIVES.has(key) && (typeof item !== 'string' || !/^\d+$/.test(item))) return undefined
    if (BOOLEAN_DIRECTIVES.has(key) && item !== true && item !== '?0') return undefined
    // The last value of a repeated key wins in a Dictionary (RFC 8941 §3.2); ?0 means absent.
    if (item === '?0') out.delete(key)
    else out.set(key, item)
    rest = rest.replace(/^[ \t]+/, '')
    if (rest === '') break
    if (!rest.startsWith(',')) return undefined
    rest = rest.slice(1).replace(/^[ \t]+/, '')
    if (rest === '') return undefined
  }
  return out
}
