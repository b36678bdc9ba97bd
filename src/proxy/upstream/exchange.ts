/**
 * One request/response exchange on an upstream connection: writes the request (head plus a buffered or streamed body, chunked
 * where its length is unknown), parses the response head (relaying valid 1xx), and streams the response body with backpressure
 * (a slow client pauses the upstream socket), within header_timeout and idle_timeout. It fails with a RequestFailure whose phase
 * tells the retry policy what may have reached the upstream. The connection it runs on is connection.ts's; what it is given and
 * reports, exchange-shapes.ts's.
 */
import { Buffer } from 'node:buffer'
import { SocketBodyStream } from '../../http1/body-stream.ts'
import { ChunkedDecoder, encodeChunk, LAST_CHUNK } from '../../http1/chunked.ts'
import { encodeRequestHead } from '../../http1/request-encode.ts'
import { interimRefusal, MAX_RESPONSE_HEAD_BYTES, parseResponseHeadBytes, unfinishedResponseHead, type ResponseHead } from '../../http1/response-head.ts'
import { copyOut } from '../../lib/bytes.ts'
import { monoNow } from '../../lib/clock.ts'
import { CONTINUE_WAIT_MS } from '../downstream/continue-wait.ts'
import { clientBodyFailure, RequestFailure, type FailureCode } from '../errors.ts'
import type { ExchangeEnd, ExchangeHost, ExchangeSink, IncomingResponse, OutgoingRequest } from './exchange-shapes.ts'

export type { ExchangeEnd, ExchangeHost, ExchangeOptions, ExchangeSink, IncomingResponse, OutgoingRequest } from './exchange-shapes.ts'

const enum St { Head, Body, Done }

/**
 * An exchange is its own IncomingResponse (once its head is in) and its own ExchangeEnd (once it
 * is over): the sink is handed the exchange itself, not an object made for each report. Neither
 * changes once reported (an end's counts are final: nothing is read or sent after finish()).
 */
export class Exchange implements IncomingResponse, ExchangeEnd {
  private st = St.Head
  /** IncomingResponse: set once, before onResponse. */
  head!: ResponseHead
  /** The body as onResponse hands it (a stream, the whole bytes, or none), but for one left in the read (wholeIn). */
  private bodyValue: ReadableStream<Uint8Array> | Uint8Array | null = null
  /** IncomingResponse: a small whole body still in the head's read, at [wholeFrom, wholeTo). */
  wholeIn: Buffer | undefined = undefined
  wholeFrom = 0
  wholeTo = 0
  private stream: SocketBodyStream | undefined
  private decoder: ChunkedDecoder | undefined
  private remaining = 0
  private requestDone = false
  private responseDone = false
  private reusable = true
  private bodyConsumed = false
  private bodyBytes = 0
  private lastDataAt = 0
  /** IncomingResponse: performance.now() when the first response byte arrived. */
  firstByteAt = 0
  /** Interim (1xx) heads read so far (at most MAX_INTERIM_HEADS). */
  private interims = 0
  /** performance.now() by which the response head is due (0: it came, or the exchange is over). */
  private headDueAt = 0
  /** performance.now() by which the client's next request body bytes are due (0: not waiting for them). */
  private bodyDueAt = 0
  private drainWaiter: (() => void) | undefined
  private reader: ReturnType<ReadableStream<Uint8Array>['getReader']> | undefined
  private finishedOnce = false
  private responseBytes = 0
  /** ExchangeEnd: why it failed (before or after the head), if it did. */
  error: RequestFailure | undefined

  /** IncomingResponse: the body; one left in the read is copied out the first time it is asked for. */
  get body(): ReadableStream<Uint8Array> | Uint8Array | null {
    if (this.bodyValue === null && this.wholeIn !== undefined) this.bodyValue = copyOut(this.wholeIn, this.wholeFrom, this.wholeTo)
    return this.bodyValue
  }

