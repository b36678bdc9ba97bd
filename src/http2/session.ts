/**
 * A server-side HTTP/2 connection (RFC 9113), independent of the transport: bytes come in through
 * receive(), go out through the injected write(), and requests come out as ServerStreams through
 * onRequest. This file owns the connection state: the SETTINGS exchange (§3.4, §6.5), frame
 * dispatch, opening streams (§5.1), GOAWAY (§6.8), the idle timeout, and where each flood budget
 * is charged. Elsewhere: frame splitting (reader.ts) and codecs (frames.ts), header blocks across
 * CONTINUATION (header-block.ts), HPACK (hpack.ts), request checks (request.ts), receive flow
 * control (flow.ts), budgets (floods.ts), the open streams and how they end (streams.ts), the
 * per-stream API (stream.ts), and the outgoing queue with DATA scheduling (output.ts).
 */
import { monoNow } from '../lib/clock.ts'
import { connectionError, H2Code, Http2Error, streamError } from './errors.ts'
import { HeaderBlock } from './header-block.ts'
import * as F from './frames.ts'
import { HpackDecoder, HpackEncoder, type HeaderField, type HeadSource } from './hpack.ts'
import { FloodGuard } from './floods.ts'
import { ReceiveFlow } from './flow.ts'
import { announcedSettings, FAR_WINDOWS, resolveLimits, type Http2Limits } from './limits.ts'
import { Output } from './output.ts'
import { FrameReader } from './reader.ts'
import { checkTrailers } from './request.ts'
import { admitCutFrame } from './cut-frames.ts'
import { ServerStream, type StreamHost } from './stream.ts'
import { StreamTable } from './streams.ts'
import type { SessionOptions } from './session-options.ts'

export type { SessionOptions } from './session-options.ts'

export class ServerSession implements StreamHost {
  readonly limits: Http2Limits
  readonly highWaterBytes: number
  private readonly out: Output
  private readonly decoder: HpackDecoder
  private readonly encoder = new HpackEncoder(4096)
  private readonly streams: StreamTable
  private readonly now: () => number
  private settingsSeen = false
  private readonly reader: FrameReader
  private readonly block: HeaderBlock
  /** The last stream we process after a GOAWAY either way (§6.8). */
  private goawayLastId: number | undefined
  private peerInitialWindow = F.DEFAULT_WINDOW
  private readonly flow: ReceiveFlow
  private toDispatch: ServerStream[] = []
  /** The list dispatch() emptied, for the next read's requests (none while a dispatch runs). */
  private spareDispatch: ServerStream[] | undefined
  private lastProgressMs: number
  private headDueMs: number // by when the header block begun (at first: the first one) must be complete; 0: none due
  private ended = false
  private readonly floods: FloodGuard

  constructor(private readonly opts: SessionOptions) {
    const l = (this.limits = resolveLimits(opts.roundTripMs ? { ...FAR_WINDOWS, ...opts.limits } : opts.limits))
    this.highWaterBytes = l.streamHighWaterBytes
    this.now = opts.now ?? monoNow
    this.lastProgressMs = this.now()
    this.headDueMs = l.headTimeoutMs > 0 ? this.lastProgressMs + l.headTimeoutMs : 0
    this.decoder = new HpackDecoder(l.headerTableBytes, l.maxHeaderListBytes)
    this.reader = new FrameReader(l.maxFrameBytes, (h) => admitCutFrame(h, this.flow, this.streams, l.maxHeaderBlockBytes))
    this.block = new HeaderBlock(l.maxHeaderBlockBytes, l.maxContinuationFrames)
    this.floods = new FloodGuard(l, this.now)
    this.out = new Output({ write: (b) => opts.write(b) }, l.maxQueuedControlBytes)
    this.out.onStreamDone = (s) => {
      try {
        this.streams.localDone(s)
      } catch (err) {
        this.guardFailed(err)
      }
    }
    this.out.onFault = (err) => this.fail(err instanceof Http2Error ? err : connectionError(H2Code.INTERNAL_ERROR, String(err)))
    // Server preface (§3.4): our SETTINGS, then the larger connection window (§6.9.2).
    this.out.push(F.settingsFrame(announcedSettings(l)))
    this.flow = new ReceiveFlow(l, (f) => this.out.push(f, false), opts.roundTripMs ?? 0, this.now)
    this.flow.start()
    this.streams = new StreamTable(this.out, this.encoder, this.flow, this.floods, l.streamInitialWindowBytes, () => this.streamClosed(), opts.onRefused, (err) => this.ownerFault(err))
  }

