/**
 * Writing an HTTP/1.1 request head for an upstream (RFC 9112 §3): the request line, the header
 * fields as given, the framing lines the caller chose (Content-Length or chunked), the blank
 * line, and a small whole body after it, all in one array sent in one write.
 */
import { putFieldLine, putLatin1, putRange } from '../lib/bytes.ts'

/**
 * Field lines copied as they came from a client's request head: [start, end) byte ranges of
 * `bytes`, each a run of whole lines with their CRLFs (proxy/headers.ts picks them).
 */
export interface ForwardedLines {
  bytes: Uint8Array
  ranges: readonly number[]
  /** Whole lines of the proxy's own (X-Forwarded-*, kept per client connection) that follow the client's. */
  own?: Uint8Array
}

/**
 * `framing` is the framing header lines, each ending in CRLF ('' for none); `body` goes after the
 * head in the same array. Written byte by byte from the strings: no joined string, no second copy.
 * `lines`, when given, go right after the first of `headers` (Host), their `own` lines after them.
 */
export function encodeRequestHead(method: string, target: string, headers: readonly (readonly [string, string])[], framing: string, body?: Uint8Array, lines?: ForwardedLines): Uint8Array {
  // "METHOD SP target SP HTTP/1.1 CRLF", "name: value CRLF" each, framing, CRLF.
  let length = method.length + target.length + 12 + framing.length + 2
  for (const [name, value] of headers) length += name.length + value.length + 4
  const ranges = lines?.ranges
  if (ranges !== undefined) for (let r = 0; r < ranges.length; r += 2) length += ranges[r + 1]! - ranges[r]!
  const own = lines?.own
  if (own !== undefined) length += own.byteLength
  const bodyLength = body ? body.byteLength : 0
  const out = new Uint8Array(length + bodyLength)
  let at = putLatin1(out, 0, method)
  out[at++] = 0x20
  at = putLatin1(out, at, target)
  at = putLatin1(out, at, ' HTTP/1.1\r\n')
  // The first field (Host), the client's lines and the proxy's own, then the rest.
  const first = Math.min(1, headers.length)
  for (let h = 0; h < first; h++) at = putFieldLine(out, at, headers[h]![0], headers[h]![1])
  if (lines !== undefined) at = putRanges(out, at, lines.bytes, lines.ranges)
  if (own !== undefined) {
    out.set(own, at)
    at += own.byteLength
  }
  for (let h = first; h < headers.length; h++) at = putFieldLine(out, at, headers[h]![0], headers[h]![1])
  at = putLatin1(out, at, framing)
  out[at++] = 0x0d
  out[at++] = 0x0a
  if (body && bodyLength > 0) out.set(body, at)
  return out
}

/** Copies the ranges of `bytes` (the client's read) into `out`, without a view of the read (putRange). */
function putRanges(out: Uint8Array, at: number, bytes: Uint8Array, ranges: readonly number[]): number {
  for (let r = 0; r < ranges.length; r += 2) at = putRange(out, at, bytes, ranges[r]!, ranges[r + 1]!)
  return at
}
