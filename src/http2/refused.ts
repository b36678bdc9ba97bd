/**
 * What the session tells its owner of a request it refused itself (session-options.ts
 * onRefused, and a stream's `refused`): why, what it sent, and what of the request it had read.
 * Types only.
 */
import type { HeaderField } from './hpack.ts'
import type { H2Request } from './request.ts'

/** What the owner gives back when told (onRefused): fields a 431 carries besides :status and content-length (the proxy's x-request-id), or nothing. */
export type RefusedFields = readonly HeaderField[] | undefined | void

/**
 * A request the session refused itself: its header list (head or trailers) above the cap (RFC
 * 9113 §10.5.1), answered 431 without the owner, or its stream reset once the owner's answer had
 * begun; or its body's length not its content-length (§8.1.1), the stream reset; or its head
 * malformed (§8.1.1: a value with a control character, a missing pseudo-header, ...), the stream
 * reset, not answered. Told to the owner (onRefused) for its access log and counters: as
 * HTTP/1.1 logs and counts its 400s, a client's malformed requests are seen there.
 */
export interface Refused {
  readonly why: 'head-too-large' | 'trailers-too-large' | 'body-length' | 'malformed'
  /**
   * The status to record: the 431 sent; for a body length, 400, what a malformed request earns
   * (nothing is sent: the stream is reset PROTOCOL_ERROR); 0 when the answer had begun (the
   * stream was reset PROTOCOL_ERROR).
   */
  readonly status: number
  /** The request's checked head (trailers too large, a body length); undefined for a head too large or malformed. */
  readonly request: H2Request | undefined
  /** Its stream's `owner` slot (when it had a stream): which of the owner's requests it was; undefined for a head too large. */
  readonly owner: unknown
  /** For a head too large: the fields decoded before the cap (pseudo-header fields come first, §8.3); for a malformed one, its fields. */
  readonly fields: readonly HeaderField[] | undefined
  /** The owner had the request (onRequest): its stream closes next, with `refused` set on it. */
  readonly dispatched: boolean
  readonly detail: string
}
