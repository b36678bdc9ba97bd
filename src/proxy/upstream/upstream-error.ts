/**
 * Why an exchange with the upstream failed, as a stable code. status.ts maps codes to HTTP
 * statuses; the retry policy in handler.ts reads `phase` and `bodyConsumed`.
 */

export type UpstreamErrorCode =
  | 'CONNECT_REFUSED' // the address refused the TCP connection
  | 'CONNECT_TIMEOUT' // no TCP/TLS connection within connect_timeout
  | 'CONNECT_FAILED' // any other connect failure (unreachable, reset during connect)
  | 'TLS_FAILED' // handshake failed: untrusted certificate, wrong name, protocol error
  | 'RESET_BEFORE_RESPONSE' // the connection closed before any response byte
  | 'HEADER_TIMEOUT' // no response head within header_timeout
  | 'BAD_RESPONSE' // the upstream sent something that is not HTTP/1.x
  | 'RESET_MID_BODY' // the upstream closed or broke framing during the response body
  | 'IDLE_TIMEOUT' // the response body stalled longer than idle_timeout
  | 'NO_ADDRESS' // DNS has produced no address (yet), or every address is gone
  | 'CLIENT_GONE' // the client went away first
  | 'BODY_TOO_LARGE' // the request body exceeded max_body_size
  | 'POOL_TIMEOUT' // max_conns_per_address reached and no connection freed up in time

export type ExchangePhase = 'connect' | 'request' | 'response-head' | 'response-body'

export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode
  readonly phase: ExchangePhase
  /** Whether any request body bytes were read from the client (a replay is then impossible). */
  bodyConsumed: boolean
  /** The upstream address involved, when one was chosen. */
  address: string | undefined
  constructor(code: UpstreamErrorCode, phase: ExchangePhase, message: string, options?: { cause?: unknown; bodyConsumed?: boolean; address?: string }) {
    super(message, options)
    this.name = 'UpstreamError'
    this.code = code
    this.phase = phase
    this.bodyConsumed = options?.bodyConsumed ?? false
    this.address = options?.address
  }

  /** A failure of the address itself (counts towards ejection and triggers a re-resolve). */
  get isAddressFailure(): boolean {
    return this.code === 'CONNECT_REFUSED' || this.code === 'CONNECT_TIMEOUT' || this.code === 'CONNECT_FAILED' || this.code === 'TLS_FAILED'
  }
}
