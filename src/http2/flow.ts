/**
 * Flow control of what the client sends (RFC 9113 §5.2, §6.9). A stream's window is credited back
 * with WINDOW_UPDATE only as its owner reads the body, in batches of half its window: that bounds
 * what each stream buffers and makes a slow upstream pace a fast upload. A stream starts with a
 * small window and one whose reader keeps up grows it, within a budget shared by the connection's
 * streams, so every stream at once holds at most maxConcurrentStreams x the initial window plus
 * that budget. The connection window is credited as DATA arrives on an open stream, not as it is
 * read: with it tied to reading, a few uploads whose upstream did not read held the whole
 * connection window and stopped every other stream's body (four stalled 256 KiB streams filled
 * 1 MiB). On a far client's connection (a round trip given) the windows may grow larger
 * (limits.ts FAR_WINDOWS), and a stream's only while its reader takes each half window within two
 * round trips (the client is then held by the window, not by the reader); one whose reader falls
 * behind that gives its growth back, half a credit at a time. The send side (the
 * peer's windows for our DATA) lives in output.ts.
 */
import { connectionError, H2Code, streamError } from './errors.ts'
import { DEFAULT_WINDOW, windowUpdateFrame } from './frames.ts'

/** The per-stream half of the accounting; ServerStream carries it. */
export interface StreamWindow {
  readonly id: number
  /** What the client may still send on this stream. */
  recvWindow: number
  /** Bytes the owner took that were not credited back yet. */
  recvUnacked: number
  /** The window this stream is kept at: the initial one, grown while its reader keeps up. */
  recvTarget: number
  /** When it was last credited (or opened), on a far connection: how fast its reader takes a half window. */
  recvCreditedAtMs: number
  /** Its reader fell behind once (far): its window grows no more (a burst after a drain looks fast). */
  recvLagged: boolean
  /** Body bytes received and not yet read: the reader, not the client, is behind while there are any. */
  readonly recvQueuedBytes: number
}

export interface ReceiveWindows {
  connectionWindowBytes: number
  connectionUnreadBytes: number
  streamInitialWindowBytes: number
  streamWindowBytes: number
  streamWindowBudgetBytes: number
}

export class ReceiveFlow {
  /** What the client may still send on the connection, and the credit not yet returned. */
  private window = DEFAULT_WINDOW
  private unacked = 0
  /** What the open streams' windows may still grow beyond their initial size, together. */
  private growthLeftBytes: number
  /** Body bytes received on streams and not yet read or dropped; and the connection credit held back for them past the cap. */
  private unreadBytes = 0
  private owedBytes = 0

  constructor(
    private readonly w: ReceiveWindows,
    private readonly push: (frame: Uint8Array) => void,
    /** The connection's round trip when the client is far (0: near, growth not timed), and the clock that times it. */
    private readonly roundTripMs = 0,
    private readonly now: () => number = () => 0,
  ) {
    this.growthLeftBytes = w.streamWindowBudgetBytes
  }

  /** A stream opened: on a far connection its first half window is timed from now. */
  opened(s: StreamWindow): void {
    if (this.roundTripMs > 0) s.recvCreditedAtMs = this.now()
  }

  /** Opens the connection window to its configured size (sent with the server preface, §6.9.2). */
  start(): void {
    if (this.w.connectionWindowBytes <= DEFAULT_WINDOW) return
    this.push(windowUpdateFrame(0, this.w.connectionWindowBytes - DEFAULT_WINDOW))
    this.window = this.w.connectionWindowBytes
  }

  /** Whether a DATA frame of `length` bytes fits what the client may still send on the connection. */
  fits(length: number): boolean {
    return length <= this.window
  }

  /** A DATA frame of `length` bytes (padding included, §6.9.1) arrived on the connection. */
  chargeConnection(length: number): void {
    this.window -= length
    if (this.window < 0) throw connectionError(H2Code.FLOW_CONTROL_ERROR, 'DATA beyond the connection window (RFC 9113 §6.9.1)')
  }

