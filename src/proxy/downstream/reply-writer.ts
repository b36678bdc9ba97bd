/**
 * The writing half of a client connection: a reply's head (http1/response-encode.ts) and its body,
 * whole in one send or pumped from a stream with backpressure (the upstream pauses while the
 * client's socket is full), chunked where the framing needs it. Bytes the socket did not take wait
 * in a WriteQueue; end() waits for them. The access records of replies not yet taken by the socket
 * wait with them (held-records.ts). Reading requests is client-connection.ts's.
 */
import { Buffer } from 'node:buffer'
import { SLICE_BYTES, slicesOf, SocketBodyStream } from '../../http1/body-stream.ts'
import { encodeChunk, LAST_CHUNK } from '../../http1/chunked.ts'
import { encodeInterim, encodeResponseHead, isBodiless } from '../../http1/response-encode.ts'
import { SendBacklog } from '../../runtime/send-backlog.ts'
import { WriteQueue } from '../../runtime/write-queue.ts'
import { continueLater } from './continue-wait.ts'
import { HeldRecords } from './held-records.ts'
import { monoNow } from '../../lib/clock.ts'
import { unwatchStall, watchStall, type StallWatch } from '../../lib/stall-sweep.ts'
import { RequestFailure } from '../errors.ts'
import type { ProxyReply, SelfEncodingReply } from '../message.ts'

/** The socket operations the writer needs. */
export interface WritableSocket {
  write(data: Uint8Array): number
  end(): void
}

/** How a reply ended: written whole, or cut (its body stream broke); and whether the connection closes after it. */
export type ReplyEndFn = (end: 'done' | 'failed', close: boolean) => void

const EMPTY = new Uint8Array(0)

