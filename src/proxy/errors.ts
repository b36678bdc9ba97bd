/**
 * The proxy's one error vocabulary for requests, and the one place where a failure becomes the
 * HTTP status of a reply the proxy makes itself (as Caddy's statusError does), with the reason
 * written down. Codes are stable: the access log's `error` field, tests and scripts match on them.
 * The wire parser (http1/) and the socket layer (runtime/) raise codes of this same vocabulary;
 * CLI and config errors (E_*, lib/errors.ts) are a different matter: they become exit codes.
 */
import type { HeadErrorCode } from '../http1/request-head.ts'
import type { DialErrorCode } from '../runtime/dial-errors.ts'
import type { ProxyReply } from './message.ts'

export type FailureCode =
  // The upstream side. Connect failures come from runtime/socket.ts under the same names.
  | DialErrorCode // CONNECT_REFUSED, CONNECT_TIMEOUT, CONNECT_FAILED, TLS_FAILED, NO_FILE_DESCRIPTORS (the proxy's own, not the address's)
  | 'RESET_BEFORE_RESPONSE' // the connection closed before any response byte
  | 'HEADER_TIMEOUT' // no response head within header_timeout
  | 'BAD_RESPONSE' // the upstream sent something that is not HTTP/1.x, or closed inside its response head
  | 'RESET_MID_BODY' // the upstream closed or broke framing during the response body
  | 'IDLE_TIMEOUT' // the response body stalled longer than idle_timeout
  | 'NO_ADDRESS' // every address is gone or out of rotation
  | 'NOT_RESOLVED' // DNS has produced no address yet
  | 'POOL_TIMEOUT' // max_conns_per_address reached and no connection freed up in time
  | 'UPSTREAM_LOOP' // the address is this proxy's own listener: not dialled (upstream/self-address.ts)
  // The client side. Head errors come from http1/request-head.ts under the same names.
  | HeadErrorCode // BAD_REQUEST, URI_TOO_LONG, HEAD_TOO_LARGE, METHOD_NOT_ALLOWED, NOT_IMPLEMENTED, VERSION_NOT_SUPPORTED
  | 'BAD_BODY' // a malformed chunked request body
  | 'BODY_TOO_LARGE' // the request body exceeded max_body_size
  | 'CLIENT_HEADER_TIMEOUT' // the request head was not complete within client_header_timeout
  | 'CLIENT_BODY_TIMEOUT' // the request body stalled longer than client_body_timeout
  | 'CLIENT_GONE' // the client went away first
  | 'CLIENT_SEND_TIMEOUT' // the client took no response bytes for send_timeout: the response was cut
  // Admission.
  | 'TOO_MANY_CONNECTIONS' // max_connections
  | 'OVERLOADED' // max_concurrent_requests
  | 'SHUTTING_DOWN' // a drain is under way
  | 'DRAIN_TIMEOUT' // still in flight (or an open tunnel) when drain_timeout ended: cut
  | 'INTERNAL' // a bug: the request path threw

/** Which part of an exchange failed; the retry policy reads it. */
export type ExchangePhase = 'connect' | 'request' | 'response-head' | 'response-body'

/** A failed request, with a stable code. The status it earns comes from statusFor(code). */
export class RequestFailure extends Error {
  readonly code: FailureCode
  readonly phase: ExchangePhase
  /** Whether any request body bytes were read from the client (a replay is then impossible). */
  bodyConsumed: boolean
  /** The upstream address involved, when one was chosen. */
  address: string | undefined
  /** A CLIENT_BODY_TIMEOUT the request path timed itself (header_timeout), not the listener's refusal (which it counted). */
  readonly ownTimer: boolean
  constructor(code: FailureCode, phase: ExchangePhase, message: string, options?: { cause?: unknown; bodyConsumed?: boolean; address?: string; ownTimer?: boolean }) {
    super(message, options)
    this.name = 'RequestFailure'
    this.code = code
    this.phase = phase
    this.bodyConsumed = options?.bodyConsumed ?? false
    this.address = options?.address
    this.ownTimer = options?.ownTimer ?? false
  }