  /** ...and on an open stream: the stream's window pays for it, and the connection's share goes back at once (held back past the unread cap). */
  chargeStream(s: StreamWindow, length: number): void {
    s.recvWindow -= length
    if (s.recvWindow < 0) {
      this.creditConnection(length)
      throw streamError(s.id, H2Code.FLOW_CONTROL_ERROR, 'DATA beyond the stream window (RFC 9113 §6.9.1)')
    }
    this.unreadBytes += length
    if (this.unreadBytes <= this.w.connectionUnreadBytes) this.creditConnection(length)
    else this.owedBytes += length
  }

  /** Bytes charged to a stream that were read or dropped: no longer unread, and connection credit held back for them goes now. */
  taken(bytes: number): void {
    this.unreadBytes -= bytes
    const owed = Math.min(this.owedBytes, bytes)
    if (owed <= 0) return
    this.owedBytes -= owed
    this.creditConnection(owed)
  }

  /**
   * Bytes the owner read (`read`), or that were dropped (padding, a discarded body): credit for
   * the stream while it may still send; only reading grows its window, while the budget lasts.
   */
  consumed(s: StreamWindow, bytes: number, streamOpen: boolean, read: boolean): void {
    this.taken(bytes)
    if (!streamOpen) return
    s.recvUnacked += bytes
    if (s.recvUnacked < s.recvTarget / 2) return
    // Its reader took half a window: double the window, up to the largest, while the budget lasts
    // (on a far connection, if it took it within two round trips).
    const paced = this.keptPace(s)
    const grow = read && paced && !s.recvLagged ? Math.min(s.recvTarget, this.w.streamWindowBytes - s.recvTarget, this.growthLeftBytes) : 0
    let credit = s.recvUnacked
    if (grow > 0) {
      s.recvTarget += grow
      this.growthLeftBytes -= grow
      credit += grow
    } else if (!paced && s.recvQueuedBytes > 0) {
      s.recvLagged = true
      // A far stream whose reader fell behind (an upstream slower than the link, once the kernel's
      // buffers toward it are full; not a client still in slow start, whose bytes wait for none):
      // its window shrinks by half of what this credit returns, back toward the initial one, and
      // the budget gets that back.
      const shrink = Math.max(0, Math.min(Math.floor(credit / 2), s.recvTarget - this.w.streamInitialWindowBytes))
      s.recvTarget -= shrink
      this.growthLeftBytes += shrink
      credit -= shrink
    }
    this.push(windowUpdateFrame(s.id, credit))
    s.recvWindow += credit
    s.recvUnacked = 0
  }

  /** Whether a far stream's reader took this half window within two round trips since its last credit (always, near). */
  private keptPace(s: StreamWindow): boolean {
    if (this.roundTripMs === 0) return true
    const nowMs = this.now()
    const sinceMs = nowMs - s.recvCreditedAtMs
    s.recvCreditedAtMs = nowMs
    return sinceMs <= 2 * this.roundTripMs
  }

  /** A stream closed, or sends no more: what its window grew by goes back to the budget (once). */
  released(s: StreamWindow): void {
    this.growthLeftBytes += s.recvTarget - this.w.streamInitialWindowBytes
    s.recvTarget = this.w.streamInitialWindowBytes
  }

  /**
   * Connection credit, sent in batches of half the window; at once while the client's window is
   * under half (credit held back past the unread cap, then freed a little at a time, would
   * otherwise wait in the batch while the client can send nothing).
   */
  creditConnection(bytes: number): void {
    this.unacked += bytes
    if (this.unacked >= this.w.connectionWindowBytes / 2 || this.window < this.w.connectionWindowBytes / 2) {
      this.push(windowUpdateFrame(0, this.unacked))
      this.window += this.unacked
      this.unacked = 0
    }
  }
}
