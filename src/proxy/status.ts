/**
 * The one place where failures become HTTP statuses, with the reason written down (as Caddy's
 * statusError does). The error body is short plain text with the reason and the request id.
 */
import { toResponse, type ProxyReply } from './message.ts'
import type { UpstreamErrorCode } from './upstream/upstream-error.ts'

export interface ErrorStatus {
  status: number
  /** Short reason for the body and the access log. */
  reason: string
}

export function statusForUpstreamError(code: UpstreamErrorCode): ErrorStatus {
  switch (code) {
    // The address refused or failed to connect: the gateway got no valid response (RFC 9110 §15.6.3).
    case 'CONNECT_REFUSED':
      return { status: 502, reason: 'upstream refused the connection' }
    case 'CONNECT_FAILED':
      return { status: 502, reason: 'could not connect to upstream' }
    case 'TLS_FAILED':
      return { status: 502, reason: 'TLS handshake with upstream failed' }
    case 'RESET_BEFORE_RESPONSE':
      return { status: 502, reason: 'upstream closed the connection without responding' }
    case 'BAD_RESPONSE':
      return { status: 502, reason: 'upstream sent an invalid response' }
    // No answer in time: Gateway Timeout (RFC 9110 §15.6.5).
    case 'CONNECT_TIMEOUT':
      return { status: 504, reason: 'timed out connecting to upstream' }
    case 'HEADER_TIMEOUT':
      return { status: 504, reason: 'upstream did not respond in time' }
    case 'POOL_TIMEOUT':
      return { status: 503, reason: 'upstream connection limit reached' }
    // Nothing to send to: the service is unavailable until DNS answers (RFC 9110 §15.6.4).
    case 'NO_ADDRESS':
      return { status: 503, reason: 'no upstream address available' }
    case 'BODY_TOO_LARGE':
      return { status: 413, reason: 'request body too large' }
    // The client left; nginx logs 499 for this. Nothing is sent.
    case 'CLIENT_GONE':
      return { status: 499, reason: 'client closed the request' }
    // Only reachable after the head was sent; logged, never sent as a status.
    case 'RESET_MID_BODY':
    case 'IDLE_TIMEOUT':
      return { status: 502, reason: 'upstream failed during the response body' }
  }
}

export function errorReply(status: number, reason: string, requestId: string, extraHeaders?: [string, string][]): ProxyReply {
  const headers: [string, string][] = [['content-type', 'text/plain; charset=utf-8'], ['x-request-id', requestId], ['cache-control', 'no-store']]
  if (extraHeaders) headers.push(...extraHeaders)
  return { status, statusText: '', headers, body: `${status} ${reason} (request id ${requestId})\n` }
}

export function errorResponse(status: number, reason: string, requestId: string, extraHeaders?: [string, string][]): Response {
  return toResponse(errorReply(status, reason, requestId, extraHeaders))
}
