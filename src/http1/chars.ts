/**
 * Field syntax shared by the request and response head parsers (and the runtime listener's
 * request checks): character classes as lookups by character code (the parsers scan heads by
 * hand on the hot path), the Host value, Content-Length values, Upgrade's protocol list and a
 * backslash in a target's path (RFC 9110 §5.5, §5.6.2, §7.2, §7.8, §8.6; RFC 3986 §3.3).
 */
import { isIPv6 } from 'node:net'

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

/**
 * Whether bytes[from, to) is `lower` (lower-case letters, digits and '-') in any case, without
 * making a string: a letter matches in either case, anything else exactly.
 */
export function bytesEqualLower(b: Uint8Array, from: number, to: number, lower: string): boolean {
  if (to - from !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    const c = b[from + i]!
    const l = lower.charCodeAt(i)
    if (c !== l && !(l >= 0x61 && l <= 0x7a && c === l - 0x20)) return false
  }
  return true
}

/**
 * Lower-case field names (of two bytes or more) looked up in bytes, without making a string: the
 * shared constant for a name in the table, in whatever case it was sent.
 */
export class NameTable {
  /**
   * The names by a hash of their length and three of their bytes (the first and the last two):
   * one slot holds the names with that hash, nearly always one, so a lookup compares one name,
   * not every name of its length (a browser's head has six "sec-*" names of 14 or 15 bytes).
   */
  private readonly slots: (string[] | undefined)[] = new Array<string[] | undefined>(NAME_SLOTS).fill(undefined)
  /** Each slot's names' places in the constructor's list (position()). */
  private readonly places: (number[] | undefined)[] = new Array<number[] | undefined>(NAME_SLOTS).fill(undefined)

  constructor(names: readonly string[]) {
    names.forEach((name, place) => {
      if (name.length < 2 || name !== name.toLowerCase()) throw new RangeError(`NameTable: "${name}" is not a lower-case name of two bytes or more`)
      const codes = new Uint8Array(name.length)
      for (let i = 0; i < name.length; i++) codes[i] = name.charCodeAt(i)
      const h = nameHash(codes, 0, codes.length)
      this.slots[h] = [...(this.slots[h] ?? []), name]
      this.places[h] = [...(this.places[h] ?? []), place]
    })
  }

  /** Where in the constructor's list the name bytes[from, to) is, or -1. */
  position(b: Uint8Array, from: number, to: number): number {
    if (to - from < 2) return -1
    const h = nameHash(b, from, to)
    const names = this.slots[h]
    if (names === undefined) return -1
    for (let i = 0; i < names.length; i++) if (bytesEqualLower(b, from, to, names[i]!)) return this.places[h]![i]!
    return -1
  }

  /** The table's name that bytes[from, to) is, or undefined. */
  find(b: Uint8Array, from: number, to: number): string | undefined {
    if (to - from < 2) return undefined
    const names = this.slots[nameHash(b, from, to)]
    if (names === undefined) return undefined
    for (let i = 0; i < names.length; i++) if (bytesEqualLower(b, from, to, names[i]!)) return names[i]
    return undefined
  }
}

const NAME_SLOTS = 1024

/**
 * The slot of bytes[from, to) (at least two bytes): its length, its first byte and its last two,
 * with 0x20 set in each (which lower-cases an ASCII letter and leaves the digits and "-" of a
 * table name as they are), so a name hashes alike in any case. Other bytes may share a slot with
 * a name; find() compares before it answers.
 */
function nameHash(b: Uint8Array, from: number, to: number): number {
  return ((to - from) * 961 + (b[from]! | 0x20) * 31 + (b[to - 1]! | 0x20) * 7 + (b[to - 2]! | 0x20)) & (NAME_SLOTS - 1)
}

