/**
 * Checks on a parsed client request that the runtime's HTTP parser does not make, done before anything
 * is sent upstream: CONNECT (no open proxy), a Host header that is not one valid host[:port]
 * (several Host headers arrive joined with ","), and an absolute-form target whose authority is
 * not the Host (RFC 9112 §3.2.2: we and the origin must not read the request differently), a head
 * over max_header_size (Deno.serve's own limit is larger), a non-ASCII target or one with a backslash in its path, a GET/HEAD body the runtime dropped, and a transfer coding other than chunked.
 * Everything else malformed (CL+TE, bad chunking, obs-fold, bare CR, control characters, huge
 * heads) Bun's parser already refuses with 400/431; test/integration/hardening.test.ts proves it.
 * Used by the runtime front (downstream/runtime-front.ts) only: the own listener's parser (http1/request-head.ts)
 * makes these checks itself.
 */
import { backslashInPath, isHostValue } from '../../http1/chars.ts'
import type { FailureCode } from '../errors.ts'

const VISIBLE_ASCII = /^[\x21-\x7e]*$/

function hasBody(contentLength: string | null): boolean {
  return contentLength !== null && contentLength !== '0'
}

export interface Rejection {
  code: FailureCode
  reason: string
}

/**
 * The request head's size as the client sent it, near enough: its request line and each field
 * line ("name: value" and CRLF), and the blank line. Repeated fields arrive joined with ", ", two bytes fewer each.
 */
function headBytes(req: Request): number {
  // The URL is absolute here; the request line carried its path and query only (the authority is Host's).
  const url = req.url
  const path = url.indexOf('/', url.indexOf('//') + 2)
  let n = req.method.length + (path < 0 ? 1 : url.length - path) + 14 // " ", " HTTP/1.1\r\n", the blank line
  for (const [name, value] of req.headers) n += name.length + value.length + 4
  return n
}

export function checkRequest(req: Request, maxHeaderBytes = 0): Rejection | undefined {
  if (req.method === 'CONNECT') return { code: 'METHOD_NOT_ALLOWED', reason: 'CONNECT is not supported: this is not an open proxy' }
  // Deno.serve keeps its own head limit (about 64 KiB on HTTP/1.1, 16 KiB on HTTP/2), not
  // max_header_size: a 60,000-byte field was forwarded. Held to max_header_size here, as the
  // own listener holds it (431).
  if (maxHeaderBytes > 0 && headBytes(req) > maxHeaderBytes) return { code: 'HEAD_TOO_LARGE', reason: `request head larger than max_header_size (${maxHeaderBytes} bytes)` }
  // The target is URI syntax, visible ASCII only (RFC 9112 §3.2), as the own listener requires.
  // Deno.serve passes raw UTF-8 bytes through, re-encoded (measured: "/caf\xc3\xa9" arrives as
  // "/cafÃƒÂ©"), so forwarding it would send the origin a different target than the client's.
  if (!VISIBLE_ASCII.test(req.url)) return { code: 'BAD_REQUEST', reason: 'non-ASCII or control byte in the request target; percent-encode it (RFC 3986 §2.1)' }
  // A fragment is no part of a request target (RFC 9112 §3.2: origin-form is absolute-path and query).
  // Deno.serve keeps "#..." in req.url on HTTP/1.1, where the route match resolved "/dead/x#/../../ng/y"
  // to /ng/y and the origin read /dead/x: one route's path reached another's upstream (seventeenth round).
  if (req.url.includes('#')) return { code: 'BAD_REQUEST', reason: 'a request target cannot carry a fragment' }
  // Deno.serve hands a backslash over as it came (measured on 2.9.6: "http://a/a\..\admin"); a
  // URL parser upstream would read it as "/" (http1/chars.ts).
  if (backslashInPath(req.url)) return { code: 'BAD_REQUEST', reason: 'a backslash in the request path (no URI has one; URL parsers read it as "/")' }
  // Deno.serve gives a GET or HEAD request no body (req.body is null) even when the client sent
  // one; forwarding the request without it would change its meaning, so it is refused instead.
  if (req.body === null && (hasBody(req.headers.get('content-length')) || req.headers.has('transfer-encoding'))) {
    return { code: 'NOT_IMPLEMENTED', reason: `a ${req.method} request body cannot be forwarded by this runtime's server (it drops it); run the Bun build` }
  }
  // Only chunked is a transfer coding we read (RFC 9112 §6.1, as the own listener: 501 for any
  // other). The runtime's parser takes "gzip, chunked" and hands over the chunked-decoded bytes,
  // still gzip-coded, with the coding dropped: forwarded, the origin would read them as plain.
  const te = req.headers.get('transfer-encoding')
  if (te !== null && te.trim().toLowerCase() !== 'chunked') return { code: 'NOT_IMPLEMENTED', reason: `unsupported Transfer-Encoding "${te}"; only chunked is accepted` }
  const host = req.headers.get('host')
  if (host === null) return undefined // HTTP/1.0 without Host: allowed; the upstream's host is sent
  if (!isHostValue(host)) return { code: 'BAD_REQUEST', reason: 'invalid or repeated Host header' }
  // Where the runtime keeps an absolute-form target's authority in req.url (Deno), a mismatch
  // with Host means the target names another authority. Bun rewrites absolute-form targets to
  // origin-form with the Host header's authority before we see them, so on Bun the request is
  // read one way only (Host), and that is what the upstream receives.
  const url = req.url
  const start = url.indexOf('//') + 2
  if (url.startsWith(host, start)) {
    // The usual case, compared without copying: the authority is exactly the Host.
    const next = url.charCodeAt(start + host.length)
    if (Number.isNaN(next) || next === 0x2f || next === 0x3f) return undefined // end, "/" or "?"
  }
  let end = url.indexOf('/', start)
  if (end < 0) end = url.length
  const q = url.indexOf('?', start)
  if (q >= 0 && q < end) end = q
  if (url.slice(start, end).toLowerCase() !== host.toLowerCase()) return { code: 'BAD_REQUEST', reason: 'request target names another host than the Host header' }
  return undefined
}
