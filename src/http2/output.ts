/**
 * The outgoing side of an HTTP/2 connection: a frame queue flushed to the transport in one write
 * per turn, transport backpressure (stop sending DATA until drained), and the DATA scheduler that
 * sends queued response bytes round-robin across streams within the peer's connection and stream
 * windows and frame size (RFC 9113 §5.2, §6.9). What to send is decided by session.ts and stream.ts.
 *
 * Frames are written into one buffer of the connection's as they are queued (DATA frame headers
 * and HEADERS blocks in place, small payloads copied), and a flush copies it out once: no array
 * per frame header or per block. A larger DATA payload is not copied in but kept aside with its
 * place, and goes into the flush's one copy.
 */
import { Buffer } from 'node:buffer'
import { monoNow } from '../lib/clock.ts'
import { connectionError, H2Code } from './errors.ts'
import { DEFAULT_WINDOW, Flag, FRAME_HEADER_BYTES, FrameType, headerFrames, MIN_MAX_FRAME_SIZE, writeFrameHeader } from './frames.ts'
import type { ServerStream } from './stream.ts'

/**
 * How long a frame given to pushSoon waits. A RST_STREAM(NO_ERROR) in the same write as the end of
 * the answer it follows (an early 413 to an upload) is read with it by curl 7.88 (Debian 12), which
 * then drops the answer (exit 52 or 92); nginx's reset goes out after its answer's write.
 */
