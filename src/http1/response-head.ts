/**
 * Parsing an upstream's HTTP/1.x response head (RFC 9112 §4–§6): status line, header fields,
 * and the body framing they imply, read from the bytes a socket gave (the fields stay there, as
 * offsets, until something asks for them as strings). Pure; the exchange that reads heads off an
 * upstream socket is proxy/upstream/exchange.ts.
 */
import { Buffer } from 'node:buffer'
import { allTokens, bytesEqualLower, contentLength as contentLengthOf, crlfAt, isDigit, isOws, listMembers, TCHAR } from './chars.ts'
import type { HeadReader } from './head-reader.ts'

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number
  status: number
  statusText: string
  /** Header fields in order, names as sent. */
  headers: [string, string][]
  /** Derived framing. */
  framing: Framing
  /** The upstream asked to close after this response (or spoke HTTP/1.0 without keep-alive). */
  closeAfter: boolean
  /**
   * How long the upstream says it keeps the connection open when idle, ms: the `timeout`
   * parameter of its Keep-Alive field (RFC 2068 §19.7.1.1; Node.js, Apache and others send it).
   * Undefined when it says none.
   */
  keepAliveTimeoutMs?: number
  /** The bytes it was parsed from, where a head was read off a socket (parseResponseHeadBytes). */
  raw?: RawFields
}

/** A parsed head's own bytes and where its fields lie in them: what forwarding copies from. */
export interface RawFields {
  /** The head without its blank line: bytes[0, end). */
  bytes: Buffer
  end: number
  /** Where the status line ends (its CRLF). */
  statusLineEnd: number
  /** Four offsets per field: name start, name end, value start, value end (the value without OWS). */
  spans: number[]
  /** The Connection fields' values, lower-case, joined with ", " ('' when none). */
  connection: string
  /**
   * Whether the Content-Length lines may be passed on as they came: at most one, plain digits,
   * no Transfer-Encoding beside it, and a status that may have one. When false, every
   * Content-Length line is left out, and `announcedLength` is what to send instead.
   */
  lengthVerbatim: boolean
  /**
   * The one Content-Length to send where the upstream's lines are not passed on (a list such as
   * "5, 5", or the same line twice: RFC 9110 §8.6 lets a recipient replace them with the one
   * value); undefined when none is to be sent (Transfer-Encoding overrides it, RFC 9112 §6.3;
   * 1xx and 204 never have one, RFC 9110 §8.6).
   */
  announcedLength: number | undefined
}

export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'close' }

export class ResponseParseError extends Error {
  override name = 'ResponseParseError'
}

/**
 * A head parsed from bytes: status and framing read at once; the reason phrase and the fields
 * become strings only when asked for (forwarding to an HTTP/1.1 client copies the bytes instead).
 */
class ParsedHead implements ResponseHead {
  private text: string | undefined
  private pairs: [string, string][] | undefined
  constructor(
    readonly minorVersion: number,
    readonly status: number,
    readonly framing: Framing,
    readonly closeAfter: boolean,
    readonly raw: RawFields,
    readonly keepAliveTimeoutMs: number | undefined,
  ) {}

  get statusText(): string {
    const r = this.raw
    return (this.text ??= r.statusLineEnd > 13 ? r.bytes.toString('latin1', 13, r.statusLineEnd) : '')
  }

  get headers(): [string, string][] {
    if (this.pairs) return this.pairs
    const { bytes, spans, lengthVerbatim, announcedLength } = this.raw
    const out: [string, string][] = []
    for (let i = 0; i < spans.length; i += 4) {
      if (!lengthVerbatim && spans[i + 1]! - spans[i]! === 14 && bytesEqualLower(bytes, spans[i]!, spans[i + 1]!, 'content-length')) continue
      out.push([bytes.toString('latin1', spans[i]!, spans[i + 1]!), bytes.toString('latin1', spans[i + 2]!, spans[i + 3]!)])
    }
    if (announcedLength !== undefined) out.push(['content-length', String(announcedLength)])
    return (this.pairs = out)
  }
}

/** Response heads larger than this are refused (nginx's default proxy_buffer_size is far lower). */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024

/**
 * Interim (1xx) heads accepted before the final one; more is a misbehaving upstream (a 502).
 * Each is relayed as it comes, so without a bound an upstream could queue heads for a client
 * that reads nothing until header_timeout (curl gives up past 300 KiB of heads, 1xx included).
 */
export const MAX_INTERIM_HEADS = 16

