/**
 * One HTTP/2 request stream on the server side (RFC 9113 §5.1), as its owner sees it: the request
 * head, the request body as a pull stream whose reading returns flow-control credit, and the
 * response side (respond, write with backpressure, end with optional trailers, reset). Frames,
 * windows shared across streams and the HPACK encoder belong to the session (session.ts), which
 * this file reaches only through StreamHost.
 */
import { Http2Error, H2Code, h2CodeName } from './errors.ts'
import { monoNow } from '../lib/clock.ts'
import { unwatchStall, watchStall, type StallWatch } from '../lib/stall-sweep.ts'
import type { HeaderField, HeadSource } from './hpack.ts'
import { responseFields, trailerFields, type H2Request } from './request.ts'
import type { Refused } from './refused.ts'

/** What a stream needs from its session. */
export interface StreamHost {
  readonly highWaterBytes: number
  sendHeaders(stream: ServerStream, fields: HeaderField[] | HeadSource, endStream: boolean): void
  /** The stream has response bytes or an end to send. */
  schedule(stream: ServerStream): void
  /** Reset by us: RST_STREAM, then close. */
  resetStream(stream: ServerStream, code: number): void
  /** Request body bytes the owner has taken (`read`), or dropped: their window credit can go back to the client. */
  consumed(stream: ServerStream, bytes: number, read?: boolean): void
  /** An owner's callback threw. */
  ownerFault(err: unknown): void
}

/** Why a stream ended: normally (`undefined`), or the reset code, sent or received. */
export type CloseCode = number | undefined

export class ServerStream {
  // ---- state the session and output.ts keep; owners read at most `closed` and `requestTrailers` ----
  /** Body bytes queued for sending; the session takes from the front. */
  outQueue: Uint8Array[] = []
  outBytes = 0
  /** Body bytes ever queued: less outBytes, those that went into DATA frames. */
  queuedBytes = 0
  /** end() was called: after outQueue, send END_STREAM (or trailers). */
  ending = false
  trailers: HeaderField[] | undefined
  /** END_STREAM has been sent (or is queued in the session's output). */
  localEnded = false
  remoteEnded = false
  closed = false
  /** Peer's window for our DATA on this stream (§6.9). */
  sendWindow: number
  /** What the client may still send on this stream, and what we took but did not credit back yet. */
  recvWindow: number
  recvUnacked = 0
  /** The window this stream is kept at (flow.ts: the initial one, grown while its reader keeps up). */
  recvTarget: number
  recvCreditedAtMs = 0
  recvLagged = false
  get recvQueuedBytes(): number {
    return this.inBytes
  }
  /** Body bytes received, for the content-length check (§8.1.1). */
  receivedBytes = 0
  /** Request trailers, when the client sent them. */
  requestTrailers: HeaderField[] | undefined
  /** The request reached the owner (onRequest); streams reset before that never do. */
  dispatched = false
  /** Set when the session refused the request itself (its trailers above the cap) before closing the stream. */
  refused: Refused | undefined
  /** The owner's own: what it keeps with the stream (the proxy: the request's exchange); the session never reads it. */
  owner: unknown = undefined

  /** Called when write() had returned false and the queue fell below the high-water mark. */
  onDrain: (() => void) | undefined
  /** DATA frames of this stream handed to the connection: a client's progress (send_timeout). */
  framesSent = 0
  /** Reset by our send_timeout (its record says CLIENT_SEND_TIMEOUT, not CLIENT_GONE). */
  sendTimedOut = false
  /** Called once when the stream is finished: `code` undefined for a clean end, else the reset code (read `refused` then). */
  onClose: ((code: CloseCode, stream: ServerStream) => void) | undefined
  /**
   * Called at the owner's first read of the body when none of it has come by then (none after:
   * a byte clears it, and a byte that came before it was set counts as well): where a
   * "100 Continue" goes, once the body is wanted (RFC 9110 §10.1.1).
   */
  onFirstRead: (() => void) | undefined
  /** How much longer than bodyStallMs the wait that onFirstRead starts may last (what it sends may come that much later). */
  firstReadGraceMs = 0
  /**
   * The longest wait for request body bytes while the owner waits for them (a read pending:
   * client_body_timeout, as nginx times HTTP/2 bodies); 0: none. Past it the owner's read fails
   * with an error whose `code` is "CLIENT_BODY_TIMEOUT" and the rest of the body is discarded.
   */
  bodyStallMs = 0

