/**
 * The outgoing side of an HTTP/2 connection: a frame queue flushed to the transport in one write
 * per turn, transport backpressure (stop sending DATA until drained), and the DATA scheduler that
 * sends queued response bytes round-robin across streams within the peer's connection and stream
 * windows and frame size (RFC 9113 §5.2, §6.9). What to send is decided by session.ts and stream.ts.
 */
import { connectionError, H2Code } from './errors.ts'
import { dataFrameHeader, DEFAULT_WINDOW, MIN_MAX_FRAME_SIZE } from './frames.ts'
import type { ServerStream } from './stream.ts'
import { concatBytes } from '../lib/bytes.ts'

export interface OutputTransport {
  /** Takes the bytes (queueing what it cannot send now); false means: wait for drained(). */
  write(bytes: Uint8Array): boolean
}

export class Output {
  /** The peer's connection window for our DATA, and its SETTINGS_MAX_FRAME_SIZE. */
  sendWindow = DEFAULT_WINDOW
  peerMaxFrame = MIN_MAX_FRAME_SIZE
  /** DATA frames sent so far (WINDOW_UPDATE budget grows with them). */
  dataFramesSent = 0

  private frames: Uint8Array[] = []
  private frameBytes = 0
  private blocked = false
  private flushQueued = false
  private ready: ServerStream[] = []
  private readySet = new Set<ServerStream>()
  /** Non-DATA bytes queued while the peer does not read. */
  private blockedControlBytes = 0
  /** Set by the session: a stream sent its last frame. */
  onStreamDone: (stream: ServerStream) => void = () => {}
  /** Set by the session: a flush outside any session call failed (it ends the connection). */
  onFault: (err: unknown) => void = () => {}

  constructor(private readonly transport: OutputTransport, private readonly maxQueuedControlBytes: number) {}

  /**
   * Queues a control or HEADERS frame; a flush follows at the end of this turn. `checked` frames
   * are answers the peer asks for (acks, resets): while the peer does not read, they count
   * against maxQueuedControlBytes. Frames the owner causes (responses, window credit) are bounded
   * by stream limits instead.
   */
  push(frame: Uint8Array, checked = true): void {
    this.frames.push(frame)
    this.frameBytes += frame.byteLength
    if (this.blocked && checked) {
      // A peer that keeps asking for answers without reading them would grow this queue forever.
      this.blockedControlBytes += frame.byteLength
      if (this.blockedControlBytes > this.maxQueuedControlBytes) {
        throw connectionError(H2Code.ENHANCE_YOUR_CALM, 'peer does not read what it asks for (queued control frames)')
      }
    }
    this.soon()
  }

  /** The transport took less than it was given: nothing more goes out until drained(). */
  get waitingForDrain(): boolean {
    return this.blocked
  }

  /** A stream has DATA or an end to send. */
  schedule(stream: ServerStream): void {
    if (!this.readySet.has(stream)) {
      this.readySet.add(stream)
      this.ready.push(stream)
    }
    this.soon()
  }

  unschedule(stream: ServerStream): void {
    if (this.readySet.delete(stream)) this.ready = this.ready.filter((s) => s !== stream)
  }

  /** The transport sent everything: resume. */
  drained(): void {
    this.blocked = false
    this.blockedControlBytes = 0
    this.flush()
  }

  /** Window credit arrived: streams waiting on it may go on. */
  windowOpened(): void {
    if (this.ready.length > 0) this.soon()
  }

  private soon(): void {
    if (this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(() => {
      this.flushQueued = false
      try {
        this.flush()
      } catch (err) {
        this.onFault(err)
      }
    })
  }

  /** Moves DATA into the queue as windows allow, then writes the queue in one piece. */
  flush(): void {
    if (this.blocked) return
    this.pump()
    if (this.frameBytes === 0) return
    const bytes = this.frames.length === 1 ? this.frames[0]! : concatBytes(this.frames, this.frameBytes)
    this.frames = []
    this.frameBytes = 0
    if (!this.transport.write(bytes)) this.blocked = true
    // One flush sends at most the DATA budget; with the windows open and the socket taking it,
    // nothing else would wake the rest (no WINDOW_UPDATE is due), so go on in the next turn.
    else if (this.ready.length > 0) this.soon()
  }

  /** Writes what is queued now, blocked or not (the last frames before closing). */
  flushNow(): void {
    if (this.frameBytes === 0) return
    const bytes = concatBytes(this.frames, this.frameBytes)
    this.frames = []
    this.frameBytes = 0
    this.transport.write(bytes)
  }

  private pump(): void {
    let budget = 256 * 1024 // bytes of DATA per flush, so one turn does not build a huge buffer
    let i = 0
    while (this.ready.length > 0 && budget > 0 && i < this.ready.length) {
      const s = this.ready[i]!
      if (s.closed) {
        this.readySet.delete(s)
        this.ready.splice(i, 1)
        continue
      }
      const n = Math.max(0, Math.min(s.outBytes, s.sendWindow, this.sendWindow, this.peerMaxFrame, budget))
      const endNow = s.ending && !s.localEnded && s.outBytes - n === 0 && s.trailers === undefined
      if (n > 0 || (endNow && s.outBytes === 0)) {
        this.frames.push(dataFrameHeader(s.id, n, endNow))
        this.frameBytes += 9 + n
        this.take(s, n)
        s.sendWindow -= n
        this.sendWindow -= n
        budget -= n
        this.dataFramesSent++
        if (endNow) s.localEnded = true
        s.sent()
      }
      if (s.outBytes === 0 && s.ending && !s.localEnded && s.trailers !== undefined) {
        s.localEnded = true
        this.onStreamDone(s) // the session sends the trailers
      }
      const done = s.localEnded || s.closed
      const waiting = s.outBytes === 0 && !s.ending
      if (done || waiting) {
        this.readySet.delete(s)
        this.ready.splice(i, 1)
        if (done && !s.closed && s.trailers === undefined) this.onStreamDone(s)
        continue
      }
      // Blocked on a window: leave it, try the next stream.
      if (s.sendWindow <= 0 || this.sendWindow <= 0) {
        if (this.sendWindow <= 0) break
        i++
        continue
      }
      // Round robin: a stream that sent goes to the back.
      this.ready.splice(i, 1)
      this.ready.push(s)
    }
  }

  private take(s: ServerStream, n: number): void {
    s.outBytes -= n
    while (n > 0) {
      const head = s.outQueue[0]!
      if (head.byteLength <= n) {
        this.frames.push(head)
        s.outQueue.shift()
        n -= head.byteLength
      } else {
        this.frames.push(head.subarray(0, n))
        s.outQueue[0] = head.subarray(n)
        n = 0
      }
    }
  }
}