  /** A failure of the address itself (counts towards ejection and triggers a re-resolve). */
  get isAddressFailure(): boolean {
    return isAddressFailure(this.code)
  }
}

export function isAddressFailure(code: FailureCode): boolean {
  return code === 'CONNECT_REFUSED' || code === 'CONNECT_TIMEOUT' || code === 'CONNECT_FAILED' || code === 'TLS_FAILED' || code === 'UPSTREAM_LOOP'
}

/**
 * A failure of the upstream side (it could not be reached, or failed before answering): what
 * stale-if-error stands in for (RFC 5861 §4). Not the client leaving, a drain's cut or a bug.
 */
export function isUpstreamFailure(code: FailureCode): boolean {
  return isAddressFailure(code) || UPSTREAM_SIDE.has(code)
}
const UPSTREAM_SIDE = new Set<FailureCode>(['NO_FILE_DESCRIPTORS', 'RESET_BEFORE_RESPONSE', 'HEADER_TIMEOUT', 'BAD_RESPONSE', 'RESET_MID_BODY', 'IDLE_TIMEOUT', 'NO_ADDRESS', 'NOT_RESOLVED', 'POOL_TIMEOUT'])

/** Why the proxy answered a client itself, as counted in proxy_client_requests_refused_total{reason}. */
export type RefusalReason = 'malformed' | 'overload' | 'shutting_down' | 'connections' | 'header_timeout' | 'body_timeout'

export interface FailureStatus {
  status: number
  /** Short reason for the body and the access log. */
  reason: string
  /** Set for answers the proxy gives without going upstream: the refusal counter's label. */
  refusal?: RefusalReason
  /** The connection is closed after the answer. */
  close?: boolean
}

const TABLE: Record<FailureCode, FailureStatus> = {
  // The address refused or failed to connect: the gateway got no valid response (RFC 9110 §15.6.3).
  CONNECT_REFUSED: { status: 502, reason: 'upstream refused the connection' },
  CONNECT_FAILED: { status: 502, reason: 'could not connect to upstream' },
  TLS_FAILED: { status: 502, reason: 'TLS handshake with upstream failed' },
  UPSTREAM_LOOP: { status: 502, reason: 'upstream address is this proxy itself' },
  RESET_BEFORE_RESPONSE: { status: 502, reason: 'upstream closed the connection without responding' },
  BAD_RESPONSE: { status: 502, reason: 'upstream sent an invalid response' },
  // Only reachable after the head was sent; logged, never sent as a status.
  RESET_MID_BODY: { status: 502, reason: 'upstream failed during the response body' },
  IDLE_TIMEOUT: { status: 502, reason: 'upstream stalled during the response body' },
  // No answer in time: Gateway Timeout (RFC 9110 §15.6.5).
  CONNECT_TIMEOUT: { status: 504, reason: 'timed out connecting to upstream' },
  HEADER_TIMEOUT: { status: 504, reason: 'upstream did not respond in time' },
  // Nothing to send to, or no room: unavailable for now (RFC 9110 §15.6.4), with Retry-After.
  POOL_TIMEOUT: { status: 503, reason: 'upstream connection limit reached' },
  NO_ADDRESS: { status: 503, reason: 'no upstream address available' },
  NOT_RESOLVED: { status: 503, reason: 'upstream has not resolved yet' },
  // The proxy had no file descriptor for the upstream socket: its own temporary overload, not the
  // upstream's fault (so not a 502), with Retry-After. nginx answers 500 for its "socket() failed
  // (24: Too many open files)"; 503 says the same thing in the words of RFC 9110 §15.6.4. The
  // client's connection closes after it: its descriptor is given back (an HTTP/2 stream: not its connection).
  NO_FILE_DESCRIPTORS: { status: 503, reason: 'proxy is out of file descriptors; retry shortly', close: true },
  // The client's request is at fault (RFC 9110 §15.5, RFC 9112 §3 and §6).
  BAD_REQUEST: { status: 400, reason: 'malformed request', refusal: 'malformed', close: true },
  BAD_BODY: { status: 400, reason: 'malformed chunked request body', refusal: 'malformed', close: true },
  URI_TOO_LONG: { status: 414, reason: 'request line too long', refusal: 'malformed', close: true },
  HEAD_TOO_LARGE: { status: 431, reason: 'request head too large', refusal: 'malformed', close: true },
  METHOD_NOT_ALLOWED: { status: 405, reason: 'method not allowed', refusal: 'malformed', close: true },
  NOT_IMPLEMENTED: { status: 501, reason: 'transfer coding not implemented', refusal: 'malformed', close: true },
  VERSION_NOT_SUPPORTED: { status: 505, reason: 'HTTP version not supported', refusal: 'malformed', close: true },
  BODY_TOO_LARGE: { status: 413, reason: 'request body too large' },
  CLIENT_HEADER_TIMEOUT: { status: 408, reason: 'request head not received in time', refusal: 'header_timeout', close: true },
  CLIENT_BODY_TIMEOUT: { status: 408, reason: 'request body stalled', refusal: 'body_timeout', close: true },
  // The client left; nginx logs 499 for this. Nothing is sent.
  CLIENT_GONE: { status: 499, reason: 'client closed the request' },
  // Logged only: the response had begun and the client stopped taking it (nginx's send_timeout).
  CLIENT_SEND_TIMEOUT: { status: 408, reason: 'client took no response bytes within send_timeout' },
  TOO_MANY_CONNECTIONS: { status: 503, reason: 'too many client connections (max_connections); retry shortly', refusal: 'connections', close: true },
  OVERLOADED: { status: 503, reason: 'too many concurrent requests (max_concurrent_requests); retry shortly', refusal: 'overload', close: true },
  SHUTTING_DOWN: { status: 503, reason: 'proxy is shutting down', refusal: 'shutting_down', close: true },
  // Logged only: the response had begun; the proxy cut it when drain_timeout ran out.
  DRAIN_TIMEOUT: { status: 503, reason: 'cut at the end of drain_timeout' },
  INTERNAL: { status: 500, reason: 'internal error' },
}