  readonly body: ReadableStream<Uint8Array> | null
  /** Body bytes received and not yet read; made at the first such chunk (none for a request without a body). */
  private inQueue: Uint8Array[] | undefined
  private inBytes = 0
  /** The last byte of a body whose content-length is complete, held until END_STREAM (receiveData). */
  private heldLast: Uint8Array | undefined = undefined
  /** The buffer small payloads are gathered into (queueData), and the queue's last entry while it is a view of it. */
  private gathering: Uint8Array | undefined
  private gathered: Uint8Array | undefined
  private pullWaiter: { ctrl: ReadableStreamDefaultController<Uint8Array>; resolve: () => void } | undefined
  private bodyDone = false
  private closeCode: CloseCode
  private discardBody = false
  private headersSent = false
  private wantDrain = false
  private bodyStall: StallWatch | undefined

  constructor(
    readonly id: number,
    readonly request: H2Request,
    private readonly host: StreamHost,
    sendWindow: number,
    recvWindow: number,
    hasBody: boolean,
  ) {
    this.sendWindow = sendWindow
    this.recvWindow = recvWindow
    this.recvTarget = recvWindow
    this.remoteEnded = !hasBody
    this.body = hasBody
      ? new ReadableStream<Uint8Array>({ pull: (ctrl) => this.pull(ctrl), cancel: () => this.cancelBody() }, { highWaterMark: 0 })
      : null
  }

  /** Sends the response head. A 1xx status (not 101) may come before the final one. */
  respond(status: number, headers: Iterable<HeaderField> = [], endStream = false): void {
    if (this.closed) return
    if (this.headersSent) throw new Http2Error(H2Code.INTERNAL_ERROR, this.id, 'response head already sent')
    if (status < 100 || status > 999 || status === 101) throw new Http2Error(H2Code.INTERNAL_ERROR, this.id, `status ${status} cannot be sent over HTTP/2`)
    const informational = status < 200
    if (!informational) this.headersSent = true
    this.host.sendHeaders(this, responseFields(status, headers), endStream && !informational)
    if (endStream && !informational) this.localEnded = this.ending = true
  }

  /**
   * Sends a final response head whose fields are already as HTTP/2 sends them: ":status" (200
   * or more) first, lower-case names, no connection-specific fields (ForwardedReply.h2Head).
   */
  respondWith(fields: HeaderField[] | HeadSource, endStream = false): void {
    if (this.closed) return
    if (this.headersSent) throw new Http2Error(H2Code.INTERNAL_ERROR, this.id, 'response head already sent')
    this.headersSent = true
    this.host.sendHeaders(this, fields, endStream)
    if (endStream) this.localEnded = this.ending = true
  }

  /** Queues response body bytes; false when the queue is above the high-water mark (wait for onDrain). */
  write(chunk: Uint8Array): boolean {
    if (this.closed || this.ending) return false
    if (!this.headersSent) throw new Http2Error(H2Code.INTERNAL_ERROR, this.id, 'write() before respond()')
    if (chunk.byteLength > 0) {
      this.outQueue.push(chunk)
      this.outBytes += chunk.byteLength
      this.queuedBytes += chunk.byteLength
      this.host.schedule(this)
    }
    if (this.outBytes < this.host.highWaterBytes) return true
    this.wantDrain = true
    return false
  }

  /** Ends the response after the queued bytes, with trailers when given (§8.1). */
  end(chunk?: Uint8Array, trailers?: Iterable<HeaderField>): void {
    if (this.closed || this.ending) return
    if (chunk) this.write(chunk)
    if (!this.headersSent) throw new Http2Error(H2Code.INTERNAL_ERROR, this.id, 'end() before respond()')
    this.ending = true
    if (trailers) {
      const fields = trailerFields(trailers)
      if (fields.length > 0) this.trailers = fields
    }
    this.host.schedule(this)
  }