/**
 * Why a 1xx head is refused (a 502), given how many interim heads came before it; undefined when
 * it is relayed (or, answering an `upgrade`, when it is the 101 that switches). HTTP/1.0 has no 1xx
 * (RFC 9110 §15.2) and no Upgrade (§7.8): a head claiming it is no valid interim or switch, and
 * what follows it cannot be trusted (HAProxy answers 502 too). Plain exchanges (exchange.ts) and
 * upgrades (upgrade/tunnel.ts) both ask here.
 */
export function interimRefusal(head: ResponseHead, before: number, upgrade = false): string | undefined {
  if (head.minorVersion === 0) return `upstream sent "${head.status}" with an HTTP/1.0 status line, which has no 1xx answers${upgrade ? ' and cannot switch protocols' : ''}; the upstream must ${upgrade ? 'answer the upgrade' : 'send interim answers'} as HTTP/1.1${upgrade ? '' : ', or none'}`
  if (head.status === 101) return upgrade ? undefined : 'unexpected 101 Switching Protocols'
  if (before >= MAX_INTERIM_HEADS) return `upstream sent more than ${MAX_INTERIM_HEADS} interim (1xx) answers`
  return undefined
}

/**
 * Why the bytes `held` for a response head are refused before it is parsed (a 502), or undefined
 * while it may still come right. `end` is where its CRLFCRLF is, or -1: the size limit holds for
 * a complete head too, since its blank line may come in the read that crosses the limit; an
 * unfinished head with a line ended by a bare LF and then the empty line will never end (RFC 9112
 * §2.2 lets a recipient refuse bare LF, and the parser does), so it is refused at once, as is one
 * whose first bytes cannot begin "HTTP/1." (the parser would refuse its status line). Called
 * only when the head is unfinished or over the limit (the common head is checked by one compare).
 */
export function unfinishedResponseHead(held: HeadReader, end: number): string | undefined {
  if (end >= 0 ? end + 4 > MAX_RESPONSE_HEAD_BYTES : held.size > MAX_RESPONSE_HEAD_BYTES) return 'response head too large'
  // A head whose lines end with a bare LF never gets its CRLFCRLF: refused now, not at header_timeout.
  if (end < 0 && held.bareLfEnd()) return 'response head lines end with a bare LF (they end with CRLF)'
  // Nor does one that cannot begin a status line (an HTTP/0.9 answer, another protocol's greeting).
  if (end < 0 && !beginsLikeHttp1(held.buffer, held.size)) return 'upstream answer does not begin with an HTTP/1.x status line'
  return undefined
}

const HTTP1_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e] // "HTTP/1."

/** Whether the first `size` bytes of `b` could begin "HTTP/1.": all of it when there are that many. */
function beginsLikeHttp1(b: Uint8Array, size: number): boolean {
  const n = Math.min(size, HTTP1_PREFIX.length)
  for (let i = 0; i < n; i++) if (b[i] !== HTTP1_PREFIX[i]) return false
  return true
}

/** `head` is the latin1 text of the head without the final CRLFCRLF. */
export function parseResponseHead(head: string, requestMethod: string): ResponseHead {
  return parseResponseHeadBytes(Buffer.from(head, 'latin1'), head.length, requestMethod)
}

/**
 * Parses bytes[0, end), the head without its final CRLFCRLF. Scanned by hand over the bytes (no
 * string for the whole head, none per field): it runs once per proxied response.
 */
