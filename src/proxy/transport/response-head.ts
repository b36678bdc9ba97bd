/**
 * Parsing an upstream's HTTP/1.x response head (RFC 9112 §4–§6): status line, header fields,
 * and the body framing they imply. Pure; the connection state machine is in http1.ts.
 */

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

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Field values: visible ASCII, obs-text, SP and HTAB; never CR, LF or NUL (RFC 9110 §5.5).
const BAD_VALUE = /[\0\r\n]/

/** `head` is the latin1 text of the head without the final CRLFCRLF. */
export function parseResponseHead(head: string, requestMethod: string): ResponseHead {
  const lines = head.split('\r\n')
  const statusLine = lines[0] ?? ''
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine)
  if (!m) throw new ResponseParseError(`malformed status line: ${JSON.stringify(statusLine.slice(0, 80))}`)
  const minorVersion = Number(m[1])
  const status = Number(m[2])
  const headers: [string, string][] = []
  let contentLength: number | undefined
  let transferEncoding: string | undefined
  let connection = ''
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.length === 0) continue
    if (line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09) throw new ResponseParseError('obsolete line folding in response')
    const colon = line.indexOf(':')
    if (colon <= 0) throw new ResponseParseError(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`)
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) throw new ResponseParseError(`invalid header name: ${JSON.stringify(name.slice(0, 80))}`)
    const value = line.slice(colon + 1).trim()
    if (BAD_VALUE.test(value)) throw new ResponseParseError(`invalid character in header ${name}`)
    const lower = name.toLowerCase()
    if (lower === 'content-length') {
      // Repeated identical values are allowed (RFC 9110 §8.6); differing ones are not.
      for (const part of value.split(',')) {
        const v = part.trim()
        if (!/^\d{1,15}$/.test(v)) throw new ResponseParseError(`invalid Content-Length: ${JSON.stringify(value)}`)
        const n = Number(v)
        if (contentLength !== undefined && contentLength !== n) throw new ResponseParseError('conflicting Content-Length values')
        contentLength = n
      }
    } else if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding ? `${transferEncoding}, ${value}` : value
    } else if (lower === 'connection') {
      connection = connection ? `${connection}, ${value.toLowerCase()}` : value.toLowerCase()
    }
    headers.push([name, value])
  }
  const tokens = connection.split(',').map((t) => t.trim())
  let closeAfter = tokens.includes('close') || (minorVersion === 0 && !tokens.includes('keep-alive'))
  let framing: Framing
  if (requestMethod === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    framing = { kind: 'none' }
  } else if (transferEncoding !== undefined) {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a final coding other than
    // chunked means the body ends at close.
    const codings = transferEncoding.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean)
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
  return { minorVersion, status, statusText: m[3] ?? '', headers, framing, closeAfter }
}