/**
 * A Host value: reg-name / IPv4 / [IPv6] with an optional port (RFC 3986 §3.2.2); no userinfo, no
 * list. The port may be empty ("a:", RFC 3986 §3.2.3: port = *DIGIT; the scheme's default, §6.2.3).
 * Test with isHostValue (the IPv6 address's own syntax too).
 */
export const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+;=%]+)(?::\d{0,5})?$/

/** HOST_VALUE, and a bracketed literal an IPv6 address (RFC 3986 §3.2.2: "[:::1]" or "[1:2:3:4:5:6:7:8:9]" is no host). */
export function isHostValue(s: string): boolean {
  return HOST_VALUE.test(s) && (s[0] !== '[' || isIPv6(s.slice(1, s.indexOf(']'))))
}

/** Characters of a reg-name or IPv4 host in HOST_VALUE (1), and of a bracketed IPv6 one (2). */
const HOST_CHAR = new Uint8Array(128)
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+;=%") HOST_CHAR[c.charCodeAt(0)]! |= 1
for (const c of '0123456789ABCDEFabcdef:.') HOST_CHAR[c.charCodeAt(0)]! |= 2

/** HOST_VALUE.test on bytes[from, to), without making a string. */
export function isHostValueBytes(b: Uint8Array, from: number, to: number): boolean {
  let i = from
  if (i < to && b[i] === 0x5b) {
    // "[" IPv6 or IPvFuture characters "]"
    i++
    const start = i
    while (i < to && b[i]! < 128 && (HOST_CHAR[b[i]!]! & 2) !== 0) i++
    if (i === start || i >= to || b[i] !== 0x5d) return false
    // The characters are an IPv6 address's; so must their order be (a rare field: a string made for it).
    if (!isIPv6(String.fromCharCode(...b.subarray(start, i)))) return false
    i++
  } else {
    const start = i
    while (i < to && b[i]! < 128 && (HOST_CHAR[b[i]!]! & 1) !== 0) i++
    if (i === start) return false
  }
  if (i === to) return true
  // ":" and up to five digits (none: the scheme's default port), then the end.
  if (b[i] !== 0x3a) return false
  i++
  if (to - i > 5) return false
  for (; i < to; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return false
  return true
}

/**
 * The length a Content-Length field gives, after `prior` from earlier fields of the message: a
 * list, or a repeat, is accepted only when every entry agrees (RFC 9110 §8.6).
 */
export function contentLength(value: string, prior: number | undefined): number | 'invalid' | 'conflict' {
  // The usual value, 1 to 15 digits and nothing else, read without a split or a regular expression.
  const digits = value.length
  if (digits > 0 && digits <= 15) {
    let n = 0
    let i = 0
    for (; i < digits; i++) {
      const c = value.charCodeAt(i) - 0x30
      if (c < 0 || c > 9) break
      n = n * 10 + c
    }
    if (i === digits) return prior !== undefined && prior !== n ? 'conflict' : n
  }
  let length = prior
  for (const part of value.split(',')) {
    // Only SP and HTAB are optional whitespace (RFC 9110 §5.6.3): JavaScript's trim() would also
    // strip 0xA0 and VT/FF, so "\xa05" would read as 5 here and as garbage in another parser.
    // Limited by its value, not its digits: leading zeros are digits too (1*DIGIT, RFC 9110 §8.6),
    // as chunk sizes are read (chunked.ts); until the eighteenth round of outside reviews a
    // "0000000000000005" was refused (400; from an upstream, 502), where nginx and HAProxy read 5.
    const v = trimOws(part)
    if (!/^\d+$/.test(v)) return 'invalid'
    let first = 0
    while (first < v.length - 1 && v.charCodeAt(first) === 0x30) first++
    if (v.length - first > 15) return 'invalid'
    const n = Number(v)
    if (length !== undefined && length !== n) return 'conflict'
    length = n
  }
  return length!
}

/** An ASCII digit's character code. */
export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** Where the next CRLF in bytes[from, end) starts (both of its bytes before `end`), or `end` when there is none. */
export function crlfAt(b: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end - 1; i++) if (b[i] === 0x0d && b[i + 1] === 0x0a) return i
  return end
}