  /** ExchangeEnd: the request body bytes sent (a whole one's length). */
  get requestBodyBytes(): number {
    return this.req.body instanceof Uint8Array ? this.req.body.byteLength : this.bodyBytes
  }
  /** ExchangeEnd: the response body bytes passed on. */
  get responseBodyBytes(): number {
    return this.responseBytes
  }

  constructor(
    private readonly c: ExchangeHost<Exchange>,
    private readonly req: OutgoingRequest,
    private readonly opts: ExchangeSink,
  ) {}

  start(): void {
    const { req } = this
    if (this.c.conn.closed) {
      // The pooled connection closed in the same tick it was taken: nothing was sent, retry-safe.
      queueMicrotask(() => this.fail('RESET_BEFORE_RESPONSE', 'upstream connection closed before the request was sent'))
      return
    }
    if (req.body instanceof Uint8Array) {
      this.c.conn.write(encodeRequestHead(req.method, req.target, req.headers, `content-length: ${req.body.byteLength}\r\n`, req.body, req.lines))
      this.requestDone = true
    } else if (req.body) {
      const framing = req.bodyLength !== undefined ? `content-length: ${req.bodyLength}\r\n` : 'transfer-encoding: chunked\r\n'
      this.c.conn.write(encodeRequestHead(req.method, req.target, req.headers, framing, undefined, req.lines))
      // header_timeout counts from the request's end (pump sets it): a long upload is not late.
      void this.pump(req.body, req.bodyLength === undefined)
      return
    } else {
      this.c.conn.write(encodeRequestHead(req.method, req.target, req.headers, '', undefined, req.lines))
      this.requestDone = true
    }
    this.headDueAt = monoNow() + this.opts.headerTimeoutMs
  }

  /** Streams the request body with backpressure: waits for the socket to drain. */
  private async pump(body: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
    const reader = body.getReader()
    this.reader = reader
    // A body read from the client's socket sizes its reads by whether the upstream keeps up.
    const source = SocketBodyStream.of(body)
    try {
      for (;;) {
        // While the client is to send more, header_timeout does not run; until the response begins,
        // a client silent that long is cut as a stalled body (408), where its listener has no
        // client_body_timeout of its own (Deno, or 0) or a longer one. (Beside a live
        // response, a stream both ways, an upload's pauses are the client's business.) Before the
        // first byte, add the wait of a client for the listener's own 100 (continue-wait.ts).
        this.headDueAt = 0
        if (this.st === St.Head) this.bodyDueAt = monoNow() + this.opts.headerTimeoutMs + (this.bodyBytes === 0 ? CONTINUE_WAIT_MS : 0)
        const { done, value } = await reader.read()
        this.bodyDueAt = 0
        if (this.st === St.Done && this.finishedOnce) return
        if (done) break
        if (value.byteLength === 0) continue
        this.bodyConsumed = true
        this.bodyBytes += value.byteLength
        if (this.req.maxBodyBytes > 0 && this.bodyBytes > this.req.maxBodyBytes) {
          this.fail('BODY_TOO_LARGE', `request body exceeds ${this.req.maxBodyBytes} bytes`)
          return
        }
        // Never past the Content-Length sent: the origin would read the rest as another request.
        if (this.req.bodyLength !== undefined && this.bodyBytes > this.req.bodyLength) return this.fail('BAD_BODY', 'request body longer than its Content-Length')
        const ok = this.c.conn.write(chunked ? encodeChunk(value) : value)
        source?.wrote(ok, value.byteLength)
        if (!ok) {
          if (this.c.conn.closed) return
          // The upstream is to take what is queued: header_timeout runs while it does not (a 504).
          if (this.st === St.Head) this.headDueAt = monoNow() + this.opts.headerTimeoutMs
          await new Promise<void>((r) => (this.drainWaiter = r))
          if (this.c.conn.closed) return
        }
      }
      if (this.req.bodyLength !== undefined && this.bodyBytes !== this.req.bodyLength) {
        this.fail('CLIENT_GONE', 'request body ended before its Content-Length')
        return
      }
      if (chunked) this.c.conn.write(LAST_CHUNK)
      this.requestDone = true
      if (this.st === St.Head) this.headDueAt = monoNow() + this.opts.headerTimeoutMs
      this.maybeFinish()
    } catch (err) {
      // The client aborted its upload (or sent a malformed or stalled body): cancel the upstream request too.
      this.fail(clientBodyFailure(err), String((err as Error)?.message ?? err)) // the listener's own words: what it answered (a malformed or stalled body)
    } finally {
      this.reader = undefined
    }
  }

