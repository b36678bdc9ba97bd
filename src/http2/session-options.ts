/**
 * What a server-side HTTP/2 session (session.ts) is given by its transport and owner: where its
 * bytes go, how the transport ends, where requests, the requests it refuses itself, and errors
 * go, its limits and its clock. Types only.
 */
import type { Http2Error } from './errors.ts'
import type { Http2Limits } from './limits.ts'
import type { Refused, RefusedFields } from './refused.ts'
import type { ServerStream } from './stream.ts'

export type { Refused, RefusedFields } from './refused.ts'

export interface SessionOptions {
  /** Sends bytes; false means the transport is queueing: call drained() when it has sent them. */
  write(bytes: Uint8Array): boolean
  /** Ends the transport once what was written is sent. Called once. */
  close(): void
  /** A request whose head was checked; its body (if any) arrives through stream.body. */
  onRequest(stream: ServerStream): void
  /**
   * A request the session refused itself (a header list above the cap), for the owner's log and
   * counters; the fields it returns go with the 431 (an answer's request id).
   */
  onRefused?(refused: Refused): RefusedFields
  /** No complete request head in time (limits.headTimeoutMs): the session goes away; for the owner's counters. */
  onHeadTimeout?(): void
  /** The session ended, with the connection error when there was one (for logs and counters). */
  onClose?(err: Http2Error | undefined): void
  /** A callback of the owner (onRequest, a stream's onDrain or onClose) threw; rethrown asynchronously when absent. */
  onError?(err: unknown): void
  limits?: Partial<Http2Limits>
  /**
   * The connection's round trip, ms, when the client is far (runtime/receive-buffer.ts
   * farRoundTripMs); 0 or undefined: near. A far connection's receive windows are FAR_WINDOWS
   * (limits.ts) unless `limits` sets them, and grow only while reads keep pace with it (flow.ts).
   */
  roundTripMs?: number
  /** Clock for budgets and the idle timeout; performance.now (held per socket event: lib/clock.ts) by default. */
  now?: () => number
}
