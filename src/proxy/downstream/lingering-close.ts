/**
 * A lingering close (RFC 9112 §9.6): the end of a client connection after its last reply while
 * the client may still be sending (the rest of a body nobody read: a 413, an answer that came
 * before the upload's end; requests pipelined after one that closes the connection; a malformed
 * body ends its stream first and gets a plain FIN). Closing a socket with unread bytes, or with bytes
 * still on their way, resets the connection, and the reset can take the reply from the client
 * before it was read (curl, which reads once its upload is sent, then fails with "Connection
 * reset by peer" instead of showing the 413). So the write side is shut (a FIN) and what the
 * client still sends is read and dropped until it closes too, within LINGER_GAP_MS between reads
 * and LINGER_MAX_MS in all, as nginx's lingering_close does (lingering_timeout 5 s,
 * lingering_time 30 s). Over TLS too, where every close comes here: Bun's shutdown() of a TLS
 * socket sends the close_notify and the FIN and reads on (dropping what comes) until the client
 * closes, whereas its end() sends the close_notify, then holds the socket, outside any count, until
 * the client answers with its own or about 12 s have passed (a client that answers none, or reads
 * nothing more, saw its FIN 12 s late: sixteenth round of outside reviews); and shutdown() with an
 * end() at once closed it with the reply's tail still in the kernel, which a client's next bytes
 * then reset away (8,000,000 bytes asked, 7.91-7.96 MB received).
 * The socket is the listener's (http1-listener.ts) from the moment the connection hands it over;
 * a graceful stop lets it linger to its end (closeIfIdle), a forced one cuts it.
 */
import type { Socket } from 'bun'
import { monoNow } from '../../lib/clock.ts'
import type { DownstreamConnection } from './connection-options.ts'

/** The longest wait for the client's next bytes, and the longest lingering in all. */
export const LINGER_GAP_MS = 5_000
export const LINGER_MAX_MS = 30_000

export class LingeringClose implements DownstreamConnection {
  deadlineAt: number
  private readonly endsAt: number
  isClosed = false
  readonly isTunnel = false

  constructor(
    private readonly sock: Socket<unknown>,
    private readonly onGone: (c: LingeringClose) => void,
  ) {
    const now = monoNow()
    this.endsAt = now + LINGER_MAX_MS
    this.deadlineAt = now + LINGER_GAP_MS
    sock.shutdown()
    sock.resume() // the connection may have paused reading (a body nobody read)
  }

  /** What the client still sends: dropped; its next bytes are due within LINGER_GAP_MS. */
  onData(): void {
    this.deadlineAt = Math.min(this.endsAt, monoNow() + LINGER_GAP_MS)
  }

  onDrain(): void {}

  /** The client closed its side: Bun closes the socket once this returns. */
  onEnd(): void {
    if (!this.isClosed) this.sock.end()
  }

  onClose(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.deadlineAt = 0
    this.onGone(this)
  }

  /** The client kept sending (or went silent) past the bounds: cut. */
  onDeadline(): void {
    this.destroy()
  }

  /**
   * A stop (a drain, a reload's old listener): the lingering goes on to its own bounds, as
   * nginx's does at a graceful shutdown. Cut now, it would reset a client still sending, and the
   * reset can take the reply from it (the very thing the lingering is for); a drain waits for it
   * as for a request in flight, and its drain_timeout (a forced stop: destroy) bounds the wait.
   */
  closeIfIdle(): void {}

  destroy(): void {
    if (this.isClosed) return
    this.onClose()
    this.sock.terminate()
  }
}