export function parseResponseHeadBytes(bytes: Buffer, end: number, requestMethod: string, anyCoding = false): ResponseHead {
  const b = bytes
  const lineEnd = crlfAt(b, 0, end)
  // "HTTP/1.x SSS" then an optional " reason".
  const minorCh = b[7]!
  if (
    lineEnd < 12 ||
    !startsWithHttp1(b) ||
    !isDigit(minorCh) ||
    b[8] !== 0x20 ||
    !isDigit(b[9]!) ||
    !isDigit(b[10]!) ||
    !isDigit(b[11]!) ||
    (lineEnd > 12 && b[12] !== 0x20) ||
    hasBadByte(b, 12, lineEnd)
  ) {
    throw new ResponseParseError(`malformed status line: ${JSON.stringify(b.toString('latin1', 0, Math.min(lineEnd, 80)))}`)
  }
  // HTTP/1.2 to 1.9 are read as HTTP/1.1, the highest this parser implements (RFC 9110 §2.5), as requests are.
  const minorVersion = minorCh === 0x30 ? 0 : 1
  const status = (b[9]! - 0x30) * 100 + (b[10]! - 0x30) * 10 + (b[11]! - 0x30)
  // 0xx has no class (RFC 9110 §15): no client can be given it. (600-999 are invalid too, but a
  // client treats them as 5xx, §15: they are passed on.)
  if (status < 100) throw new ResponseParseError(`status ${b.toString('latin1', 9, 12)} is not a status code (they start at 100)`)
  const spans: number[] = []
  let contentLength: number | undefined
  /** Content-Length lines, and whether each was plain digits. */
  let lengthLines = 0
  let lengthPlain = true
  let transferEncoding: string | undefined
  let connection = ''
  let keepAliveTimeoutMs: number | undefined
  let pos = lineEnd + 2
  while (pos < end) {
    // One pass over the line: the name (token characters up to the colon), then the value up to
    // its CRLF, checked as it is scanned. Anything else takes the slow path for its error.
    const first = b[pos]!
    if (first === 0x0d && b[pos + 1] === 0x0a && pos + 1 < end) {
      pos += 2
      continue
    }
    if (first === 0x20 || first === 0x09) throw new ResponseParseError('obsolete line folding in response')
    let colon = pos
    for (let c = first; c < 128 && TCHAR[c] === 1 && colon < end; c = b[++colon]!);
    if (colon === pos || colon >= end || b[colon] !== 0x3a) throw badFieldLine(b, pos, end)
    let vs = colon + 1
    while (vs < end && isOws(b[vs]!)) vs++
    // Field values: visible ASCII, obs-text, SP and HTAB (RFC 9110 §5.5), as on the request side:
    // no control byte (an HTTP/2 client's parser refuses the whole answer for one).
    let lineStop = vs
    for (; lineStop < end; lineStop++) {
      const c = b[lineStop]!
      if ((c >= 0x20 && c !== 0x7f) || c === 0x09) continue
      if (c === 0x0d && b[lineStop + 1] === 0x0a && lineStop + 1 < end) break
      throw new ResponseParseError(`invalid character in header ${b.toString('latin1', pos, colon)}`)
    }
    let ve = lineStop
    while (ve > vs && isOws(b[ve - 1]!)) ve--
    const n = colon - pos
    if (n === 14 && bytesEqualLower(b, pos, colon, 'content-length')) {
      const digits = plainDigits(b, vs, ve)
      lengthLines++
      if (digits < 0) lengthPlain = false
      const got = digits >= 0 ? (contentLength !== undefined && contentLength !== digits ? 'conflict' : digits) : contentLengthOf(b.toString('latin1', vs, ve), contentLength)
      if (got === 'invalid') throw new ResponseParseError(`invalid Content-Length: ${JSON.stringify(b.toString('latin1', vs, ve))}`)
      if (got === 'conflict') throw new ResponseParseError('conflicting Content-Length values')
      contentLength = got
    } else if (n === 17 && bytesEqualLower(b, pos, colon, 'transfer-encoding')) {
      const value = b.toString('latin1', vs, ve)
      transferEncoding = transferEncoding ? `${transferEncoding}, ${value}` : value
    } else if (n === 10 && bytesEqualLower(b, pos, colon, 'connection')) {
      // The usual value, keep-alive, is recognised without a string made for it.
      const value = connection === '' && bytesEqualLower(b, vs, ve, 'keep-alive') ? 'keep-alive' : b.toString('latin1', vs, ve).toLowerCase()
      connection = connection ? `${connection}, ${value}` : value
    } else if (n === 10 && bytesEqualLower(b, pos, colon, 'keep-alive')) {
      keepAliveTimeoutMs = keepAliveTimeout(b.toString('latin1', vs, ve)) ?? keepAliveTimeoutMs
    }
    spans.push(pos, colon, vs, ve)
    pos = lineStop + 2
  }
  let closeAfter: boolean
  // The usual values, one token, are read without splitting the list.
  if (connection === 'keep-alive') closeAfter = false
  else if (connection === 'close') closeAfter = true
  else {
    const tokens = connection === '' ? NO_TOKENS : listMembers(connection)
    closeAfter = tokens.includes('close') || (minorVersion === 0 && !tokens.includes('keep-alive'))
  }
  let framing: Framing
  if (requestMethod === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    framing = NO_BODY
  } else if (transferEncoding !== undefined) {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a final coding other than
    // chunked means the body ends at close.
    const codings = listMembers(transferEncoding)
    // Strict like the request side: "chunked\xa0" is neither chunked nor read-until-close here,
    // because another parser on the path may strip the NBSP (RFC 9110 §5.6.3: OWS is SP/HTAB).
    if (!allTokens(codings)) throw new ResponseParseError(`invalid Transfer-Encoding: ${JSON.stringify(transferEncoding)}`)
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means its framing is faulty.
    if (minorVersion === 0) throw new ResponseParseError('Transfer-Encoding in an HTTP/1.0 response (its framing is faulty, RFC 9112 §6.1)')
    // Only chunked is relayed. A body in another coding (gzip, or gzip then chunked) would reach
    // the client without the coding named, as bytes it cannot read: refused, as nginx does. A
    // client that only counts the bytes (the bench, `anyCoding`) reads what RFC 9112 §6.3 says:
    // chunked last is chunked framing, any other coding last is a body that ends at close.
    const last = codings[codings.length - 1]
    if (!anyCoding && (codings.length !== 1 || last !== 'chunked')) throw new ResponseParseError(`unsupported Transfer-Encoding from the upstream: ${JSON.stringify(transferEncoding)} (only chunked is relayed)`)
    // RFC 9112 §6.1: chunked is never applied twice.
    if (anyCoding && codings.indexOf('chunked') !== codings.lastIndexOf('chunked')) throw new ResponseParseError(`invalid Transfer-Encoding: ${JSON.stringify(transferEncoding)} (chunked applied twice)`)
    framing = last === 'chunked' ? { kind: 'chunked' } : { kind: 'close' }
    if (contentLength !== undefined || last !== 'chunked') closeAfter = true
  } else if (contentLength !== undefined) {
    framing = contentLength === 0 ? NO_BODY : { kind: 'length', length: contentLength }
  } else {
    framing = { kind: 'close' }
    closeAfter = true
  }
  // Content-Length passes on as it came only where it is one plain value that means something.
  const lengthAllowed = transferEncoding === undefined && status !== 204 && (status < 100 || status >= 200)
  const lengthVerbatim = lengthLines === 0 || (lengthAllowed && lengthLines === 1 && lengthPlain)
  const announcedLength = !lengthVerbatim && lengthAllowed ? contentLength : undefined
  return new ParsedHead(minorVersion, status, framing, closeAfter, { bytes, end, statusLineEnd: lineEnd, spans, connection, lengthVerbatim, announcedLength }, keepAliveTimeoutMs)
}