  onDrain(): void {
    const w = this.drainWaiter
    this.drainWaiter = undefined
    w?.()
  }

  onData(chunk: Buffer): void {
    this.lastDataAt = monoNow()
    if (this.st === St.Head) this.onHeadData(chunk)
    else if (this.st === St.Body) this.onBodyData(chunk)
    else this.reusable = false // bytes after the response: out of sync
  }

  private onHeadData(chunk: Buffer): void {
    if (this.firstByteAt === 0) this.firstByteAt = this.lastDataAt
    const reader = this.c.headReader
    reader.append(chunk)
    for (;;) {
      const end = reader.findEnd()
      if (end < 0 || end + 4 > MAX_RESPONSE_HEAD_BYTES) {
        const refused = unfinishedResponseHead(reader, end)
        return refused === undefined ? undefined : this.fail('BAD_RESPONSE', refused)
      }
      let head: ResponseHead
      try {
        head = parseResponseHeadBytes(reader.headBytes(end), end, this.req.method)
      } catch (err) {
        return this.fail('BAD_RESPONSE', (err as Error).message)
      }
      // The usual small answer, whole in this read: its body stays there, as offsets (a view of the
      // read costs more, in JSC, than copying a few hundred bytes; the reply copies it from there).
      // Anything else: the rest as a view.
      const f = head.framing
      const whole = head.status >= 200 && f.kind === 'length' && f.length <= SMALL_BODY_BYTES && reader.size - (end + 4) === f.length
      const rest = whole ? null : reader.consume(end + 4)
      if (head.status >= 100 && head.status < 200) {
        // 100 Continue, 102, 103 Early Hints: informational; the final response follows. A proxy
        // forwards them (RFC 9110 §15.2; the listener sends no second 100 after its own).
        const refused = interimRefusal(head, this.interims++) // a 101, one that says HTTP/1.0, one too many
        if (refused !== undefined) return this.fail('BAD_RESPONSE', refused)
        this.opts.onInterim?.(head)
        if (rest === null) return
        continue
      }
      const read = reader.buffer
      reader.clear()
      this.head = head
      this.headDueAt = 0
      this.bodyDueAt = 0
      // An HTTP/1.0 peer, keep-alive or not, gets no next request on this connection: that one
      // might be chunked, which it cannot read (RFC 9112 §6.1); nginx ends these connections too.
      if (head.closeAfter || head.minorVersion === 0) this.reusable = false
      if (whole) return this.wholeInRead(read, end + 4, f.length)
      this.beginBody(head, rest ?? EMPTY)
      return
    }
  }

  /** The usual small answer, whole in the head's read: reported with its body left there (wholeIn), copied out only if asked for as bytes. */
  private wholeInRead(read: Buffer, from: number, length: number): void {
    this.wholeIn = read
    this.wholeFrom = from
    this.wholeTo = from + length
    this.st = St.Done
    this.responseDone = true
    this.responseBytes = length
    this.maybeFinish()
    this.opts.onResponse(this)
  }