const SOON_MS = 10
/** DATA payloads up to this size are copied into the buffer as they are queued; larger ones are kept aside. */
const COPY_IN_MAX_BYTES = 1024
/** The buffer's size when first needed, and the most kept between flushes (a larger one, grown for a burst, is dropped after it; any goes once no stream is open). */
const BUFFER_START_BYTES = 2048
const BUFFER_KEPT_MAX_BYTES = 64 * 1024
const NO_BYTES = new Uint8Array(0)
/** bytes[from, to) into out at `at` without a view of `bytes` (Buffer's copy takes any Uint8Array). */
const copyBytes = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number

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

  /** What is queued: frames written into `bytes` [0, at), and larger DATA payloads in `aside`, each going after `bytes` [0, asideAt[i]). */
  private bytes = NO_BYTES
  private at = 0
  private readonly aside: Uint8Array[] = []
  private readonly asideAt: number[] = []
  private frameBytes = 0
  private blocked = false
  /** No stream is open: the buffer goes with the next flush (idle()). */
  private dropBuffer = false
  private flushQueued = false
  private ready: ServerStream[] = []
  private readySet = new Set<ServerStream>()
  /** Non-DATA bytes queued while the peer does not read. */
  private blockedControlBytes = 0
  /** Frames pushSoon holds back (in the order they are due), the one timer that queues them; closed: close() was called. */
  private later: { frame: Uint8Array; dueMs: number; streamId: number }[] = []
  private laterTimer: ReturnType<typeof setTimeout> | undefined
  private closed = false
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
    this.put(frame, 0, frame.byteLength)
    this.queued(frame.byteLength, checked)
  }

  /** Queues `frame` (of `streamId`) SOON_MS from now, so it goes in a later write than what is queued now (see SOON_MS). */
  pushSoon(frame: Uint8Array, streamId: number): void {
    if (this.closed) return
    this.later.push({ frame, dueMs: monoNow() + SOON_MS, streamId })
    if (this.laterTimer === undefined) this.armLater(SOON_MS)
  }

  /** A frame pushSoon holds for `streamId` is not sent after all (the client ended the stream first). */
  cancelSoon(streamId: number): void {
    if (this.later.length > 0) this.later = this.later.filter((l) => l.streamId !== streamId)
  }

  /** The connection ends: frames pushSoon holds are dropped, its timer stopped. */
  close(): void {
    this.closed = true
    this.later = []
    if (this.laterTimer !== undefined) clearTimeout(this.laterTimer)
    this.laterTimer = undefined
  }

  private armLater(ms: number): void {
    this.laterTimer = setTimeout(() => this.sendDue(), ms)
  }

  /** Queues the held frames that are due; the timer again for the next one (each waits its own SOON_MS). */
  private sendDue(): void {
    this.laterTimer = undefined
    const now = monoNow()
    let due = 0
    while (due < this.later.length && this.later[due]!.dueMs <= now) due++
    const frames = this.later.splice(0, due)
    if (this.later.length > 0) this.armLater(Math.max(1, this.later[0]!.dueMs - now))
    try {
      for (const l of frames) this.push(l.frame)
    } catch (err) {
      this.onFault(err)
    }
  }

  /**
   * Queues a HEADERS frame for `block` [FRAME_HEADER_BYTES, end): a header block coded after
   * FRAME_HEADER_BYTES of headroom (HpackEncoder.encodeInPlace), whose frame header is written
   * there; a block above the peer's frame size goes as HEADERS and CONTINUATION frames.
   */
  pushHeaders(streamId: number, block: Uint8Array, end: number, endStream: boolean): void {
    const length = end - FRAME_HEADER_BYTES
    if (length > this.peerMaxFrame) return this.push(headerFrames(streamId, block.subarray(FRAME_HEADER_BYTES, end), endStream, this.peerMaxFrame), false)
    writeFrameHeader(block, 0, length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId)
    this.put(block, 0, end)
    this.queued(end, false)
  }

  private queued(n: number, checked: boolean): void {
    this.frameBytes += n
    if (this.blocked && checked) {
      // A peer that keeps asking for answers without reading them would grow this queue forever.
      this.blockedControlBytes += n
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
    if (!this.transport.write(this.takeQueued())) this.blocked = true
    // One flush sends at most the DATA budget; with the windows open and the socket taking it,
    // nothing else would wake the rest (no WINDOW_UPDATE is due), so go on in the next turn.
    else if (this.ready.length > 0) this.soon()
  }

  /** Writes what is queued now, blocked or not (the last frames before closing). */
  flushNow(): void {
    if (this.frameBytes === 0) return
    this.transport.write(this.takeQueued())
  }

  /** What is queued, in one new array (the transport may hold it), and the queue emptied. */
  private takeQueued(): Uint8Array {
    const bytes = this.bytes
    const at = this.at
    const aside = this.aside
    let out: Uint8Array
    if (aside.length === 0) out = bytes.slice(0, at)
    else {
      out = new Uint8Array(this.frameBytes)
      let from = 0
      let to = 0
      for (let i = 0; i < aside.length; i++) {
        const upTo = this.asideAt[i]!
        if (upTo > from) to += copyBytes.call(bytes, out, to, from, upTo)
        from = upTo
        out.set(aside[i]!, to)
        to += aside[i]!.byteLength
      }
      if (at > from) copyBytes.call(bytes, out, to, from, at)
      aside.length = 0
      this.asideAt.length = 0
    }
    this.at = 0
    this.frameBytes = 0
    if (this.dropBuffer || bytes.byteLength > BUFFER_KEPT_MAX_BYTES) this.bytes = NO_BYTES // made again by the next frame
    this.dropBuffer = false
    return out
  }

  /**
   * No stream is open: the buffer kept between flushes goes, now or with the flush of what is
   * queued, so that an idle connection holds none (2 KiB or more each, measured by heap snapshots).
   */
  idle(): void {
    if (this.frameBytes > 0) this.dropBuffer = true
    else this.bytes = NO_BYTES
  }

  /** Copies src[from, to) into the buffer, growing it when needed. */
  private put(src: Uint8Array, from: number, to: number): void {
    const n = to - from
    const at = this.reserve(n)
    const bytes = this.bytes
    if (n <= 64) for (let i = 0; i < n; i++) bytes[at + i] = src[from + i]!
    else copyBytes.call(src, bytes, at, from, to)
    this.at = at + n
  }

  /** Room for `n` more bytes in the buffer; returns where they go. */
  private reserve(n: number): number {
    const at = this.at
    if (at + n > this.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(BUFFER_START_BYTES, 2 * this.bytes.byteLength, at + n))
      if (at > 0) copyBytes.call(this.bytes, grown, 0, 0, at)
      this.bytes = grown
    }
    return at
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
        const at = this.reserve(FRAME_HEADER_BYTES)
        writeFrameHeader(this.bytes, at, n, FrameType.DATA, endNow ? Flag.END_STREAM : 0, s.id)
        this.at = at + FRAME_HEADER_BYTES
        this.frameBytes += FRAME_HEADER_BYTES + n
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

  /** The first `n` bytes of `chunk` as a DATA payload: copied in when small, else kept aside (a view when it is part of the chunk). */
  private data(chunk: Uint8Array, n: number): void {
    if (n <= COPY_IN_MAX_BYTES) return this.put(chunk, 0, n)
    this.asideAt.push(this.at)
    this.aside.push(n === chunk.byteLength ? chunk : chunk.subarray(0, n))
  }

  private take(s: ServerStream, n: number): void {
    s.outBytes -= n
    while (n > 0) {
      const head = s.outQueue[0]!
      if (head.byteLength <= n) {
        this.data(head, head.byteLength)
        s.outQueue.shift()
        n -= head.byteLength
      } else {
        this.data(head, n)
        s.outQueue[0] = head.subarray(n)
        n = 0
      }
    }
  }
}
