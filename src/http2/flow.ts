/**
 * Flow control of what the client sends (RFC 9113 §5.2, §6.9): the connection and stream receive
 * windows, charged by DATA frames and credited back with WINDOW_UPDATE only as the owner reads the
 * body, in batches of half a window. That is what bounds request body memory per stream and per
 * connection, and what makes a slow upstream pace a fast upload. The send side (the peer's windows
 * for our DATA) lives in output.ts.
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
}

export class ReceiveFlow {
  /** What the client may still send on the connection, and the credit not yet returned. */
  private window = DEFAULT_WINDOW
  private unacked = 0

  constructor(
    private readonly connectionWindowBytes: number,
    private readonly streamWindowBytes: number,
    private readonly push: (frame: Uint8Array) => void,
  ) {}

  /** Opens the connection window to its configured size (sent with the server preface, §6.9.2). */
  start(): void {
    if (this.connectionWindowBytes <= DEFAULT_WINDOW) return
    this.push(windowUpdateFrame(0, this.connectionWindowBytes - DEFAULT_WINDOW))
    this.window = this.connectionWindowBytes
  }

  /** A DATA frame of `length` bytes (padding included, §6.9.1) arrived on the connection. */
  chargeConnection(length: number): void {
    this.window -= length
    if (this.window < 0) throw connectionError(H2Code.FLOW_CONTROL_ERROR, 'DATA beyond the connection window (RFC 9113 §6.9.1)')
  }

  /** ...and on a stream; the connection share is returned at once when the stream's window is broken. */
  chargeStream(s: StreamWindow, length: number): void {
    s.recvWindow -= length
    if (s.recvWindow < 0) {
      this.creditConnection(length)
      throw streamError(s.id, H2Code.FLOW_CONTROL_ERROR, 'DATA beyond the stream window (RFC 9113 §6.9.1)')
    }
  }

  /** Bytes the owner took (or that were dropped): credit for the stream while it may still send, and for the connection. */
  consumed(s: StreamWindow, bytes: number, streamOpen: boolean): void {
    if (streamOpen) {
      s.recvUnacked += bytes
      if (s.recvUnacked >= this.streamWindowBytes / 2) {
        this.push(windowUpdateFrame(s.id, s.recvUnacked))
        s.recvWindow += s.recvUnacked
        s.recvUnacked = 0
      }
    }
    this.creditConnection(bytes)
  }

  creditConnection(bytes: number): void {
    this.unacked += bytes
    if (this.unacked >= this.connectionWindowBytes / 2) {
      this.push(windowUpdateFrame(0, this.unacked))
      this.window += this.unacked
      this.unacked = 0
    }
  }
}