  private beginBody(head: ResponseHead, rest: Buffer): void {
    const f = head.framing
    if (f.kind === 'none') {
      if (rest.length > 0) this.reusable = false
      this.st = St.Done
      this.responseDone = true
      this.maybeFinish()
      this.respond(null)
      return
    }
    if (f.kind === 'length' && rest.length >= f.length) {
      // The whole body came with the head: hand it over buffered (keeps Content-Length).
      if (rest.length > f.length) this.reusable = false
      this.st = St.Done
      this.responseDone = true
      this.responseBytes = f.length
      this.maybeFinish()
      // A view, not a copy: each socket read is a fresh buffer of at most one read's size.
      this.respond(rest.length === f.length ? rest : rest.subarray(0, f.length))
      return
    }
    if (f.kind === 'chunked') {
      this.decoder = new ChunkedDecoder(MAX_RESPONSE_HEAD_BYTES) // trailers within the head's limit
      const slices: Uint8Array[] = []
      let used: number
      try {
        used = this.decoder.feed(rest, (s) => slices.push(s))
      } catch (err) {
        return this.fail('BAD_RESPONSE', (err as Error).message)
      }
      if (this.decoder.done) {
        if (used < rest.length) this.reusable = false
        this.st = St.Done
        this.responseDone = true
        const body = slices.length === 1 ? Buffer.from(slices[0]!) : Buffer.concat(slices)
        this.responseBytes = body.byteLength
        this.maybeFinish()
        this.respond(body)
        return
      }
      const stream = this.openStream()
      for (const s of slices) this.enqueue(Buffer.from(s))
      this.respond(stream)
      return
    }
    if (f.kind === 'length') this.remaining = f.length
    const stream = this.openStream()
    if (rest.length > 0) this.onBodyData(rest)
    // The bytes of this read are in the stream before anyone reads it.
    this.respond(stream)
  }

  /** Reports the head (this.head) with `body`: the exchange itself is the IncomingResponse. */
  private respond(body: ReadableStream<Uint8Array> | Uint8Array | null): void {
    this.bodyValue = body
    this.opts.onResponse(this)
  }

  private openStream(): ReadableStream<Uint8Array> {
    this.st = St.Body
    // The client went away: stop reading the upstream, and do not reuse the connection.
    // The client went away, or stopped taking bytes (send_timeout: the reason says so).
    this.stream = new SocketBodyStream(this.c.conn, (why) => (why instanceof Error && (why as { code?: string }).code === 'CLIENT_SEND_TIMEOUT' ? this.fail('CLIENT_SEND_TIMEOUT', why.message) : this.fail('CLIENT_GONE', 'client closed the response stream')))
    return this.stream.stream
  }

  /**
   * The deadlines, checked by the connections' sweep (connection.ts) instead of a timer per
   * exchange: the response head within header_timeout, then no body gap over idle_timeout.
   */
  /** The request's client left before the answer: fail now (not reused; the attempt loop does not retry it). */
  abort(code: 'CLIENT_GONE', message: string): void {
    this.fail(code, message)
  }

  checkDeadlines(nowMs: number): void {
    if (this.st === St.Head) {
      if (this.bodyDueAt !== 0 && nowMs >= this.bodyDueAt) return this.fail('CLIENT_BODY_TIMEOUT', `no request body bytes from the client for ${this.opts.headerTimeoutMs}ms (header_timeout)`, true)
      if (this.headDueAt !== 0 && nowMs >= this.headDueAt) this.fail('HEADER_TIMEOUT', `no response head within ${this.opts.headerTimeoutMs}ms`)
    } else if (this.st === St.Body) {
      const body = this.stream
      // A paused socket is our doing (slow client), not upstream silence: the gap counts from the
      // resume. A client that takes nothing is the client side's to time (send_timeout).
      if (body?.paused) return void (this.lastDataAt = nowMs)
      if (this.opts.idleTimeoutMs > 0 && nowMs - this.lastDataAt >= this.opts.idleTimeoutMs) this.fail('IDLE_TIMEOUT', `response body stalled for ${this.opts.idleTimeoutMs}ms`)
    }
  }

