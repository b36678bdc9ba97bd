/**
 * Character classes of HTTP/1.1 heads (RFC 9110 §5.5, §5.6.2), as lookups by character code,
 * shared by the request and response head parsers, which scan heads by hand on the hot path.
 */

/** tchar by character code: 1 where allowed in a token (a method or a header name). */
export const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1

/** Whether s[from, to) is a non-empty token. */
export function isToken(s: string, from: number, to: number): boolean {
  if (to <= from) return false
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c > 127 || TCHAR[c] === 0) return false
  }
  return true
}

/** SP or HTAB: optional whitespace around a field value. */
export function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09
}
