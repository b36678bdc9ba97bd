/**
 * Writing an HTTP/1.1 request head for an upstream (RFC 9112 §3): the request line, the header
 * fields as given, the framing lines the caller chose (Content-Length or chunked), the blank
 * line, and a small whole body after it, all in one array sent in one write.
 */
import { putFieldLine, putLatin1 } from '../lib/bytes.ts'

/**
 * `framing` is the framing header lines, each ending in CRLF ('' for none); `body` goes after the
 * head in the same array. Written byte by byte from the strings: no joined string, no second copy.
 */
export function encodeRequestHead(method: string, target: string, headers: readonly (readonly [string, string])[], framing: string, body?: Uint8Array): Uint8Array {
  // "METHOD SP target SP HTTP/1.1 CRLF", "name: value CRLF" each, framing, CRLF.
  let length = method.length + target.length + 12 + framing.length + 2
  for (const [name, value] of headers) length += name.length + value.length + 4
  const bodyLength = body ? body.byteLength : 0
  const out = new Uint8Array(length + bodyLength)
  let at = putLatin1(out, 0, method)
  out[at++] = 0x20
  at = putLatin1(out, at, target)
  at = putLatin1(out, at, ' HTTP/1.1\r\n')
  for (const [name, value] of headers) at = putFieldLine(out, at, name, value)
  at = putLatin1(out, at, framing)
  out[at++] = 0x0d
  out[at++] = 0x0a
  if (body && bodyLength > 0) out.set(body, at)
  return out
}