  private onBodyData(chunk: Buffer): void {
    const f = this.head!.framing
    if (f.kind === 'length') {
      const take = Math.min(this.remaining, chunk.length)
      if (take < chunk.length) this.reusable = false
      this.remaining -= take
      this.enqueue(take === chunk.length ? chunk : chunk.subarray(0, take))
      if (this.remaining === 0) this.endBody()
    } else if (f.kind === 'chunked') {
      let used: number
      try {
        used = this.decoder!.feed(chunk, (s) => this.enqueue(s))
      } catch (err) {
        return this.fail('RESET_MID_BODY', `bad chunked encoding from upstream: ${(err as Error).message}`)
      }
      if (this.decoder!.done) {
        if (used < chunk.length) this.reusable = false
        this.endBody()
      }
    } else {
      this.enqueue(chunk)
    }
  }

  private enqueue(slice: Uint8Array): void {
    if (!this.stream?.open || slice.byteLength === 0) return
    this.responseBytes += slice.byteLength
    this.stream.push(slice)
  }

  private endBody(): void {
    this.st = St.Done
    this.responseDone = true
    this.stream?.close()
    this.maybeFinish()
  }

  onClose(err: Error | undefined): void {
    if (this.st === St.Head) {
      // Part of an answer came (a 1xx, part of a head): the upstream cut it, so not a stale keep-alive connection to retry on and blame the address for.
      const cut = this.firstByteAt !== 0
      this.fail(cut ? 'BAD_RESPONSE' : 'RESET_BEFORE_RESPONSE', `upstream closed the connection ${cut ? 'inside its response head' : 'before responding'}${err ? `: ${err.message}` : ''}`)
    } else if (this.st === St.Body) {
      // A body read to the close ends with a close, not a reset: that one is cut (RFC 9112 §6.3).
      if (this.head!.framing.kind === 'close' && err === undefined) {
        this.reusable = false
        this.endBody()
        return
      }
      this.fail('RESET_MID_BODY', `upstream closed the connection mid-body${err ? `: ${err.message}` : ''}`)
    } else {
      this.reusable = false
      this.finish()
    }
  }

  /** Aborts the exchange: the sink hears of it (after the end) before a head, the body stream errors after one. */
  private fail(code: FailureCode, message: string, ownTimer = false): void {
    if (this.finishedOnce) return
    if (this.responseDone && !this.requestDone) return this.answeredEarly() // what ends the upload after a whole answer is no failure of the exchange
    const phase = this.st === St.Head ? (this.requestDone ? 'response-head' : 'request') : 'response-body'
    const error = new RequestFailure(code, phase, message, { bodyConsumed: this.bodyConsumed, address: this.c.conn.remoteAddress, ownTimer })
    this.error = error
    this.reusable = false
    const wasHead = this.st === St.Head
    this.st = St.Done
    if (!wasHead) this.stream?.error(error)
    this.reader?.cancel(error).catch(() => {})
    this.onDrain()
    this.finish()
    if (wasHead) this.opts.onFailure(error)
  }

  private maybeFinish(): void {
    // Every byte of a declared length sent and the answer whole: done, though the pump has yet to see the body's end.
    if (this.responseDone && this.req.bodyLength !== undefined && this.bodyBytes === this.req.bodyLength) this.requestDone = true
    if (this.requestDone && this.responseDone) this.finish()
    else if (this.responseDone) this.answeredEarly()
  }

  /** The whole answer came before the request body was all sent (an early 413, an origin that answered and stopped reading): the exchange is over, as nginx ends it; the upload is not waited for (a drain that never came held the connection until the origin closed it), nor the connection reused. */
  private answeredEarly(): void {
    this.reusable = false
    this.reader?.cancel().catch(() => {})
    this.onDrain()
    this.finish()
  }

  private finish(): void {
    if (this.finishedOnce) return
    this.finishedOnce = true
    this.headDueAt = 0
    this.bodyDueAt = 0
    this.stream?.resume()
    this.c.finished(this, this.reusable && this.requestDone && this.responseDone)
    this.opts.onEnd?.(this)
  }
}

const EMPTY = Buffer.alloc(0)
/** Bodies up to this size that arrive whole with their head are left in the read (wholeInRead). */
const SMALL_BODY_BYTES = 4096