  /** Open streams (requests not yet finished both ways). */
  get streamCount(): number {
    return this.streams.size
  }

  /** The open streams themselves (a drain's end answers or resets each: H2Client.cut). */
  get openStreams(): IterableIterator<ServerStream> {
    return this.streams.values()
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    if (this.ended) return
    try {
      this.reader.push(chunk, this.onFrame)
    } catch (err) {
      return this.fail(err instanceof Http2Error ? err : connectionError(H2Code.INTERNAL_ERROR, String(err)))
    }
    this.dispatch()
  }

  /** Each frame of a read (made once, not per read): a stream error resets the stream, a connection error ends receive(). */
  private readonly onFrame = (h: F.FrameHeader, payload: Uint8Array): boolean => {
    try {
      this.frame(h, payload)
    } catch (err) {
      if (!(err instanceof Http2Error) || err.streamId === 0) throw err
      this.streams.failed(err)
    }
    return !this.ended
  }

  /** The transport sent what it had queued. */
  drained(): void { if (!this.ended) this.guard(() => this.out.drained()) }

  /**
   * Graceful shutdown (§6.8): GOAWAY naming the last stream we take, open streams finish, then close (drains, timeouts). `notice`:
   * only a GOAWAY of 2^31-1 (no new streams; those on their way are still taken), as §6.8 asks; a call a round trip later names the last.
   */
  shutdown(code: number = H2Code.NO_ERROR, debug = '', notice = false): void {
    if (this.ended) return
    if (notice) return void (this.goawayLastId === undefined && this.out.push(F.goawayFrame(F.MAX_STREAM_ID, code, debug)))
    if (this.goawayLastId === undefined) {
      this.goawayLastId = this.streams.lastStreamId
      this.out.push(F.goawayFrame(this.streams.lastStreamId, code, debug))
    }
    if (this.streams.size === 0) this.end(undefined)
  }

  /** Closes at once: every stream is reset, the transport closed. */
  destroy(): void {
    this.end(undefined)
  }

  /** Call now and then (every second): the idle timeout; the head timeout (no first request, or a header block unfinished, in time). */
  sweep(nowMs: number = this.now()): void {
    const idle = this.limits.idleTimeoutMs
    if (!this.ended && idle > 0 && this.streams.size === 0 && nowMs - this.lastProgressMs >= idle) this.shutdown(H2Code.NO_ERROR, 'idle')
    if (!this.ended && this.headDueMs > 0 && nowMs >= this.headDueMs && (this.block.open || this.streams.size === 0)) void (this.opts.onHeadTimeout?.(), this.shutdown(H2Code.NO_ERROR, 'no complete request head in time'))
  }

  // ---- StreamHost ----
  sendHeaders(stream: ServerStream, fields: HeaderField[] | HeadSource, endStream: boolean): void {
    if (this.ended) return
    // guard()'s handling without a closure made per response.
    try {
      const end = this.encoder.encodeInPlace(fields, F.FRAME_HEADER_BYTES)
      this.out.pushHeaders(stream.id, this.encoder.lastBlock, end, endStream)
      if (endStream) {
        stream.localEnded = true
        this.streams.localDone(stream)
      }
    } catch (err) {
      this.guardFailed(err)
    }
  }

  schedule(stream: ServerStream): void {
    this.out.schedule(stream)
  }

  resetStream(stream: ServerStream, code: number): void {
    if (this.ended) return
    this.guard(() => {
      this.streams.sendRst(stream.id, code)
      this.streams.close(stream, code)
    })
  }

  ownerFault(err: unknown): void {
    if (this.opts.onError) this.opts.onError(err)
    else queueMicrotask(() => { throw err })
  }

