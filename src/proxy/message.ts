/**
 * The request and reply shapes the proxy's request path works on, independent of the listener:
 * Bun.serve / Deno.serve hand over Request objects that are adapted to these, the proxy's own
 * HTTP/1.1 listener (http1-listener.ts) builds them straight from the bytes it parsed.
 */
import type { EncodedHead } from '../http1/response-encode.ts'

/** What the request path reads of request headers; a Headers object is one. Names are lower-case. */
export interface HeaderReader {
  get(name: string): string | null
  forEach(fn: (value: string, name: string) => void): void
}

export interface ProxyRequest {
  method: string
  /** origin-form target: path and query. */
  target: string
  headers: HeaderReader
  /** A body that arrived whole, a stream of it, or none. */
  body: Uint8Array | ReadableStream<Uint8Array> | null
  /** The request id, once the request path has given it one (answers the listener makes later reuse it). */
  id?: string
}

/**
 * A request the listener refuses before it is whole, as the access log shows it: its method and
 * target when its request line was read (a bad field after it), else "-"; Host when known
 * (an HTTP/2 head's :authority, read before its cap), else "-".
 */
export function unparsedRequest(line?: { method: string; target: string; host?: string }): ProxyRequest {
  const host = line?.host ?? '-'
  return { method: line?.method ?? '-', target: line?.target ?? '-', headers: { get: (name) => (name === 'host' ? host : null), forEach() {} }, body: null }
}

export interface ProxyReply {
  status: number
  statusText: string
  headers: [string, string][]
  body: Uint8Array | string | ReadableStream<Uint8Array> | null
}

/**
 * Where the request path hands a request's reply: the listener that writes it. `answer` is called
 * once with the reply (synchronously, from the event that decided it: a listener that must not
 * write from inside its own dispatch defers it); `failed` instead, for a bug on the path (the
 * listener answers 500).
 */
export interface ReplySink {
  answer(reply: ProxyReply): void
  failed(err: unknown): void
  /**
   * Where the listener keeps the request in flight (a sink that declares it: the own listener's
   * connections, HTTP/2 streams), to tell it the client left before any answer (an upstream
   * request then aborted and logged 499, as nginx does, rather than run to its end).
   */
  inFlight?: GoneListener | undefined
  /**
   * The request's record is ready before its reply reached the socket: a sink that keeps it
   * (true; the own HTTP/1.1 listener) calls `of.written` once the socket took the reply's last
   * byte, or the connection ended first, so that the record says what was sent. The own HTTP/2
   * listener keeps it until the stream ends: the body all in DATA frames, or cut first (reset, the
   * connection gone) with what the client's windows held back.
   */
  holdRecord?(of: GoneListener): boolean
}

/** What cut a reply whose record a sink held (holdRecord). */
export type WriteCut = 'CLIENT_GONE' | 'CLIENT_SEND_TIMEOUT'

export interface GoneListener {
  /** The request's id, for an answer the listener makes on its behalf (a drain's end). */
  readonly requestId: string
  clientGone(): void
  /**
   * The listener refused the request itself once the request path had it (HTTP/2 trailers above
   * the cap): it sent `status` (0: none, the answer had begun). Recorded as that refusal, with
   * the code HTTP/1.1 records for the same (a chunked trailer section too large).
   */
  refused(code: 'BAD_BODY', status: number, detail?: string): void
  /**
   * A held record's reply was written whole (`cut` undefined), or cut with its last `unsentBytes`
   * never taken by the socket, or (HTTP/2, the stream gone before the record) after `framedBytes`.
   */
  written(unsentBytes: number, cut: WriteCut | undefined, framedBytes?: number): void
}

/**
 * A reply that can write its own HTTP/1.1 head (and whole body after it) as bytes, copied from
 * what it was made of: an upstream's answer (forwarded-reply.ts), a stored one
 * (cache/stored-reply.ts). Undefined means: write it from its list of fields. The answer may be
 * one object filled again by the next call (http1/response-encode.ts sharedEncodedHead): the
 * writer reads it at once.
 */
export interface SelfEncodingReply extends ProxyReply {
  encodeHead(method: string, minor: number, closeAsked: boolean, body: Uint8Array | undefined): EncodedHead | undefined
  /**
   * The head with the whole body after it, where the reply holds that body in bytes it was made
   * of (forwarded-reply.ts: still in the upstream's read), without `body` being asked for (which
   * would make an array of it); undefined otherwise.
   */
  encodeWhole?(method: string, minor: number, closeAsked: boolean): EncodedHead | undefined
}

/** Adapts a listener's Request (Bun.serve, Deno.serve) to a ProxyRequest. */
export function fromRequest(req: Request): ProxyRequest {
  // The runtime gives an absolute URL; the origin-form target is everything after the authority.
  const url = req.url
  const authorityStart = url.indexOf('//') + 2
  const pathStart = url.indexOf('/', authorityStart)
  const target = pathStart < 0 ? '/' : url.slice(pathStart)
  const headers = req.headers
  // Over HTTP/2, Deno.serve keeps the client's :authority in the URL and gives no Host field: it
  // becomes Host, as RFC 9113 §8.3.1 says. A request without Host on HTTP/1.x gets a URL of
  // "localhost:<port>" from Deno: that one stays absent (the upstream's own name is sent).
  if (headers.get('host') === null) {
    const authority = url.slice(authorityStart, pathStart < 0 ? url.length : pathStart)
    if (authority !== '' && !authority.startsWith('localhost:') && authority !== 'localhost') return { method: req.method, target, headers: withHost(headers, authority), body: req.body }
  }
  return { method: req.method, target, headers, body: req.body }
}

/** A header reader that adds `host` to headers that have none. */
function withHost(headers: HeaderReader, host: string): HeaderReader {
  return {
    get: (name) => (name === 'host' ? host : headers.get(name)),
    forEach(fn) {
      fn(host, 'host')
      headers.forEach(fn)
    },
  }
}

/**
 * A ProxyReply as a Response, for Bun.serve and Deno.serve. An empty string body goes as none: a
 * Response made from a string gets `Content-Type: text/plain;charset=UTF-8` the reply never had
 * (the OPTIONS answer at Max-Forwards 0, max-forwards.ts); with none it is `Content-Length: 0` only.
 * A status that has no content (204, 205, 304: RFC 9110 §15.3.5, §15.3.6, §15.4.5) goes with
 * none, whatever an upstream sent with it (its stream is cancelled): the Response constructor
 * throws for a body there, which made a 500 of an upstream's 205 with a chunked body on Deno.
 */
export function toResponse(reply: ProxyReply): Response {
  let body = reply.body === '' ? null : reply.body
  if (body !== null && (reply.status === 204 || reply.status === 205 || reply.status === 304)) {
    if (body instanceof ReadableStream) body.cancel().catch(() => {})
    body = null
  }
  return new Response(body as ConstructorParameters<typeof Response>[0], { status: reply.status, statusText: reply.statusText, headers: reply.headers })
}