/** The status, reason and refusal label of a failure code. */
export function statusFor(code: FailureCode): FailureStatus {
  return TABLE[code]
}

/** Every code, for tests and documentation. */
export const FAILURE_CODES = Object.keys(TABLE) as FailureCode[]

/** Methods the proxy forwards; sent in Allow with a 405. */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

/**
 * The headers of an answer the proxy makes itself for `code`: the request id, no caching, and
 * what the status calls for (Retry-After with a 503, Allow with a 405, close when it closes).
 */
export function failureHeaders(code: FailureCode, requestId: string): [string, string][] {
  const s = TABLE[code]
  const headers: [string, string][] = [['content-type', 'text/plain; charset=utf-8'], ['x-request-id', requestId], ['cache-control', 'no-store']]
  if (s.status === 503) headers.push(['retry-after', '1'])
  if (s.status === 405) headers.push(['allow', ALLOWED_METHODS])
  if (s.close) headers.push(['connection', 'close'])
  return headers
}

/** The plain-text body of an answer the proxy makes itself: the status, the reason and the request id. */
export function failureBody(status: number, reason: string, requestId: string): string {
  return `${status} ${reason} (request id ${requestId})\n`
}

/** The reply the proxy makes itself for `code`; `detail` replaces the table's reason where it says more. */
export function failureReply(code: FailureCode, requestId: string, detail?: string): ProxyReply {
  const s = TABLE[code]
  return { status: s.status, statusText: '', headers: failureHeaders(code, requestId), body: failureBody(s.status, detail ?? s.reason, requestId) }
}

/** Why a client's body stream failed: the listener errors it with the code (malformed, stalled); otherwise the client left. */
export function clientBodyFailure(err: unknown): 'CLIENT_GONE' | 'BAD_BODY' | 'CLIENT_BODY_TIMEOUT' {
  const code = (err as { code?: unknown } | undefined)?.code
  return code === 'BAD_BODY' || code === 'CLIENT_BODY_TIMEOUT' ? code : 'CLIENT_GONE'
}
