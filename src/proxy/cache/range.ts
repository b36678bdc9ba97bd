/**
 * Byte ranges served from a stored complete response (RFC 9110 §14): which single range a GET's
 * Range asks of a stored body of known length, after If-Range (§13.1.5). Serving ranges is
 * optional (§14.2: a server MAY ignore Range), so anything else (several ranges, another unit,
 * bad syntax, a range past the end, an If-Range that does not match) gets the whole 200. Pure.
 */
import type { HeaderReader } from '../message.ts'
import { parseHttpDate } from '../../lib/http-date.ts'
import { headerValue } from './directives.ts'
import type { Headers_ } from './policy.ts'

/** Inclusive byte positions within a body of `length` bytes. */
export interface ByteRange {
  first: number
  last: number
  length: number
}

/** "bytes=first-last", "bytes=first-" or "bytes=-suffix" (§14.1.2), whitespace allowed around it. */
const ONE_RANGE = /^bytes[ \t]*=[ \t]*(?:(\d+)[ \t]*-[ \t]*(\d*)|-[ \t]*(\d+))[ \t]*$/i

/**
 * The one range a request asks of a stored 200 with a body of `length` bytes, or undefined for
 * the whole response. Only GET has ranges (§14.2).
 */
export function requestedRange(req: { method: string; headers: HeaderReader }, stored: Headers_, length: number): ByteRange | undefined {
  if (req.method !== 'GET') return undefined
  const range = req.headers.get('range')
  if (range === null || length === 0) return undefined
  const m = ONE_RANGE.exec(range)
  if (!m) return undefined
  const ifRange = req.headers.get('if-range')
  if (ifRange !== null && !ifRangeMatches(ifRange.trim(), stored)) return undefined
  if (m[3] !== undefined) {
    const suffix = Number(m[3])
    if (!Number.isSafeInteger(suffix) || suffix === 0) return undefined
    return { first: Math.max(0, length - suffix), last: length - 1, length }
  }
  const first = Number(m[1])
  const last = m[2] === '' ? length - 1 : Number(m[2])
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first > last || first >= length) return undefined
  return { first, last: Math.min(last, length - 1), length }
}

/**
 * If-Range (§13.1.5): an entity tag matches the stored one by the strong comparison; a date
 * matches a strong Last-Modified (one at least a second before the stored Date, §8.8.2.2) that
 * is the same instant.
 */
function ifRangeMatches(value: string, stored: Headers_): boolean {
  if (value.startsWith('"') || value.startsWith('W/')) {
    const etag = headerValue(stored, 'etag')?.trim()
    return !value.startsWith('W/') && etag !== undefined && !etag.startsWith('W/') && etag === value
  }
  const when = parseHttpDate(value)
  const lm = parseHttpDate(headerValue(stored, 'last-modified'))
  const date = parseHttpDate(headerValue(stored, 'date'))
  return when !== undefined && lm === when && date !== undefined && date - lm >= 1000
}

export function contentRange(r: ByteRange): string {
  return `bytes ${r.first}-${r.last}/${r.length}`
}
