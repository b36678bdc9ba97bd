/**
 * Writing an HTTP/1.1 response head (RFC 9112 §4 and §6): the status line, the headers as given
 * minus the framing ones, and the framing this connection needs (Content-Length, chunked, or the
 * close that ends an HTTP/1.0 body), plus Date where the headers have none (RFC 9110 §6.6.1).
 * Pure: the client connection decides what to send and when.
 */
import { Buffer } from 'node:buffer'
import { putFieldLine, putLatin1 } from '../lib/bytes.ts'
import { httpDateNow } from '../lib/clock.ts'
import { statusText } from './status-text.ts'

export interface HeadPlan {
  /** The head, with its final blank line. */
  text: string
  /** The body goes out with chunked framing. */
  chunked: boolean
  /** The connection closes after this response. */
  close: boolean
}

export interface HeadInput {
  status: number
  statusText: string
  headers: readonly (readonly [string, string])[]
  /** The request method (HEAD gets no body) and HTTP minor version (1.0 has no chunked). */
  method: string
  minor: number
  /** The body: its length when known (a whole body), or undefined for a stream. */
  bodyLength: number | undefined
  /** The connection is already to close after this response. */
  close: boolean
}

/** Whether a response to `method` with `status` carries no body (RFC 9110 §6.4.1). */
export function isBodiless(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || status < 200
}

/** A response head as bytes (and a whole body after it, when one was given), with the framing chosen. */
export interface EncodedHead {
  bytes: Uint8Array
  /** The body goes out with chunked framing. */
  chunked: boolean
  /** The connection closes after this response. */
  close: boolean
}

/** sharedEncodedHead's answer. */
const ENCODED: EncodedHead = { bytes: new Uint8Array(0), chunked: false, close: false }

/**
 * An encoded head in one object filled again by each call, for encoders whose caller reads it at
 * once (a self-encoding reply's writer: proxy/message.ts SelfEncodingReply), not one per head.
 */
export function sharedEncodedHead(bytes: Uint8Array, end: HeadEnd): EncodedHead {
  ENCODED.bytes = bytes
  ENCODED.chunked = end.chunked
  ENCODED.close = end.close
  return ENCODED
}

/** What follows a head's fields (planResponseHead's rules), for every encoder of a head. */
export interface HeadEnd {
  /** The Date value to add ('' when the fields have one). */
  date: string
  /** A whole body's Content-Length to add ('' for none). */
  length: string
  chunked: boolean
  close: boolean
  /** The connection line (where one is needed) and the blank line. */
  last: string
  /** Bytes it takes, the body not counted. */
  size: number
}

/** headEnd's answer: one object, filled again by each call (an encoder reads it before the next head is encoded). */
const END: HeadEnd = { date: '', length: '', chunked: false, close: false, last: '', size: 0 }

/**
 * After the fields: Date where they have none (RFC 9110 §6.6.1), a whole body's own
 * Content-Length (`wholeLength`; undefined for a stream), chunked for a stream without a listed
 * length (`listedLength`) to an HTTP/1.1 client, a close for one to an HTTP/1.0 client (RFC 9112 §6).
 * The answer is valid until the next call: read it at once, as every encoder of a head does.
 */
export function headEnd(hasDate: boolean, noBody: boolean, wholeLength: number | undefined, listedLength: boolean, minor: number, closeAsked: boolean): HeadEnd {
  const streamed = wholeLength === undefined
  const date = hasDate ? '' : httpDateNow()
  const length = !streamed && !noBody ? String(wholeLength) : ''
  let close = closeAsked
  let chunked = false
  if (streamed && !noBody && !listedLength) {
    if (minor === 1) chunked = true
    else close = true // HTTP/1.0: the body ends when the connection does
  }
  const last = close ? 'connection: close\r\n\r\n' : minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n'
  const size = (date === '' ? 0 : 8 + date.length) + (length === '' ? 0 : 18 + length.length) + (chunked ? 28 : 0) + last.length
  END.date = date
  END.length = length
  END.chunked = chunked
  END.close = close
  END.last = last
  END.size = size
  return END
}