  consumed(stream: ServerStream, bytes: number, read = true): void {
    if (bytes <= 0 || this.ended) return
    this.guard(() => this.flow.consumed(stream, bytes, !stream.closed && !stream.remoteEnded, read))
  }

  // ---- frames in ----

  private frame(h: F.FrameHeader, p: Uint8Array): void {
    // An ACK is no client preface: it carries none of the client's settings (§3.4, §6.5.3).
    if (!this.settingsSeen && (h.type !== F.FrameType.SETTINGS || h.flags & F.Flag.ACK)) throw connectionError(H2Code.PROTOCOL_ERROR, 'first frame is not a SETTINGS without ACK (RFC 9113 §3.4)')
    if (this.block.open && h.type !== F.FrameType.CONTINUATION) throw connectionError(H2Code.PROTOCOL_ERROR, 'header block interrupted (RFC 9113 §6.10)')
    switch (h.type) {
      case F.FrameType.DATA:
        return this.data(h, p)
      case F.FrameType.HEADERS:
        return this.headers(h, p)
      case F.FrameType.CONTINUATION:
        return this.continuation(h, p)
      case F.FrameType.PRIORITY: {
        if (h.streamId === 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'PRIORITY on stream 0 (RFC 9113 §6.3)')
        const prio = F.parsePriority(h, p)
        // Priority signals are deprecated (§5.3.2) and ignored, but they are counted: a flood costs us work.
        this.floods.empty('PRIORITY frames')
        if (prio.dependsOn === h.streamId) throw streamError(h.streamId, H2Code.PROTOCOL_ERROR, 'stream depends on itself (RFC 9113 §5.3.1)')
        return
      }
      case F.FrameType.RST_STREAM:
        return this.rstStream(h, p)
      case F.FrameType.SETTINGS:
        return this.settings(h, p)
      case F.FrameType.PUSH_PROMISE:
        throw connectionError(H2Code.PROTOCOL_ERROR, 'a client cannot send PUSH_PROMISE (RFC 9113 §8.4)')
      case F.FrameType.PING: {
        const data = F.parsePing(h, p)
        this.floods.ping()
        if ((h.flags & F.Flag.ACK) === 0) this.out.push(F.pingFrame(data, true))
        return
      }
      case F.FrameType.GOAWAY:
        F.parseGoaway(h, p)
        // Ours names the last stream we process (§6.8): one opened later is known to the client as not processed (§8.7).
        return this.shutdown(H2Code.NO_ERROR, 'client sent GOAWAY')
      case F.FrameType.WINDOW_UPDATE:
        return this.windowUpdate(h, p)
      default:
        // Unknown frame types are ignored (§4.1, §5.5), and counted like empty frames.
        this.floods.empty('unknown frames')
    }
  }