/** SP or HTAB: optional whitespace around a field value (RFC 9110 §5.6.3); nothing else is. */
export function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09
}

/** `s` without leading and trailing SP/HTAB: the strict counterpart of String.prototype.trim. */
export function trimOws(s: string): string {
  let from = 0
  let to = s.length
  while (from < to && isOws(s.charCodeAt(from))) from++
  while (to > from && isOws(s.charCodeAt(to - 1))) to--
  return from === 0 && to === s.length ? s : s.slice(from, to)
}

/**
 * The members of a comma-separated list field (RFC 9110 §5.6.1), trimmed of SP/HTAB only, empty
 * members dropped, lower-cased: how Transfer-Encoding and Connection are read.
 */
export function listMembers(value: string): string[] {
  const out: string[] = []
  for (const part of value.split(',')) {
    const v = trimOws(part)
    if (v !== '') out.push(v.toLowerCase())
  }
  return out
}

/** Whether every member of a list is a token: a transfer coding must be one (RFC 9112 §7). */
export function allTokens(members: readonly string[]): boolean {
  for (const m of members) if (!isToken(m, 0, m.length)) return false
  return true
}

/**
 * Whether an Upgrade value names at least one protocol and nothing but protocols (RFC 9110 §7.8:
 * protocol = protocol-name ["/" protocol-version], both tokens; empty list members are allowed,
 * §5.6.1). `websocket garbage(`, `"x"`, `a/` and an empty value are not.
 */
export function isProtocolList(value: string): boolean {
  const members = listMembers(value)
  if (members.length === 0) return false
  for (const m of members) {
    const slash = m.indexOf('/')
    if (slash < 0 ? !isToken(m, 0, m.length) : !isToken(m, 0, slash) || !isToken(m, slash + 1, m.length)) return false
  }
  return true
}

/**
 * Whether the path of a request target (what comes before any "?") holds a backslash. No URI
 * has one (RFC 3986 §2, §3.3), and a WHATWG URL parser (Bun.serve, Deno.serve, Node's URL, every
 * browser) reads it as "/": "/a\\..\\admin" is "/admin" there and a plain name in nginx or
 * HAProxy. Both fronts refuse it (RFC 9112 §3.2: 400 for an invalid request-line); a query
 * may hold one (browsers send it there as it is typed).
 */
export function backslashInPath(target: string): boolean {
  const at = target.indexOf('\\')
  if (at < 0) return false
  const query = target.indexOf('?')
  return query < 0 || at < query
}

/**
 * Whether b[0, n) can begin a request line (RFC 9112 §3): empty lines (§2.2), a method's token
 * characters, SP, a target's visible ASCII, SP, then what "HTTP/d.d" begins with.
 */
export function mayBeginRequestLine(b: Uint8Array, n: number): boolean {
  let i = 0
  while (i < n && (b[i] === 0x0d || b[i] === 0x0a)) i++
  let start = i
  for (; i < n && b[i] !== 0x20; i++) if (b[i]! >= 128 || TCHAR[b[i]!] !== 1) return false
  if (i >= n) return true
  if (i === start) return false
  start = ++i
  for (; i < n && b[i] !== 0x20; i++) if (b[i]! < 0x21 || b[i]! > 0x7e) return false
  if (i >= n) return true
  if (i === start) return false
  for (let v = 0; ++i < n && v < VERSION_START.length; v++) {
    const want = VERSION_START[v]
    if (want === 0 ? b[i]! < 0x30 || b[i]! > 0x39 : b[i] !== want) return false
  }
  return true
}

/** "HTTP/d.d", a 0 for each digit: what the version after a request target begins with. */
const VERSION_START = [0x48, 0x54, 0x54, 0x50, 0x2f, 0, 0x2e, 0]