/**
 * The `timeout` parameter of a Keep-Alive field value ("timeout=5, max=100"), ms: whole seconds,
 * plain or quoted; undefined when there is none or it is not a number of seconds.
 */
export function keepAliveTimeout(value: string): number | undefined {
  for (const param of value.split(',')) {
    const eq = param.indexOf('=')
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'timeout') continue
    const m = /^"?(\d{1,9})"?$/.exec(param.slice(eq + 1).trim())
    return m ? Number(m[1]) * 1000 : undefined
  }
  return undefined
}

const NO_BODY: Framing = { kind: 'none' }

/** Why a header line that the fast scan stopped on is refused: no colon in it, or a name that is not a token. */
function badFieldLine(b: Buffer, pos: number, end: number): ResponseParseError {
  const lineStop = crlfAt(b, pos, end)
  let colon = pos
  while (colon < lineStop && b[colon] !== 0x3a) colon++
  if (colon === pos || colon >= lineStop) return new ResponseParseError(`malformed header line: ${JSON.stringify(b.toString('latin1', pos, Math.min(lineStop, pos + 80)))}`)
  return new ResponseParseError(`invalid header name: ${JSON.stringify(b.toString('latin1', pos, Math.min(colon, pos + 80)))}`)
}

/** bytes[from, to) as a number when it is 1 to 15 digits and nothing else; -1 otherwise. */
function plainDigits(b: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1
  let n = 0
  for (let i = from; i < to; i++) {
    const c = b[i]! - 0x30
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n
}

const NO_TOKENS: string[] = []

/** "HTTP/1." exactly (the version's name is case-sensitive, RFC 9112 §2.3). */
function startsWithHttp1(b: Uint8Array): boolean {
  return b[0] === 0x48 && b[1] === 0x54 && b[2] === 0x54 && b[3] === 0x50 && b[4] === 0x2f && b[5] === 0x31 && b[6] === 0x2e
}

/** A control byte but HTAB in bytes[from, to): not in a reason phrase (RFC 9112 §4: HTAB, SP, VCHAR, obs-text). */
function hasBadByte(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true
  }
  return false
}
