/**
 * Parsing an upstream's HTTP/1.x response head (RFC 9112 §4–§6): status line, header fields,
 * and the body framing they imply. Pure; the connection state machine is in http1.ts.
 */
import { allTokens, contentLength as contentLengthOf, isOws, isToken, listMembers } from './chars.ts'

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
 * `head` is the latin1 text of the head without the final CRLFCRLF. Hand-scanned (no split, no
 * per-line regex): it runs once per proxied response.
 */
export function parseResponseHead(head: string, requestMethod: string): ResponseHead {
  let lineEnd = head.indexOf('\r\n')
  if (lineEnd < 0) lineEnd = head.length
  // "HTTP/1.x SSS" then an optional " reason".
  const minorCh = head.charCodeAt(7)
  if (
    lineEnd < 12 ||
    !head.startsWith('HTTP/1.') ||
    (minorCh !== 0x30 && minorCh !== 0x31) ||
    head.charCodeAt(8) !== 0x20 ||
    !isDigit(head.charCodeAt(9)) ||
    !isDigit(head.charCodeAt(10)) ||
    !isDigit(head.charCodeAt(11)) ||
    (lineEnd > 12 && head.charCodeAt(12) !== 0x20) ||
    hasBadChar(head, 12, lineEnd)
  ) {
    throw new ResponseParseError(`malformed status line: ${JSON.stringify(head.slice(0, Math.min(lineEnd, 80)))}`)
  }
  const minorVersion = minorCh - 0x30
  const status = (head.charCodeAt(9) - 0x30) * 100 + (head.charCodeAt(10) - 0x30) * 10 + (head.charCodeAt(11) - 0x30)
  const statusText = lineEnd > 13 ? head.slice(13, lineEnd) : ''
  const headers: [string, string][] = []
  let contentLength: number | undefined
  let transferEncoding: string | undefined
  let connection = ''
  let pos = lineEnd + 2
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos)
    if (end < 0) end = head.length
    if (end === pos) {
      pos += 2
      continue
    }
    const first = head.charCodeAt(pos)
    if (first === 0x20 || first === 0x09) throw new ResponseParseError('obsolete line folding in response')
    const colon = head.indexOf(':', pos)
    if (colon <= pos || colon >= end) throw new ResponseParseError(`malformed header line: ${JSON.stringify(head.slice(pos, Math.min(end, pos + 80)))}`)
    if (!isToken(head, pos, colon)) throw new ResponseParseError(`invalid header name: ${JSON.stringify(head.slice(pos, Math.min(colon, pos + 80)))}`)
    const name = head.slice(pos, colon)
    let vs = colon + 1
    let ve = end
    while (vs < ve && isOws(head.charCodeAt(vs))) vs++
    while (ve > vs && isOws(head.charCodeAt(ve - 1))) ve--
    // Field values: visible ASCII, obs-text, SP and HTAB; never CR, LF or NUL (RFC 9110 §5.5).
    if (hasBadChar(head, vs, ve)) throw new ResponseParseError(`invalid character in header ${name}`)
    const value = head.slice(vs, ve)
    const n = name.length
    if (n === 14 || n === 17 || n === 10) {
      const lower = name.toLowerCase()
      if (lower === 'content-length') {
        const n = contentLengthOf(value, contentLength)
        if (n === 'invalid') throw new ResponseParseError(`invalid Content-Length: ${JSON.stringify(value)}`)
        if (n === 'conflict') throw new ResponseParseError('conflicting Content-Length values')
        contentLength = n
      } else if (lower === 'transfer-encoding') {
        transferEncoding = transferEncoding ? `${transferEncoding}, ${value}` : value
      } else if (lower === 'connection') {
        connection = connection ? `${connection}, ${value.toLowerCase()}` : value.toLowerCase()
      }
    }
    headers.push([name, value])
    pos = end + 2
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
    framing = { kind: 'none' }
  } else if (transferEncoding !== undefined) {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a final coding other than
    // chunked means the body ends at close.
    const codings = listMembers(transferEncoding)
    // Strict like the request side: "chunked\xa0" is neither chunked nor read-until-close here,
    // because another parser on the path may strip the NBSP (RFC 9110 §5.6.3: OWS is SP/HTAB).
    if (!allTokens(codings)) throw new ResponseParseError(`invalid Transfer-Encoding: ${JSON.stringify(transferEncoding)}`)
    if (codings[codings.length - 1] === 'chunked') framing = { kind: 'chunked' }
    else {
      framing = { kind: 'close' }
      closeAfter = true
    }
    if (contentLength !== undefined) closeAfter = true
  } else if (contentLength !== undefined) {
    framing = contentLength === 0 ? { kind: 'none' } : { kind: 'length', length: contentLength }
  } else {
    framing = { kind: 'close' }
    closeAfter = true
  }
  return { minorVersion, status, statusText, headers, framing, closeAfter }
}

const NO_TOKENS: string[] = []

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** NUL, CR or LF in head[from, to). */
function hasBadChar(head: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = head.charCodeAt(i)
    if (c === 0x00 || c === 0x0d || c === 0x0a) return true
  }
  return false
}
