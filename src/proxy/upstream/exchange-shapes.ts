/**
 * What an upstream exchange (exchange.ts) is given and what it reports: the request to send, its
 * timeouts and report sinks, the response head and body it hands over, and its end. Shapes only;
 * the exchange itself is exchange.ts's.
 */
import type { ForwardedLines } from '../../http1/request-encode.ts'
import type { ResponseHead } from '../../http1/response-head.ts'
import type { RequestFailure } from '../errors.ts'
import type { HeadReader } from '../../http1/head-reader.ts'
import type { Conn } from '../../runtime/socket.ts'

/** What an exchange (E: exchange.ts's Exchange) needs of its connection. */
export interface ExchangeHost<E = unknown> {
  readonly conn: Conn
  /** The connection's reader of response heads, empty between exchanges (one exchange at a time). */
  readonly headReader: HeadReader
  /** Called by the exchange exactly once, when it is over. */
  finished(ex: E, reusable: boolean): void
}

export interface OutgoingRequest {
  method: string
  /** origin-form target: path and query. */
  target: string
  headers: readonly (readonly [string, string])[]
  /** The client's lines copied as they came, after the first of `headers` (proxy/headers.ts, upstreamRequestLines). */
  lines?: ForwardedLines
  /** A buffered body (sent with Content-Length), a stream, or none. */
  body: Uint8Array | ReadableStream<Uint8Array> | null
  /** For a stream body: its declared length; undefined sends it chunked. */
  bodyLength: number | undefined
  /** 0 means no limit. Applies to streamed bodies. */
  maxBodyBytes: number
}

export interface ExchangeOptions {
  headerTimeoutMs: number
  /** 0 disables the body idle timeout. */
  idleTimeoutMs: number
  /** Called once when the exchange is over (response fully relayed, or failed). */
  onEnd?: (end: ExchangeEnd) => void
  /** An interim (1xx) response before the final one: 100 Continue, 102 Processing, 103 Early Hints (RFC 9110 §15.2). */
  onInterim?: (head: ResponseHead) => void
}

/**
 * What an exchange reports its outcome to, besides ExchangeOptions: the response head once (the
 * usual case) or the failure before one; both after the exchange's own end when that came first
 * (a whole body in the head's read). Called synchronously from the socket's events: a caller that
 * wants a promise takes Http1Connection.exchange's.
 */
export interface ExchangeSink extends ExchangeOptions {
  onResponse(r: IncomingResponse): void
  onFailure(f: RequestFailure): void
}

export interface ExchangeEnd {
  requestBodyBytes: number
  responseBodyBytes: number
  /** Set when the exchange failed (before or after the head). */
  error: RequestFailure | undefined
}

export interface IncomingResponse {
  head: ResponseHead
  /** Uint8Array when the whole body arrived with the head; null when there is none. */
  body: ReadableStream<Uint8Array> | Uint8Array | null
  /** performance.now() when the first response byte arrived. */
  firstByteAt: number
  /**
   * Where a small whole body still is, when it came in the head's read: wholeIn[wholeFrom,
   * wholeTo), for a writer that copies it from there (ForwardedReply.encodeWhole); `body` is a
   * copy of it, made when first asked for.
   */
  readonly wholeIn?: Uint8Array
  readonly wholeFrom?: number
  readonly wholeTo?: number
}