  /**
   * Abandons the stream with RST_STREAM `code` (RFC 9113 §7): INTERNAL_ERROR for a response the
   * server cannot complete; CANCEL only where the stream is no longer needed.
   */
  reset(code: number): void {
    if (!this.closed) this.host.resetStream(this, code)
  }

  get responseStarted(): boolean {
    return this.headersSent
  }

  // ---- called by the session ----

  /**
   * Request body bytes from a DATA frame. With `holdLast` (its content-length is complete, and END_STREAM not yet come), the
   * last byte waits for END_STREAM (receiveEnd): a body streamed upstream as it comes then reaches the origin whole only once the
   * client has ended it; a reset, or a byte more (malformed: RFC 9113 §8.1.1 "MUST NOT forward"), leaves it one byte short.
   */
  receiveData(data: Uint8Array, holdLast = false): void {
    if (this.discardBody || this.bodyDone) {
      this.host.consumed(this, data.byteLength, false)
      return
    }
    if (data.byteLength === 0) return
    this.onFirstRead = undefined
    if (holdLast) {
      this.heldLast = data.slice(data.byteLength - 1)
      if (data.byteLength === 1) return
      data = data.subarray(0, data.byteLength - 1)
    }
    const w = this.pullWaiter
    if (w) {
      this.pullWaiter = undefined
      this.stopBodyStall()
      w.ctrl.enqueue(data)
      this.host.consumed(this, data.byteLength)
      w.resolve()
      return
    }
    this.inBytes += data.byteLength
    this.queueData((this.inQueue ??= []), data)
  }

  /**
   * Queues body bytes no read waits for. A payload under GATHER_BELOW_BYTES after another such is
   * copied into one buffer with it (grown by doubling, at most GATHER_BYTES), so a body framed in
   * DATA frames of a few bytes is held as its bytes and about one entry per 16 KiB, not one per
   * frame: a view and a queue entry per 5 bytes was ~30 heap bytes per body byte, and each went
   * upstream as a chunk of its own.
   */
  private queueData(q: Uint8Array[], data: Uint8Array): void {
    const n = data.byteLength
    const last = q.length > 0 ? q[q.length - 1]! : undefined
    if (n >= GATHER_BELOW_BYTES || last === undefined || (last !== this.gathered && last.byteLength >= GATHER_BELOW_BYTES)) return void q.push(data)
    const held = last.byteLength
    let into = last === this.gathered ? this.gathering : undefined
    if (into === undefined || held + n > into.byteLength) {
      if (held + n > GATHER_BYTES) return void q.push(data) // a full buffer: the next small one starts another
      const grown = new Uint8Array(Math.min(GATHER_BYTES, Math.max(256, 2 * (held + n))))
      grown.set(last)
      into = this.gathering = grown
    }
    into.set(data, held)
    q[q.length - 1] = this.gathered = into.subarray(0, held + n)
  }

  /** END_STREAM from the client. */
  receiveEnd(): void {
    const held = this.heldLast
    this.heldLast = undefined
    if (held !== undefined) this.receiveData(held)
    this.remoteEnded = true
    const w = this.pullWaiter
    if (w && (this.inQueue === undefined || this.inQueue.length === 0)) {
      this.pullWaiter = undefined
      this.stopBodyStall()
      this.finishBody(w.ctrl)
      w.resolve()
    }
  }

  /** Queued response bytes fell: tell a waiting writer. */
  sent(): void {
    this.framesSent++
    if (this.wantDrain && this.outBytes < this.host.highWaterBytes) {
      this.wantDrain = false
      callOwner(this.host, this.onDrain, undefined, undefined)
    }
  }

  /** The stream is finished; returns unread body bytes, whose connection credit the session returns. */
  finish(code: CloseCode): number {
    if (this.closed) return 0
    this.closed = true
    const unread = this.inBytes + (this.heldLast?.byteLength ?? 0)
    this.heldLast = undefined
    this.inQueue = undefined
    this.gathering = this.gathered = undefined
    this.inBytes = 0
    this.outQueue.length = 0
    // Unread body bytes are dropped with the stream: the reader then sees an error, not a short body.
    this.closeCode = code ?? (unread > 0 && !this.bodyDone ? H2Code.CANCEL : undefined)
    const w = this.pullWaiter
    this.pullWaiter = undefined
    this.stopBodyStall()
    if (w) {
      this.finishBody(w.ctrl)
      w.resolve()
    }
    callOwner(this.host, this.onClose, code, this) // outBytes still says what of the body never went into a DATA frame
    this.outBytes = 0
    return unread
  }

