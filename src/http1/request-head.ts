/**
 * Strict parser of an HTTP/1.1 request head (RFC 9112 §2–§3, §5–§6), for the proxy's own listener. Anything another parser
 * could read differently is refused, never repaired: bare CR or LF, obs-fold, whitespace before a colon, control characters,
 * Content-Length and Transfer-Encoding together, disagreeing lengths, codings other than a final "chunked", a missing or repeated
 * Host, an absolute-form target naming another host, a backslash in the path, CONNECT. Pure: no I/O, table-tested in
 * test/proxy/request-head.test.ts.
 */
import { Buffer } from 'node:buffer'
import type { HeadReader } from './head-reader.ts'
import type { RepeatedStrings } from '../lib/bytes.ts'
import { sameAuthority } from '../lib/net.ts'
import { allTokens, backslashInPath, contentLength, crlfAt, isDigit, isHostValue, isHostValueBytes, isOws, isProtocolList, listMembers, mayBeginRequestLine, NameTable, TCHAR, trimOws } from './chars.ts'

export interface RequestHead {
  method: string
  /** origin-form (path and query), or "*" for OPTIONS; absolute-form is reduced to this. */
  target: string
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1
  /** Lower-case names, in arrival order, parallel to `values` and to `spans`' groups of four. */
  names: string[]
  /**
   * The values the parser read itself (Host, the framing and connection fields, X-Request-Id);
   * undefined for the others, which HeadHeaders decodes when asked (headValues() decodes all).
   */
  values: (string | undefined)[]
  /** The bytes parsed, never written again: they begin with the request head and its CRLFCRLF. */
  bytes: Buffer
  /** Per field: where its line starts, its value starts and ends (OWS trimmed), and the next line starts. */
  spans: number[]
  /** The one Host value, or undefined (HTTP/1.0 only). */
  host: string | undefined
  /** The body's framing. */
  body: { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' }
  /** Whether the connection stays open after the response (Connection and version rules). */
  keepAlive: boolean
  /** "Expect: 100-continue" was sent. */
  expectContinue: boolean
  /** The Upgrade header's value when a request without a body asks to switch protocols (Connection: upgrade) to valid ones (RFC 9110 §7.8). */
  upgrade: string | undefined
}

/**
 * Why a request head is refused, in the proxy's error vocabulary (proxy/errors.ts maps each to
 * its status: 400, 414, 431, 405, 501, 505).
 */
export type HeadErrorCode = 'BAD_REQUEST' | 'URI_TOO_LONG' | 'HEAD_TOO_LARGE' | 'METHOD_NOT_ALLOWED' | 'NOT_IMPLEMENTED' | 'VERSION_NOT_SUPPORTED'

export class RequestHeadError extends Error {
  override name = 'RequestHeadError'
  constructor(
    readonly code: HeadErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** Most header lines accepted in one request (431 beyond); nginx and Node have similar caps. */
export const MAX_HEADER_COUNT = 200

/**
 * Parses `head`: the bytes before the blank line, as latin1, without the final CRLFCRLF (the
 * string form of parseRequestHeadBytes, for callers that hold text).
 */
export function parseRequestHead(head: string): RequestHead {
  return parseRequestHeadBytes(Buffer.from(`${head}\r\n\r\n`, 'latin1'), head.length)
}

/**
 * Why the bytes `held` for a request head are refused before it is parsed: 414 when the request line alone cannot fit in
 * `maxBytes`, 431 when the whole head cannot; 400 when it is unfinished and has a line ended by a bare LF followed by an
 * empty line (RFC 9112 §2.2 lets a server refuse a bare LF, and the parser does), a whole request line that is wrong, or
 * bytes no request line starts with. Undefined while it may still come right. `end`: the head's CRLFCRLF, or -1.
 */
export function unfinishedHeadError(held: HeadReader, end: number, maxBytes: number): RequestHeadError | undefined {
  if (end >= 0 ? end + 4 > maxBytes : held.size > maxBytes) {
    const lineEnd = held.bytes.indexOf('\r\n')
    return lineEnd < 0 || lineEnd > maxBytes
      ? new RequestHeadError('URI_TOO_LONG', `request line longer than max_header_size (${maxBytes} bytes)`)
      : new RequestHeadError('HEAD_TOO_LARGE', `request head larger than max_header_size (${maxBytes} bytes)`)
  }
  if (end < 0 && held.bareLfEnd()) return new RequestHeadError('BAD_REQUEST', 'request head lines end with a bare LF (they end with CRLF)')
  if (end < 0) {
    // A request line that is whole and wrong ("GET /x" with no version, HTTP/0.9's form) is refused now, not after the header timeout (RFC 9112 §3: SHOULD be 400).
    const lineEnd = held.newFirstLineEnd()
    if (lineEnd >= 0 && !REQUEST_LINE.test(held.bytes.toString('latin1', 0, lineEnd))) return new RequestHeadError('BAD_REQUEST', 'malformed request line')
    // Nor bytes no method starts with (a TLS ClientHello, whose 0x16 carries no CRLF to wait for; the first 64 bytes looked at), as nginx.
    if (lineEnd < 0 && !mayBeginRequestLine(held.bytes, Math.min(held.size, 64))) return new RequestHeadError('BAD_REQUEST', held.bytes[0] === 0x16 ? 'a TLS handshake where an HTTP request line was expected (https:// sent to a plain-HTTP port?)' : 'not an HTTP request line (method SP target SP HTTP/1.1)')
  }
  return undefined
}

/** method SP request-target SP HTTP-version (RFC 9112 §3), the version's digits checked later by the parser. */
export const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/\d\.\d$/

/**
 * Parses bytes[0, end): a request head without its final CRLFCRLF (which `b` holds too, at `end`: the last field's line is
 * forwarded with its CRLF), scanned by hand (no string for the whole head; common methods and field names are shared constants,
 * not new strings). Leading empty lines are tolerated (RFC 9112 §2.2). Throws RequestHeadError with the code of the refusal.
 * `strings`, the connection's, gives the target, Host and Connection of the request before back when their bytes repeat.
 */
export function parseRequestHeadBytes(b: Buffer, end: number, strings?: RepeatedStrings): RequestHead {
  // The last field's line is kept with its CRLF (spans), which is the CRLFCRLF's start.
  if (b.length < end + 4) throw new RangeError('parseRequestHeadBytes: the buffer must hold the head and its CRLFCRLF')
  let start = 0
  while (start + 1 < end && b[start] === 0x0d && b[start + 1] === 0x0a) start += 2
  const lineEnd = crlfAt(b, start, end)
  // method SP request-target SP HTTP-version: a token, visible ASCII, "HTTP/" DIGIT "." DIGIT.
  let i = start
  while (i < lineEnd && b[i]! < 128 && TCHAR[b[i]!] === 1) i++
  const methodEnd = i
  if (methodEnd === start || b[i] !== 0x20) throw new RequestHeadError('BAD_REQUEST', 'malformed request line')
  const targetStart = ++i
  while (i < lineEnd && b[i]! >= 0x21 && b[i]! <= 0x7e) i++
  const targetEnd = i
  const major = b[i + 6]!
  const minorCh = b[i + 8]!
  if (
    targetEnd === targetStart ||
    i + 9 !== lineEnd ||
    b[i] !== 0x20 || b[i + 1] !== 0x48 || b[i + 2] !== 0x54 || b[i + 3] !== 0x54 || b[i + 4] !== 0x50 || b[i + 5] !== 0x2f ||
    !isDigit(major) ||
    b[i + 7] !== 0x2e ||
    !isDigit(minorCh)
  ) {
    throw new RequestHeadError('BAD_REQUEST', 'malformed request line')
  }
  const method = knownMethod(b, start, methodEnd) ?? b.toString('latin1', start, methodEnd)
  let target = strings ? strings.latin1(b, targetStart, targetEnd, 0) : b.toString('latin1', targetStart, targetEnd)
  if (major !== 0x31) throw new RequestHeadError('VERSION_NOT_SUPPORTED', `HTTP/${major - 0x30}.${minorCh - 0x30} is not supported; use HTTP/1.1`)
  // HTTP/1.2 to 1.9 are read as HTTP/1.1, the highest minor version this parser implements
  // (RFC 9110 §2.5: a recipient SHOULD; nginx and HAProxy do too). The answer says HTTP/1.1.
  const minor = minorCh === 0x30 ? 0 : 1
  if (method === 'CONNECT') throw new RequestHeadError('METHOD_NOT_ALLOWED', 'CONNECT is not supported: this is not an open proxy')

  const names: string[] = []
  const values: (string | undefined)[] = []
  const spans: number[] = []
  let host: string | undefined
  let hostCount = 0
  // Where the (last) Host value is in the bytes, checked once the count is known.
  let hostStart = 0
  let hostEnd = 0
  let length: number | undefined
  let te: string | undefined
  let connection = ''
  let expect: string | undefined
  let upgrade: string | undefined
  let pos = lineEnd + 2
  while (pos < end) {
    const first = b[pos]!
    if (first === 0x20 || first === 0x09) throw new RequestHeadError('BAD_REQUEST', 'obsolete line folding is not allowed')
    // name ":" value, the name a token right up to the colon; one pass over the line.
    let colon = pos
    for (let c = first; c < 128 && TCHAR[c] === 1 && colon < end; c = b[++colon]!);
    if (colon === pos || colon >= end || b[colon] !== 0x3a) {
      throw new RequestHeadError('BAD_REQUEST', 'malformed header line (bad name, whitespace before ":", or no colon)')
    }
    let vs = colon + 1
    while (vs < end && isOws(b[vs]!)) vs++
    // The value up to its CRLF: HTAB, SP, VCHAR or obs-text; a bare CR or LF, NUL, another control character or DEL is refused.
    let stop = vs
    for (; stop < end; stop++) {
      const c = b[stop]!
      if ((c >= 0x20 && c !== 0x7f) || c === 0x09) continue
      if (c === 0x0d && b[stop + 1] === 0x0a && stop + 1 < end) break
      throw new RequestHeadError('BAD_REQUEST', 'control character (bare CR or LF, NUL, ...) in a header value')
    }
    let ve = stop
    while (ve > vs && isOws(b[ve - 1]!)) ve--
    if (names.length >= MAX_HEADER_COUNT) throw new RequestHeadError('HEAD_TOO_LARGE', `more than ${MAX_HEADER_COUNT} header lines`)
    const name = KNOWN_NAMES.find(b, pos, colon) ?? b.toString('latin1', pos, colon).toLowerCase()
    names.push(name)
    spans.push(pos, vs, ve, stop + 2)
    if (!READ_HERE.has(name)) {
      values.push(undefined)
      pos = stop + 2
      continue
    }
    const slot = name === 'host' ? 1 : name === 'connection' ? 2 : 0
    const value = vs === ve ? '' : strings && slot !== 0 ? strings.latin1(b, vs, ve, slot) : b.toString('latin1', vs, ve)
    values.push(value)
    switch (name) {
      case 'host':
        hostCount++
        host = value
        hostStart = vs
        hostEnd = ve
        break
      case 'content-length': {
        const n = contentLength(value, length)
        if (n === 'invalid') throw new RequestHeadError('BAD_REQUEST', 'invalid Content-Length')
        if (n === 'conflict') throw new RequestHeadError('BAD_REQUEST', 'conflicting Content-Length values')
        length = n
        break
      }
      case 'transfer-encoding':
        te = te === undefined ? value : `${te}, ${value}`
        break
      case 'connection':
        connection = connection ? `${connection}, ${value}` : value
        break
      case 'expect':
        expect = value
        break
      case 'upgrade':
        // Several lines are one list (RFC 9110 §5.3): every protocol offered goes on, not the last line's.
        upgrade = upgrade === undefined ? value : `${upgrade}, ${value}`
        break
    }
    pos = stop + 2
  }

  // Host: exactly one in HTTP/1.1 (RFC 9112 §3.2), and a valid host[:port].
  if (hostCount > 1) throw new RequestHeadError('BAD_REQUEST', 'more than one Host header')
  if (hostCount === 0 && minor === 1) throw new RequestHeadError('BAD_REQUEST', 'missing Host header')
  if (host !== undefined && !isHostValueBytes(b, hostStart, hostEnd)) throw new RequestHeadError('BAD_REQUEST', 'invalid Host header')

  // The target: origin-form; absolute-form only when it names the Host; "*" only for OPTIONS.
  if (target.charCodeAt(0) !== 0x2f) {
    if (target === '*') {
      if (method !== 'OPTIONS') throw new RequestHeadError('BAD_REQUEST', 'the "*" target is only for OPTIONS')
    } else {
      const abs = /^(https?):\/\/([^/?#]*)([^#]*)$/i.exec(target)
      if (!abs) throw new RequestHeadError('BAD_REQUEST', 'invalid request target')
      const authority = abs[2]!
      if (host === undefined) {
        // No Host (HTTP/1.0 alone here): the authority is it (RFC 9112 §3.2.2), a field of no line (Host is written apart).
        if (!isHostValue(authority)) throw new RequestHeadError('BAD_REQUEST', 'invalid authority in the request target')
        names.push('host')
        values.push((host = authority))
        spans.push(end, end, end, end)
      } else if (!sameAuthority(authority, host, abs[1]!)) {
        // Compared without the scheme's default port: http://a:80/ names the Host "a" (RFC 9110 §4.2.3).
        throw new RequestHeadError('BAD_REQUEST', 'request target names another host than the Host header; this is not an open proxy')
      }
      const rest = abs[3]!
      // An empty path and no query: "/", but "*" for OPTIONS, which is about the server as a whole (RFC 9112 §3.2.4: the last proxy on the chain MUST send "*").
      target = rest === '' ? (method === 'OPTIONS' ? '*' : '/') : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest
    }
  }
  if (target.includes('#')) throw new RequestHeadError('BAD_REQUEST', 'a request target cannot carry a fragment')
  if (backslashInPath(target)) throw new RequestHeadError('BAD_REQUEST', 'a backslash in the request path (no URI has one; URL parsers read it as "/")')

  // Framing (RFC 9112 §6.1, §6.3): never both; only a single, final "chunked" coding.
  let body: RequestHead['body'] = NO_BODY
  if (te !== undefined) {
    if (length !== undefined) throw new RequestHeadError('BAD_REQUEST', 'both Content-Length and Transfer-Encoding')
    if (minor === 0) throw new RequestHeadError('BAD_REQUEST', 'Transfer-Encoding in an HTTP/1.0 request')
    const codings = listMembers(te)
    // Each coding is a token: NBSP, VT, FF, NEL ... next to "chunked" are not whitespace, and a
    // front end that strips them would frame this body differently (RFC 9110 §5.6.3).
    if (codings.length === 0 || !allTokens(codings)) throw new RequestHeadError('BAD_REQUEST', 'invalid Transfer-Encoding (codings are tokens separated by commas, SP and HTAB)')
    if (codings[codings.length - 1] !== 'chunked') throw new RequestHeadError('BAD_REQUEST', 'Transfer-Encoding must end with chunked')
    if (codings.length !== 1) throw new RequestHeadError('NOT_IMPLEMENTED', `unsupported Transfer-Encoding "${te}"; only chunked is accepted`)
    body = { kind: 'chunked' }
  } else if (length !== undefined && length > 0) {
    body = { kind: 'length', length }
  }

  const tokens = connection.toLowerCase()
  const keepAlive = minor === 1 ? !hasToken(tokens, 'close') : hasToken(tokens, 'keep-alive')
  return {
    method,
    target,
    minor,
    names,
    values,
    bytes: b,
    spans,
    host,
    body,
    keepAlive,
    // An HTTP/1.0 request's 100-continue is ignored (RFC 9110 §10.1.1: no 1xx to such a client).
    expectContinue: minor === 1 && expect !== undefined && expect.toLowerCase() === '100-continue',
    // A request with a body is not switched: its body would share the tunnel with whatever the
    // client sends next, which the upstream could read as another request we never checked.
    // Nor is an HTTP/1.0 request: its Upgrade is ignored (RFC 9110 §7.8). Nor one whose Upgrade
    // names no valid protocol (empty, `"x"`, `websocket garbage(`): there is nothing to switch to,
    // and a server may ignore Upgrade (§7.8); it is served as a plain request.
    upgrade: minor === 1 && upgrade !== undefined && hasToken(tokens, 'upgrade') && body.kind === 'none' && isProtocolList(upgrade) ? upgrade : undefined,
  }
}

/** The framing of a request without a body (most of them): one shared object, never changed. */
const NO_BODY: RequestHead['body'] = Object.freeze({ kind: 'none' })

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']

/** The method as a shared constant when it is a usual one (methods are case-sensitive). */
function knownMethod(b: Uint8Array, from: number, to: number): string | undefined {
  for (const m of METHODS) {
    if (m.length !== to - from) continue
    let i = 0
    while (i < m.length && b[from + i] === m.charCodeAt(i)) i++
    if (i === m.length) return m
  }
  return undefined
}

/** Fields whose values the parser reads (the switch above) or the listener asks for at once (the request id). */
const READ_HERE: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'x-request-id'])

/** Field names browsers, curl and load tools send: shared constants instead of a new string per request. */
const KNOWN_NAMES = new NameTable([
  'host', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'accept-charset', 'connection', 'keep-alive',
  'content-length', 'content-type', 'cookie', 'referer', 'origin', 'authorization', 'cache-control', 'pragma',
  'if-none-match', 'if-modified-since', 'range', 'if-range', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-real-ip', 'x-request-id', 'forwarded', 'via', 'upgrade', 'transfer-encoding', 'expect', 'te', 'dnt', 'priority',
  'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile',
  'sec-ch-ua-platform', 'upgrade-insecure-requests', 'sec-websocket-key', 'sec-websocket-version',
])

function hasToken(list: string, token: string): boolean {
  if (list === '') return false
  if (list === token) return true
  for (const t of list.split(',')) if (trimOws(t) === token) return true
  return false
}

/** Every value of a parsed head, the ones the parser left undecoded included. */
export function headValues(head: RequestHead): string[] {
  return head.names.map((_, i) => head.values[i] ?? decodeValue(head.bytes, head.spans, i))
}

function decodeValue(bytes: Buffer, spans: readonly number[], i: number): string {
  const vs = spans[4 * i + 1]!
  const ve = spans[4 * i + 2]!
  return vs === ve ? '' : bytes.toString('latin1', vs, ve)
}

/**
 * The headers of a parsed request, read the way the proxy reads a Headers object: `get` joins
 * repeated fields with ", ", `forEach` visits each line. Names are lower-case. Made from a head
 * (`head`), values the parser left undecoded are decoded when first asked for, and the head's
 * bytes stay at hand for forwarding its lines as they came (proxy/headers.ts).
 */
export class HeadHeaders {
  private readonly values: (string | undefined)[]
  /** The parsed head the values come from (HeadHeaders.of): those left undecoded are decoded from its bytes. */
  private source: RequestHead | undefined

  /** Headers with every value given; a parsed head's are HeadHeaders.of(head). */
  constructor(
    private readonly names: readonly string[],
    values: readonly string[],
  ) {
    this.values = values as (string | undefined)[]
  }

  /** The headers of `head`, its values decoded when first asked for. */
  static of(head: RequestHead): HeadHeaders {
    const headers = new HeadHeaders(head.names, head.values as string[])
    headers.source = head
    return headers
  }

  /** The parsed head behind these headers, when they are one's (proxy/headers.ts forwards its lines). */
  get head(): RequestHead | undefined {
    return this.source
  }

  /** How many field lines there are. */
  get count(): number {
    return this.names.length
  }

  /** The (lower-case) name of field `i` (in arrival order). */
  nameAt(i: number): string {
    return this.names[i]!
  }

  /** The value of field `i` (in arrival order). */
  valueAt(i: number): string {
    const v = this.values[i]
    if (v !== undefined) return v
    const head = this.source!
    return (this.values[i] = decodeValue(head.bytes, head.spans, i))
  }

  get(name: string): string | null {
    let out: string | null = null
    const names = this.names
    for (let i = 0; i < names.length; i++) {
      if (names[i] === name) out = out === null ? this.valueAt(i) : `${out}, ${this.valueAt(i)}`
    }
    return out
  }

  has(name: string): boolean {
    return this.names.includes(name)
  }

  forEach(fn: (value: string, name: string) => void): void {
    const names = this.names
    for (let i = 0; i < names.length; i++) fn(this.valueAt(i), names[i]!)
  }
}