  private settings(h: F.FrameHeader, p: Uint8Array): void {
    const list = F.parseSettings(h, p)
    this.settingsSeen = true
    this.floods.setting() // ACKs too: we send one SETTINGS, so a flood of them is work without progress as much
    if (h.flags & F.Flag.ACK) return
    for (const [id, value] of list) {
      if (id === F.Setting.HEADER_TABLE_SIZE) this.encoder.setPeerTableSize(value)
      else if (id === F.Setting.MAX_FRAME_SIZE) this.out.peerMaxFrame = value
      else if (id === F.Setting.INITIAL_WINDOW_SIZE) {
        // A change applies to every open stream's window, which may go negative (§6.9.2).
        const delta = value - this.peerInitialWindow
        this.peerInitialWindow = value
        for (const s of this.streams.values()) {
          s.sendWindow += delta
          if (s.sendWindow > F.MAX_WINDOW) throw connectionError(H2Code.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window')
        }
        if (delta > 0) this.out.windowOpened()
      }
    }
    this.out.push(F.SETTINGS_ACK)
  }

  private windowUpdate(h: F.FrameHeader, p: Uint8Array): void {
    // Idle first: even an increment of 0 there is a connection error, not an RST_STREAM (§5.1, §6.4).
    if (this.streams.isIdle(h.streamId)) throw connectionError(H2Code.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream (RFC 9113 §5.1)')
    const inc = F.parseWindowUpdate(h, p)
    this.floods.windowUpdate(this.out.dataFramesSent)
    if (h.streamId === 0) {
      this.out.sendWindow += inc
      if (this.out.sendWindow > F.MAX_WINDOW) throw connectionError(H2Code.FLOW_CONTROL_ERROR, 'connection window above 2^31-1 (RFC 9113 §6.9.1)')
    } else {
      const s = this.streams.get(h.streamId)
      if (!s) return // a closed stream: ignored
      s.sendWindow += inc
      if (s.sendWindow > F.MAX_WINDOW) throw streamError(s.id, H2Code.FLOW_CONTROL_ERROR, 'stream window above 2^31-1 (RFC 9113 §6.9.1)')
    }
    this.out.windowOpened()
  }

  private rstStream(h: F.FrameHeader, p: Uint8Array): void {
    if (h.streamId === 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'RST_STREAM on stream 0 (RFC 9113 §6.4)')
    const code = F.parseRstStream(p)
    if (this.streams.isIdle(h.streamId)) throw connectionError(H2Code.PROTOCOL_ERROR, 'RST_STREAM on an idle stream (RFC 9113 §6.4)')
    const s = this.streams.get(h.streamId)
    if (!s) return void (this.out.cancelSoon(h.streamId), this.floods.reset('resets of closed streams')) // ignored (§5.1), but not for free; a reset held for it goes no more
    // Rapid reset (CVE-2023-44487): opening and cancelling streams costs us work without limit.
    this.floods.reset('stream resets')
    // A request already handed on (the origin is working on it) and dropped before its answer.
    if (s.dispatched && !s.responseStarted) this.floods.abandon()
    this.streams.close(s, code)
  }

  private headers(h: F.FrameHeader, p: Uint8Array): void {
    if (h.streamId === 0 || h.streamId % 2 === 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'HEADERS on stream 0 or an even stream (RFC 9113 §5.1.1)')
    this.block.begin(h, p)
    const l = this.limits
    if (l.headTimeoutMs > 0 && this.headDueMs === 0) this.headDueMs = this.now() + l.headTimeoutMs
    if (h.flags & F.Flag.END_HEADERS) this.finishBlock()
  }

  private continuation(h: F.FrameHeader, p: Uint8Array): void {
    const b = this.block
    if (!b.open || b.streamId !== h.streamId) throw connectionError(H2Code.PROTOCOL_ERROR, 'CONTINUATION without an open header block (RFC 9113 §6.10)')
    b.add(p, true)
    if (h.flags & F.Flag.END_HEADERS) this.finishBlock()
  }

  private finishBlock(): void {
    const b = this.block
    this.headDueMs = 0
    const bytes = b.finish()
    const decoded = this.decoder
    decoded.decodeList(bytes)
    const id = b.streamId
    const existing = this.streams.get(id)
    if (existing) {
      // Trailers (§8.1): must end the stream.
      if (existing.remoteEnded) throw streamError(id, H2Code.STREAM_CLOSED, 'HEADERS after END_STREAM (RFC 9113 §5.1)')
      if (!b.endStream) throw streamError(id, H2Code.PROTOCOL_ERROR, 'second HEADERS without END_STREAM (RFC 9113 §8.1)')
      if (decoded.tooLarge) return this.streams.trailersTooLarge(existing)
      existing.requestTrailers = checkTrailers(id, decoded.fields())
      const cl = existing.request.contentLength
      if (cl !== undefined && existing.receivedBytes !== cl) throw this.streams.bodyLengthDiffers(id, existing.request, existing)
      this.streams.remoteEnd(existing)
      return
    }
    if (id <= this.streams.lastStreamId) return this.streams.headersOnClosed(id)
    this.streams.opened(id)
    this.lastProgressMs = this.now()
    // After our GOAWAY: ignored, its body and trailers too, the client may retry elsewhere (§6.8); counted like a refused stream.
    if (this.goawayLastId !== undefined) {
      this.streams.drop(id)
      return this.floods.reset('streams opened after GOAWAY')
    }
    if (b.selfDependent) throw streamError(id, H2Code.PROTOCOL_ERROR, 'stream depends on itself (RFC 9113 §5.3.1)')
    if (this.streams.size >= this.limits.maxConcurrentStreams) throw streamError(id, H2Code.REFUSED_STREAM, 'over SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2)')
    if (decoded.tooLarge) {
      this.streams.headTooLarge(id, decoded.fields())
      if (!b.endStream) this.streams.resetAfterAnswer(id)
      return
    }
    const request = this.streams.checkedRequest(id, decoded.names, decoded.values)
    if (b.endStream && request.contentLength) throw this.streams.bodyLengthDiffers(id, request, undefined)
    const stream = new ServerStream(id, request, this, this.peerInitialWindow, this.limits.streamInitialWindowBytes, !b.endStream)
    this.streams.add(stream)
    this.toDispatch.push(stream)
  }

  private data(h: F.FrameHeader, p: Uint8Array): void {
    if (h.streamId === 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'DATA on stream 0 (RFC 9113 §6.1)')
    // Flow control counts the whole payload, padding included (§6.9.1).
    this.flow.chargeConnection(h.length)
    const s = this.streams.get(h.streamId)
    if (!s || s.remoteEnded) return this.streams.dataNotOpen(h, p, s)
    this.flow.chargeStream(s, h.length)
    const data = F.stripPadding(h, p)
    const end = (h.flags & F.Flag.END_STREAM) !== 0
    this.floods.data(h.length, data.byteLength, end)
    // Padding is credited back at once: the owner never sees it.
    if (h.length > data.byteLength) this.consumed(s, h.length - data.byteLength, false)
    if (data.byteLength > 0) this.lastProgressMs = this.now()
    s.receivedBytes += data.byteLength
    const cl = s.request.contentLength
    if (cl !== undefined && (s.receivedBytes > cl || (end && s.receivedBytes !== cl))) {
      this.flow.taken(data.byteLength) // never handed on: a reader waiting would forward it (H2.CL)
      throw this.streams.bodyLengthDiffers(s.id, s.request, s)
    }
    s.receiveData(data, cl !== undefined && !end && s.receivedBytes === cl) // complete but not ended: its last byte waits for the end
    if (end) this.streams.remoteEnd(s)
  }

  private streamClosed(): void {
    // Idle time counts from the end of the last stream; after GOAWAY the last one ends the connection.
    this.lastProgressMs = this.now()
    if (this.goawayLastId !== undefined && this.streams.size === 0) this.end(undefined)
  }

  /** Hands new requests to the owner after the whole chunk is read: a stream reset in the same chunk never reaches it. */
  private dispatch(): void {
    const list = this.toDispatch
    if (list.length === 0) return
    this.toDispatch = this.spareDispatch ?? []
    this.spareDispatch = undefined
    for (const s of list) {
      if (s.closed || this.ended) continue
      s.dispatched = true
      try {
        this.opts.onRequest(s)
      } catch (err) {
        s.reset(H2Code.INTERNAL_ERROR)
        this.ownerFault(err)
      }
    }
    list.length = 0
    this.spareDispatch = list
  }

  // ---- connection end ----

  private guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.guardFailed(err)
    }
  }

  /** What guard() does with a throw: a stream error resets the stream, anything else ends the connection. */
  private guardFailed(err: unknown): void {
    if (err instanceof Http2Error && err.streamId !== 0) {
      try {
        this.streams.failed(err)
        return
      } catch (e) {
        err = e
      }
    }
    this.fail(err instanceof Http2Error ? err : connectionError(H2Code.INTERNAL_ERROR, String(err)))
  }

  private fail(err: Http2Error): void {
    if (this.ended) return
    this.out.push(F.goawayFrame(this.goawayLastId ?? this.streams.lastStreamId, err.h2Code, err.message.slice(0, 200)), false) // never above a GOAWAY's id (§6.8)
    this.end(err)
  }

  private end(err: Http2Error | undefined): void {
    if (this.ended) return
    this.ended = true
    this.streams.abortAll(err ? err.h2Code : H2Code.CANCEL)
    this.toDispatch = []
    this.out.flushNow()
    this.out.close()
    this.opts.close()
    this.opts.onClose?.(err)
  }
}