  private pull(ctrl: ReadableStreamDefaultController<Uint8Array>): Promise<void> | void {
    const chunk = this.inQueue?.shift()
    if (chunk) {
      this.inBytes -= chunk.byteLength
      ctrl.enqueue(chunk)
      this.host.consumed(this, chunk.byteLength)
      return
    }
    if (this.remoteEnded || this.closed) return this.finishBody(ctrl)
    const first = this.onFirstRead
    let graceMs = 0
    if (first) {
      this.onFirstRead = undefined
      // Body bytes may have come before the owner set it (with the head, in the same read: the
      // owner gets the stream only after that read): then the body is on its way, and no call.
      if (this.receivedBytes === 0) {
        callOwner(this.host, first, undefined, undefined)
        graceMs = this.firstReadGraceMs // the client waits for what the call sends, perhaps that much later
      }
    }
    if (this.bodyStallMs > 0) this.watchBodyStall(this.bodyStallMs + graceMs)
    return new Promise<void>((resolve) => {
      this.pullWaiter = { ctrl, resolve }
    })
  }

  /** Times the owner's wait for body bytes (bodyStallMs); one sweep for every watch (lib/stall-sweep.ts). */
  private watchBodyStall(limitMs: number): void {
    const w = (this.bodyStall ??= { since: 0, limitMs, expire: () => this.bodyStalled() })
    w.limitMs = limitMs // the first read's may have had firstReadGraceMs more
    w.since = monoNow()
    watchStall(w)
  }

  private stopBodyStall(): void {
    if (this.bodyStall) unwatchStall(this.bodyStall)
  }

  /** The owner told the client to send (a 100 went out): a read waiting now is timed from here, bodyStallMs, without the first read's grace. */
  restartBodyStall(): void {
    if (this.pullWaiter !== undefined && this.bodyStallMs > 0) this.watchBodyStall(this.bodyStallMs)
  }

  /** No body bytes for bodyStallMs while the owner waited: its read fails, and what comes after is dropped (its credit returned). */
  private bodyStalled(): void {
    const w = this.pullWaiter
    if (!w || this.closed) return
    this.pullWaiter = undefined
    this.bodyDone = this.discardBody = true
    w.ctrl.error(Object.assign(new Error(`no request body bytes for ${this.bodyStallMs}ms (client_body_timeout)`), { code: 'CLIENT_BODY_TIMEOUT' }))
    w.resolve()
  }

  private finishBody(ctrl: ReadableStreamDefaultController<Uint8Array>): void {
    if (this.bodyDone) return
    this.bodyDone = true
    // A body cut short (reset, or the connection gone) must not look complete to the reader.
    if (this.closed && (this.closeCode !== undefined || !this.remoteEnded)) {
      const code = this.closeCode ?? H2Code.CANCEL
      ctrl.error(new Http2Error(code, this.id, `request stream reset before its end: ${h2CodeName(code)}`))
    } else ctrl.close()
  }

  /** The owner does not want the rest of the body: drop it, keep the client's windows open. */
  private cancelBody(): void {
    this.discardBody = true
    this.bodyDone = true
    const unread = this.inBytes + (this.heldLast?.byteLength ?? 0)
    this.heldLast = undefined
    this.inQueue = undefined
    this.inBytes = 0
    if (unread > 0) this.host.consumed(this, unread, false)
  }
}

/** Runs an owner's callback; its exception is the owner's bug, reported, and must not break the connection's frames. */
function callOwner<A, B>(host: StreamHost, fn: ((a: A, b: B) => void) | undefined, a: A, b: B): void {
  if (!fn) return
  try {
    fn(a, b)
  } catch (err) {
    host.ownerFault(err)
  }
}

/** Request body payloads under this size, queued one after another, are gathered into one buffer (queueData). */
const GATHER_BELOW_BYTES = 4096
/** The size of such a buffer. */
const GATHER_BYTES = 16 * 1024
