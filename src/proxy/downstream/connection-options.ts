/**
 * What a client connection (client-connection.ts) is given by its listener (http1-listener.ts):
 * the limits, the callbacks into the proxy (the request path, upgrades, refusals), and the
 * listener's shared state. Types only.
 */
import type { Conn } from '../../runtime/socket.ts'
import type { FailureCode } from '../errors.ts'
import type { ForwardingLines } from '../headers.ts'
import type { ProxyReply, ProxyRequest, ReplySink } from '../message.ts'

export interface ClientInfo {
  ip: string
  /** Whether the client reached us over TLS. */
  readonly tls: boolean
  /** A streamed body goes out with the upstream's Content-Length (this listener keeps it). */
  readonly streamKeepsLength: true
  /** How the client speaks to us, for the access log and metrics. */
  protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2'
  /** The connection's X-Forwarded-* lines, made once (proxy/headers.ts). */
  readonly forwarding: ForwardingLines
  /** Sends an interim (1xx) response ahead of the current request's final one (not to HTTP/1.0 clients). */
  interim?(status: number, headers: [string, string][]): void
}

/** What a connection is told by its listener: limits and the callbacks into the proxy. */
export interface ConnectionOptions {
  /** Largest request head (request line and headers), in bytes; 431 (or 414) beyond. */
  maxHeaderBytes: number
  /** Time from a connection's first byte of a request (or from accept) to the end of its head; 408 beyond. */
  headerTimeoutMs: number
  /** How long an idle keep-alive connection is held. */
  keepaliveTimeoutMs: number
  /** Longest wait for the next bytes of a request body (the proxy not holding the client back); 408 beyond. 0: none. */
  bodyTimeoutMs: number
  /** Longest a response waits on a client that takes none of it (send_timeout); then it is cut. 0: none. */
  sendTimeoutMs: number
  /** The request path: the reply goes to `sink` (proxy/message.ts). */
  handle(req: ProxyRequest, client: ClientInfo, sink: ReplySink): void
  /**
   * Takes over a connection whose request asks for a protocol upgrade: the callee owns `conn`
   * from now on (bytes the client sent after the head are passed as `early`).
   */
  upgrade(req: ProxyRequest, upgrade: string, client: ClientInfo, conn: Conn, early: Uint8Array): void
  /**
   * The listener answers a client itself (a malformed or oversized head, a timeout, the
   * connection cap, an internal error): returns the reply to send (with a request id), counted,
   * and written to the access log when `record` (a request whose body failed is recorded by the
   * request path itself). `req` is what was parsed of the request, if anything; `status`, the
   * status sent when the listener already answered otherwise than the code's (HTTP/2's 431 for
   * trailers too large, recorded BAD_BODY as HTTP/1.1 records its trailer section too large);
   * `sinceMs`, when the refused thing began (a head that never came whole: its deadline's start),
   * for the record's duration.
   */
  refuse(code: FailureCode, detail: string, client: ClientInfo, req: ProxyRequest | undefined, record: boolean, status?: number, sinceMs?: number): ProxyReply
  /** A connection closed without an answer (nothing sent within client_header_timeout; `detail` else): counted only. */
  onQuietClose(code: FailureCode, ip: string, detail?: string): void
  /** An HTTP/2 connection the proxy ended with GOAWAY and an error code (its name, RFC 9113 §7): counted and logged. */
  onHttp2Error?(code: string, detail: string, ip: string): void
  onError(err: unknown): void
}

/** What the listener needs of a client connection, whichever protocol it speaks. */
export interface DownstreamConnection {
  /** performance.now() by which onDeadline must run; 0: none. */
  deadlineAt: number
  readonly isClosed: boolean
  readonly isTunnel: boolean
  onData(chunk: Uint8Array): void
  onDrain(): void
  onEnd(): void
  onClose(err?: Error): void
  onDeadline(): void
  /**
   * A graceful stop: what is in flight finishes, then the connection closes. An idle one is kept
   * `graceMs` for a request already on its way, which is answered rather than cut (HTTP/1.1: with
   * Connection: close; HTTP/2: GOAWAY of 2^31-1 at once, the one naming the last stream after).
   */
  closeIfIdle(graceMs: number): void
  destroy(): void
}

/** What a connection shares with its listener. */
export interface ListenerState {
  readonly opts: ConnectionOptions
  /** Whether connections come over TLS. */
  readonly tls: boolean
  readonly stopping: boolean
  requestStarted(): void
  requestEnded(): void
  closed(c: { readonly isClosed: boolean }): void
  /** Takes over `sock` after its connection's last reply, for a lingering close (lingering-close.ts); `closed` ends the connection first. */
  linger?(sock: unknown, closed: () => void): void
}
