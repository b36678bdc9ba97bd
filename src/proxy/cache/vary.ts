/**
 * Secondary cache keys (RFC 9111 §4.1): the request header values a response's Vary names,
 * recorded when it is stored and compared with each later request. Pure.
 */
import type { HeaderReader } from '../message.ts'
import { headerValue, type Directives } from './directives.ts'
import type { Headers_ } from './policy.ts'

export interface VaryKey {
  /** Lower-case request header names, in the order Vary lists them. */
  names: readonly string[]
  /** Their normalized values in the request that fetched the response; null where absent. */
  values: readonly (string | null)[]
}

export const NO_VARY: VaryKey = { names: [], values: [] }

/** The names a response's Vary lists (lower-case, without duplicates); '*' never matches (§4.1). */
export function varyNames(headers: Headers_): string[] | '*' {
  const v = headerValue(headers, 'vary')
  if (v === null) return []
  const names: string[] = []
  for (const t of v.split(',')) {
    const name = t.trim().toLowerCase()
    if (name === '*') return '*'
    if (name !== '' && !names.includes(name)) names.push(name)
  }
  return names
}

/**
 * A header value normalized as §4.1 allows: repeated lines are already combined by the reader,
 * and whitespace around list commas and runs of whitespace do not make two values differ.
 */
export function normalizeVaryValue(value: string | null, name = ''): string | null {
  if (value === null) return null
  const v = value.trim().replace(/\s*([,;=])\s*/g, '$1').replace(/[ \t]+/g, ' ')
  // Lists whose members are case-insensitive and whose order carries no preference (q-values
  // do, RFC 9110 §12.4.2): "en, FR" and "fr,en" select the same response.
  return ORDER_FREE.has(name) ? v.toLowerCase().split(',').sort().join(',') : v
}

const ORDER_FREE = new Set(['accept-language', 'accept-encoding'])

export function varyKeyFor(names: readonly string[], req: HeaderReader): VaryKey {
  return { names, values: names.map((n) => normalizeVaryValue(req.get(n), n)) }
}

/** Does a request select a response stored with this key (§4.1)? An absent header matches only an absent one. */
export function varyMatches(key: VaryKey, req: HeaderReader): boolean {
  for (let i = 0; i < key.names.length; i++) {
    const name = key.names[i]!
    if (normalizeVaryValue(req.get(name), name) !== key.values[i]) return false
  }
  return true
}

/** Two stored responses answer the same requests (one replaces the other, §4.1 / §3). */
export function sameVaryKey(a: VaryKey, b: VaryKey): boolean {
  if (a.names.length !== b.names.length) return false
  for (let i = 0; i < a.names.length; i++) if (a.names[i] !== b.names[i] || a.values[i] !== b.values[i]) return false
  return true
}

export type { Directives }