/** Writes `end` at `at`, then `body` when given (a whole body, for an answer that has one). */
export function putHeadEnd(out: Uint8Array, at: number, end: HeadEnd, body: Uint8Array | undefined): void {
  if (end.date !== '') at = putFieldLine(out, at, 'date', end.date)
  if (end.length !== '') at = putFieldLine(out, at, 'content-length', end.length)
  if (end.chunked) at = putLatin1(out, at, 'transfer-encoding: chunked\r\n')
  at = putLatin1(out, at, end.last)
  if (body !== undefined && body.byteLength > 0) out.set(body, at)
}

/** Which fields are written, per encodeResponseHead call (one at a time: the event loop runs one). */
let written = new Uint8Array(64)

/**
 * The head for `r` written straight into bytes (no joined string to flatten and encode again),
 * with `body` after it in the same array when given: a whole body sent with its head.
 */
export function encodeResponseHead(r: HeadInput, body?: Uint8Array): EncodedHead {
  const noBody = isBodiless(r.method, r.status)
  const streamed = r.bodyLength === undefined
  let close = r.close
  const status = String(r.status)
  const reason = r.statusText || statusText(r.status)
  // "HTTP/1.1 " status SP reason CRLF
  let size = 9 + status.length + 1 + reason.length + 2
  let lengthValue: string | undefined
  let hasDate = false
  const headers = r.headers
  if (written.length < headers.length) written = new Uint8Array(headers.length * 2)
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!
    const n = name.length
    let keep = 1
    if (n === 4 && name.toLowerCase() === 'date') hasDate = true
    else if (n === 10 && name.toLowerCase() === 'connection') {
      if (value.toLowerCase().includes('close')) close = true
      keep = 0
    } else if (n === 14 && name.toLowerCase() === 'content-length') {
      lengthValue = value
      // A stream keeps the upstream's length; a whole body gets its own below.
      if (!streamed && !noBody) keep = 0
    } else if (n === 17 && name.toLowerCase() === 'transfer-encoding') keep = 0
    written[i] = keep
    if (keep === 1) size += n + value.length + 4
  }
  const end = headEnd(hasDate, noBody, r.bodyLength, lengthValue !== undefined, r.minor, close)
  size += end.size
  const bodyBytes = body !== undefined && !noBody ? body.byteLength : 0
  const out = new Uint8Array(size + bodyBytes)
  let at = putLatin1(out, 0, 'HTTP/1.1 ')
  at = putLatin1(out, at, status)
  out[at++] = 0x20
  at = putLatin1(out, at, reason)
  out[at++] = 0x0d
  out[at++] = 0x0a
  for (let i = 0; i < headers.length; i++) {
    if (written[i] === 0) continue
    const [name, value] = headers[i]!
    at = putFieldLine(out, at, name, value)
  }
  putHeadEnd(out, at, end, bodyBytes > 0 ? body : undefined)
  return { bytes: out, chunked: end.chunked, close: end.close }
}

/** The same head as text (for tests that read it). */
export function planResponseHead(r: HeadInput): HeadPlan {
  const { bytes, chunked, close } = encodeResponseHead(r)
  return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'), chunked, close }
}

/** A whole response with a short text body, on a connection that then closes (refusals, tunnel failures). */
export function encodeClosingResponse(status: number, headers: readonly (readonly [string, string])[], body: string): Uint8Array {
  const bytes = Buffer.from(body, 'utf8')
  return encodeResponseHead({ status, statusText: '', headers, method: 'GET', minor: 1, bodyLength: bytes.byteLength, close: true }, bytes).bytes
}

/** An interim (1xx) response head, sent ahead of the final one (RFC 9110 §15.2). */
export function encodeInterim(status: number, headers: readonly (readonly [string, string])[]): Buffer {
  let out = `HTTP/1.1 ${status} ${statusText(status)}\r\n`
  for (const [n, v] of headers) out += `${n}: ${v}\r\n`
  return Buffer.from(`${out}\r\n`, 'latin1')
}