export class ReplyWriter {
  private readonly out: WriteQueue
  /** The access records of replies the socket has not taken yet (the connection holds them: holdRecord). */
  readonly records: HeldRecords
  /** The client socket's unsent backlog: small until the client has taken a few MiB (runtime/send-backlog.ts). */
  private readonly backlog: SendBacklog
  private drainWaiter: (() => void) | undefined
  /** What waits for every queued byte to reach the socket (the connection's next request). */
  private flushWaiter: (() => void) | undefined
  private reader: ReturnType<ReadableStream<Uint8Array>['getReader']> | undefined
  /** The wait on a client that does not drain, timed by send_timeout (made at the first wait). */
  private stall: StallWatch | undefined
  closed = false
  /** A 100 Continue went out ahead of the reply being waited for (the proxy's own, or the upstream's). */
  private continued = false
  /** The wait before the proxy's own 100 (continueLater). */
  private continueTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly sock: WritableSocket,
    /** The listener's settings (send_timeout is read at each wait: a reload may change it). */
    private readonly limits: { readonly sendTimeoutMs: number },
    /** The client took nothing for send_timeout: the body was cancelled; the connection is to be cut (`failure` says why, for a tunnel's record). */
    private readonly onStall: (failure: RequestFailure) => void,
    /** Ends the socket once the last reply is sent, in place of its end() (client-connection.ts: a lingering close). */
    end?: () => void,
  ) {
    // Batched: answers written from promise reactions go out together (runtime/write-queue.ts).
    this.out = new WriteQueue(sock, { batch: true, onQueued: () => this.watchStall(), end, onSent: () => this.records.taken() })
    this.records = new HeldRecords(this.out)
    this.backlog = new SendBacklog(sock)
  }

  /**
   * Writes `reply` to a request of `method` in HTTP/1.`minor` (`close`: the connection is to close
   * after it), and calls `onEnd` when the body is written ('failed' when its stream broke: the
   * client must see a cut, not an end), saying whether the connection closes after it. The
   * request's facts come as arguments, not an object made per reply.
   */
  writeReply(reply: ProxyReply, method: string, minor: number, close: boolean, onEnd: ReplyEndFn): void {
    this.continued = false // the next request may have its own 100
    if (this.continueTimer !== undefined) this.continueTimer = void clearTimeout(this.continueTimer)
    // A small whole body the reply holds in the bytes it came in: written with its head, not asked for as an array.
    const own = 'encodeWhole' in reply ? (reply as SelfEncodingReply).encodeWhole?.(method, minor, close) : undefined
    if (own !== undefined) {
      const ownClose = own.close
      this.write(own.bytes)
      this.records.replyEnded()
      onEnd('done', ownClose)
      return
    }
    let stream = reply.body instanceof ReadableStream ? reply.body : undefined
    let bytes: Uint8Array = EMPTY
    if (!stream) {
      const b = reply.body as Uint8Array | string | null
      bytes = b === null ? EMPTY : typeof b === 'string' ? Buffer.from(b, 'utf8') : b
    }
    const bodiless = isBodiless(method, reply.status)
    const whole = stream ? undefined : bytes
    // A large whole body is written in slices after its head (its length is listed: a stored reply's own, else given here).
    const sliced = whole !== undefined && whole.byteLength > SLICE_BYTES && !bodiless
    const after = sliced ? undefined : whole
    // An upstream's answer, or a stored one, is copied from what it was made of; anything else
    // (or one whose fields were asked for as a list) is written from its list. A whole body goes
    // in the same array as the head: one send.
    const head =
      ('encodeHead' in reply ? (reply as SelfEncodingReply).encodeHead(method, minor, close, after) : undefined) ??
      encodeResponseHead({ status: reply.status, statusText: reply.statusText, headers: reply.headers, method, minor, bodyLength: whole?.byteLength, close }, after)
    // Read at once: a self-encoding reply's answer may be one object it fills again (SelfEncodingReply).
    const headClose = head.close
    if (sliced) stream = slicesOf(whole)
    this.write(head.bytes)
    if (!stream || bodiless) {
      stream?.cancel().catch(() => {})
      this.records.replyEnded()
      onEnd('done', headClose)
      return
    }
    void this.pump(stream, head.chunked, (end) => onEnd(end, headClose))
  }

  private async pump(stream: ReadableStream<Uint8Array>, chunked: boolean, onEnd: (end: 'done' | 'failed') => void): Promise<void> {
    const reader = stream.getReader()
    this.reader = reader
    // A body read from an upstream socket sizes its reads by whether the client keeps up.
    const source = SocketBodyStream.of(stream)
    let failed = false
    let watching = false
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        if (this.closed) return
        if (value.byteLength === 0) continue
        const whole = this.write(chunked ? encodeChunk(value) : value)
        source?.wrote(whole, value.byteLength)
        this.backlog.wrote(value.byteLength)
        if (!whole) {
          // A body that breaks while we wait on the client (the upstream failed) ends the wait,
          // so that the client sees the cut now; watched from the first wait on.
          if (!watching) {
            watching = true
            reader.closed.catch(() => this.wakeDrainWaiter())
          }
          await new Promise<void>((r) => (this.drainWaiter = r))
          if (this.closed) return
        }
      }
      if (chunked) this.write(LAST_CHUNK)
    } catch {
      // The upstream failed mid-body.
      failed = true
    } finally {
      this.reader = undefined
    }
    if (!failed) this.records.replyEnded()
    onEnd(failed ? 'failed' : 'done')
  }

  /**
   * An interim (1xx) head ahead of the reply (the caller checks that the client may take one).
   * One 100 per request: a second, the upstream's after the proxy's own (Expect: 100-continue)
   * or the other way round, carries nothing.
   */
  interim(status: number, headers: [string, string][]): void {
    if (status === 100) {
      if (this.continued) return
      this.continued = true
    }
    this.write(encodeInterim(status, headers))
  }

  /**
   * The proxy's own 100 for a client waiting on Expect: 100-continue, once the upstream has had
   * CONTINUE_WAIT_MS to send its own or answer (continue-wait.ts): `send` writes it where the client
   * may still take one. A reply, or the upstream's 100, first: none.
   */
  continueLater(send: () => void): void {
    if (this.continued || this.continueTimer !== undefined) return
    this.continueTimer = continueLater(() => {
      this.continueTimer = undefined
      if (!this.continued && !this.closed) send()
    })
  }

  /** Writes all of `data`; false when some of it is queued until the socket drains. */
  write(data: Uint8Array): boolean {
    if (this.closed) return false
    return this.out.write(data)
  }

  /**
   * Times the wait of queued bytes with send_timeout (as nginx's), whatever they are (a streamed
   * body, or a whole one: a cache hit): each drain, the socket having taken bytes, starts it
   * again, and an empty queue ends it; past it, the body is cancelled (the exchange logs
   * CLIENT_SEND_TIMEOUT) and the connection cut, which frees the upstream connection and the
   * request's slot.
   */
  private watchStall(): void {
    const limitMs = this.limits.sendTimeoutMs
    if (!(limitMs > 0)) return // 0 (off), or a listener opened without it
    const w = (this.stall ??= {
      since: 0,
      limitMs,
      expire: () => {
        const failure = new RequestFailure('CLIENT_SEND_TIMEOUT', 'response-body', `the client took no response bytes for ${w.limitMs}ms (send_timeout)`)
        this.reader?.cancel(failure).catch(() => {})
        this.onStall(failure)
      },
    })
    w.limitMs = limitMs
    w.since = monoNow()
    watchStall(w)
  }

  private wakeDrainWaiter(): void {
    const w = this.drainWaiter
    this.drainWaiter = undefined
    w?.()
  }

  /** The socket drained: sends what was queued; true when the queue is empty. */
  onDrain(): boolean {
    if (this.stall) this.stall.since = monoNow() // the client took bytes: progress
    const open = this.out.flush()
    this.records.taken()
    if (!open) {
      // All sent and the socket ended (endWhenFlushed): nothing waits for the client any more.
      if (this.stall && this.out.empty) unwatchStall(this.stall)
      return false
    }
    if (this.stall) unwatchStall(this.stall)
    this.wakeDrainWaiter()
    const next = this.flushWaiter
    this.flushWaiter = undefined
    next?.()
    return true
  }

  /**
   * Whether bytes of a reply wait for the client to take them (its socket is full); then `next`
   * runs once they have all gone to the socket. A connection reads its next request only then,
   * as nginx and HAProxy do, so that a client that pipelines requests and reads nothing does not
   * have their replies piled up in memory (send_timeout bounds the wait).
   */
  holdUntilFlushed(next: () => void): boolean {
    if (this.closed || !this.out.backlogged) return false
    this.flushWaiter = next
    return true
  }

  /** Whether every byte written has gone to the socket (nothing queued for a slow client). */
  get flushed(): boolean {
    return this.out.empty
  }

  /** Bytes written that the socket has not taken (held, queued, or dropped at the close): a tunnel's record takes them off. */
  get unsentBytes(): number {
    return this.out.unsent
  }

  /**
   * Closes an idle connection gracefully (RFC 9112 §9.5), with a FIN: now, then `closed` runs,
   * when nothing waits for the client; else after the last reply (send_timeout bounds a reader
   * that stops) and true, the caller then to read no more (a pipelined request would be served a
   * reply the FIN cuts). Never a reset: it would drop what the kernel still holds for the client,
   * the end of the last reply to a slow reader.
   */
  finish(closed: () => void): boolean {
    const now = this.flushed
    this.endWhenFlushed()
    if (!now) return true
    closed()
    return false
  }

  /** FIN once every queued byte has been sent. */
  endWhenFlushed(): void {
    this.out.endWhenFlushed()
  }

  /** Hands what is held for this round's batch to the socket now (before the socket is cut). */
  sendBatch(): void {
    if (!this.closed) this.out.sendBatch()
  }

  /** The connection is gone (`why`, when cut): drops what is queued, logs held records as cut where the socket stopped, and stops the body being pumped. */
  close(why?: Error): void {
    this.closed = true
    if (this.stall) unwatchStall(this.stall)
    if (this.continueTimer !== undefined) this.continueTimer = void clearTimeout(this.continueTimer)
    this.out.clear()
    this.records.closed(why)
    this.flushWaiter = undefined
    this.reader?.cancel(new Error('client closed the connection')).catch(() => {})
    this.wakeDrainWaiter()
  }
}
