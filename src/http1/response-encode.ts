/**
 * Writing an HTTP/1.1 response head (RFC 9112 §4 and §6): the status line, the headers as given
 * minus the framing ones, and the framing this connection needs (Content-Length, chunked, or the
 * close that ends an HTTP/1.0 body), plus Date where the headers have none (RFC 9110 §6.6.1).
 * Pure: the client connection decides what to send and when.
 */
import { Buffer } from 'node:buffer'
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

export function planResponseHead(r: HeadInput): HeadPlan {
  const noBody = isBodiless(r.method, r.status)
  const streamed = r.bodyLength === undefined
  let close = r.close
  let out = `HTTP/1.1 ${r.status} ${r.statusText || statusText(r.status)}\r\n`
  let lengthValue: string | undefined
  let hasDate = false
  for (const [name, value] of r.headers) {
    const n = name.length
    if (n === 4 && name.toLowerCase() === 'date') hasDate = true
    if (n === 10 && name.toLowerCase() === 'connection') {
      if (value.toLowerCase().includes('close')) close = true
      continue
    }
    if (n === 14 && name.toLowerCase() === 'content-length') {
      lengthValue = value
      // A stream keeps the upstream's length; a whole body gets its own below.
      if (streamed || noBody) out += `${name}: ${value}\r\n`
      continue
    }
    if (n === 17 && name.toLowerCase() === 'transfer-encoding') continue
    out += `${name}: ${value}\r\n`
  }
  if (!hasDate) out += `date: ${httpDateNow()}\r\n`
  let chunked = false
  if (!streamed) {
    if (!noBody) out += `content-length: ${r.bodyLength}\r\n`
  } else if (!noBody && lengthValue === undefined) {
    if (r.minor === 1) {
      chunked = true
      out += 'transfer-encoding: chunked\r\n'
    } else close = true // HTTP/1.0: the body ends when the connection does
  }
  if (close) out += 'connection: close\r\n\r\n'
  else out += r.minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n'
  return { text: out, chunked, close }
}

/** A whole response with a short text body, on a connection that then closes (refusals, tunnel failures). */
export function encodeClosingResponse(status: number, headers: readonly (readonly [string, string])[], body: string): Buffer {
  const bytes = Buffer.from(body, 'utf8')
  const plan = planResponseHead({ status, statusText: '', headers, method: 'GET', minor: 1, bodyLength: bytes.byteLength, close: true })
  return Buffer.concat([Buffer.from(plan.text, 'latin1'), bytes])
}

/** An interim (1xx) response head, sent ahead of the final one (RFC 9110 §15.2). */
export function encodeInterim(status: number, headers: readonly (readonly [string, string])[]): Buffer {
  let out = `HTTP/1.1 ${status} ${statusText(status)}\r\n`
  for (const [n, v] of headers) out += `${n}: ${v}\r\n`
  return Buffer.from(`${out}\r\n`, 'latin1')
}
