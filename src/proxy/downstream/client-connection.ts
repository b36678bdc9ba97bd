/**
 * One client connection on the own HTTP/1.1 listener, as a state machine: read a request head
 * (http1/head-reader.ts, parsed strictly by http1/request-head.ts), frame its body (Content-Length
 * or chunked) into a stream with backpressure, hand the request to the request path, write the
 * reply (reply-writer.ts), then the next request (pipelined bytes are kept) or close. An upgrade
 * request hands the connection over to a tunnel. Deadlines (head, body, keep-alive idle) are
 * checked by the listener's sweep. Accepting and counting connections is http1-listener.ts's.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'bun'
import { SocketBodyStream, type PausableSource } from '../../http1/body-stream.ts'
import { ChunkedDecoder } from '../../http1/chunked.ts'
import { HeadReader } from '../../http1/head-reader.ts'
import { HeadHeaders, parseRequestHeadBytes, RequestHeadError, unfinishedHeadError, type RequestHead } from '../../http1/request-head.ts'
import { refusedRequestOf, startsWithHead } from '../../http1/refused-head.ts'
import { RepeatedStrings } from '../../lib/bytes.ts'
import { monoNow } from '../../lib/clock.ts'
import { ReadSizer } from '../../runtime/receive-buffer.ts'
import { failureReply, type FailureCode } from '../errors.ts'
import { clientAddress, ForwardingLines, requestIdFor, withoutH2c } from '../headers.ts'
import { unparsedRequest, type GoneListener, type ProxyReply, type ProxyRequest, type ReplySink } from '../message.ts'
import type { ClientInfo, DownstreamConnection, ListenerState } from './connection-options.ts'
import { ReplyWriter } from './reply-writer.ts'
import { TunnelConn } from './tunnel-conn.ts'

/** Request bodies that arrive whole with their head and are at most this large are handed over as bytes. */
const INLINE_BODY_BYTES = 64 * 1024

const enum Phase {
  Head, // waiting for (or reading) a request head
  Busy, // a request is being served
  Tunnel, // handed over to an upgrade tunnel
  Closed,
}

export class ClientConnection implements DownstreamConnection, ReplySink {
  phase = Phase.Head
  /** monoNow() by which something must happen (0: none); what, depends on the phase. */
  deadlineAt = 0
  /** Whether deadlineAt is the keep-alive idle limit (else the request-head limit). */
  private deadlineKindIsIdle = false
  /** Bytes read but not yet parsed (a request head, or the next pipelined request), and the strings its heads repeat. */
  private readonly pending = new HeadReader()
  private readonly strings = new RepeatedStrings()
  /** What the request path is told of the client; the same for every request on the connection. */
  private readonly client: ClientInfo
  // The current request, as parsed and as handed to the request path.
  private head: RequestHead | undefined
  private req: ProxyRequest | undefined
  private closeAfter = false
  private responded = false
  /** A reload's grace (closeIfIdle) for a reply whose head said keep-alive (a next request may be on its way): idle that long after it, as idle ones. */
  private closeGraceMs = 0
  inFlight: GoneListener | undefined = undefined // the request path's, told when the client leaves before the answer
  /** Inside the request path's own call (see answer()). */
  private dispatching = false
  // Its body, while it streams.
  private body: SocketBodyStream | undefined
  private bodyRemaining = 0
  private decoder: ChunkedDecoder | undefined
  /** Reading is paused: the body's consumer is behind, or pipelined bytes wait. */
  private readPaused = false
  /** Its replies' writer; an upgrade tunnel writes through it too (tunnel-conn.ts). */
  readonly writer: ReplyWriter
  /** Reads of an upload are small while the upstream is slow (runtime/receive-buffer.ts). */
  private readonly sizer: ReadSizer
  private tunnel: TunnelConn | undefined

  constructor(
    private readonly sock: Socket<ClientConnection>,
    private readonly shared: ListenerState,
  ) {
    this.client = { ip: clientAddress(sock.remoteAddress), tls: shared.tls, streamKeepsLength: true, protocol: 'HTTP/1.1', forwarding: new ForwardingLines(), interim: (status, headers) => (status === 100 ? this.sendContinue(headers) : this.writeInterim(status, headers)) }
    // The FIN after a last reply; with bytes of the client's not read (the rest of a body, requests pipelined after a close, a tunnel's), and over TLS always (Bun's end() waits ~12 s for the client's close_notify: lingering-close.ts), a lingering close: a close with them unread is a reset.
    this.writer = new ReplyWriter(sock, shared.opts, (why) => this.destroy(why), () => (shared.linger && (shared.tls || this.phase === Phase.Tunnel || (this.phase === Phase.Busy && (this.bodyOpen || this.pending.size > 0))) ? shared.linger(sock, () => this.onClose(undefined)) : sock.end()))
    this.sizer = new ReadSizer(sock)
    sock.setNoDelay(true)
    this.deadlineAt = monoNow() + shared.opts.headerTimeoutMs // the first request's head is due within the header timeout from accept
  }

  onData(data: Uint8Array): void {
    const chunk = data as Buffer
    switch (this.phase) {
      case Phase.Head:
        return void (this.pending.append(chunk), this.readHead())
      case Phase.Busy:
        return void (this.bodyOpen ? this.feedBody(chunk) : this.keepPipelined(chunk))
      case Phase.Tunnel:
        return void this.tunnel?.handlers.data(chunk)
    }
  }

  private get bodyOpen(): boolean { return this.decoder !== undefined || this.bodyRemaining > 0 }
  /** Bytes of the next request that arrive while this one is served: kept, and reading pauses. */
  private keepPipelined(chunk: Buffer): void {
    this.pending.append(chunk)
    if (!this.readPaused && this.pending.size > this.shared.opts.maxHeaderBytes) this.pauseReading()
  }

  private pauseReading(): void { this.readPaused = true; this.sock.pause() }
  private resumeReading(): void {
    if (!this.readPaused) return
    this.readPaused = false
    this.sock.resume()
  }
  /** Between requests: pipelined ones held past a head's size are served before more is read (each let one more read in). */
  private resumeReadingIfRoom(): void { if (this.pending.size <= this.shared.opts.maxHeaderBytes) this.resumeReading() }

  private readHead(): void {
    if (this.pending.size === 0) return
    // The last reply still waits for the client to take it: the next request is read after (reply-writer.ts), and no timer but send_timeout runs meanwhile.
    if (this.writer.holdUntilFlushed(this.readHeld)) return void ((this.deadlineAt = 0), this.pauseReading())
    const opts = this.shared.opts
    if (this.deadlineKindIsIdle) {
      // The first byte of a new request on a kept-alive connection: its head is now due.
      this.deadlineKindIsIdle = false
      this.deadlineAt = monoNow() + opts.headerTimeoutMs
    }
    const end = this.pending.findRequestEnd()
    const refused = unfinishedHeadError(this.pending, end, opts.maxHeaderBytes)
    // What of it came within max_header_size only: a 431's record is no larger than the cap.
    if (refused) return this.refuse(refused.code, refused.message, refusedRequestOf(this.pending.buffer, Math.min(end < 0 ? this.pending.size : end, opts.maxHeaderBytes), end >= 0 && end <= opts.maxHeaderBytes))
    if (end < 0) return // wait for more
    let head: RequestHead
    try {
      head = parseRequestHeadBytes(this.pending.headBytes(end + 4), end, this.strings)
    } catch (err) {
      if (err instanceof RequestHeadError) return this.refuse(err.code, err.message, refusedRequestOf(this.pending.buffer, end, true))
      throw err
    }
    const rest = this.pending.consume(end + 4)
    this.pending.clear()
    this.dispatch(head, rest)
  }

  /** The client took the reply a request waited for: that request is read now, its head timed from now. */
  private readonly readHeld = (): void => {
    if (this.phase !== Phase.Head) return
    this.deadlineKindIsIdle = true
    this.resumeReadingIfRoom()
    this.readHead()
  }

  private dispatch(head: RequestHead, rest: Buffer | null): void {
    this.phase = Phase.Busy
    this.deadlineAt = 0
    this.head = head
    this.responded = false
    this.closeAfter = !head.keepAlive || this.shared.stopping
    this.client.protocol = head.minor === 0 ? 'HTTP/1.0' : 'HTTP/1.1'
    const headers = HeadHeaders.of(head)
    // The id is given here, so that an answer this connection makes itself (a malformed body) and the request path's record carry the same one.
    const req: ProxyRequest = { method: head.method, target: head.target, headers, body: null, id: requestIdFor(headers) }
    this.req = req

    const upgrade = head.upgrade === undefined ? undefined : withoutH2c(head.upgrade)
    if (upgrade !== undefined) {
      this.phase = Phase.Tunnel
      const tunnel = new TunnelConn(this.sock, this.client.ip, this)
      this.tunnel = tunnel
      this.shared.opts.upgrade(req, upgrade, this.client, tunnel, rest ?? new Uint8Array(0))
      return
    }

    const framing = head.body
    if (framing.kind === 'length') {
      if (rest && rest.length >= framing.length && framing.length <= INLINE_BODY_BYTES) {
        // The rest itself when it is the body (no view made: head-reader.ts consume), else a view.
        req.body = rest.length === framing.length ? rest : rest.subarray(0, framing.length)
        this.pending.keep(rest.length > framing.length ? rest.subarray(framing.length) : null)
      } else {
        this.bodyRemaining = framing.length
        req.body = this.openBody(rest)
      }
    } else if (framing.kind === 'chunked') {
      this.decoder = new ChunkedDecoder(this.shared.opts.maxHeaderBytes) // its trailer section within the head's limit
      req.body = this.openBody(rest)
    } else {
      this.pending.keep(rest)
    }
    this.shared.requestStarted()
    this.dispatching = true
    try {
      this.shared.opts.handle(req, this.client, this)
    } catch (err) {
      this.failed(err)
    } finally {
      this.dispatching = false
    }
  }

  // ReplySink: the connection is each request's (one at a time: nothing made per request). What is given within the handler's own call (a refusal) waits for a microtask: pipelined requests must not nest.
  answer(reply: ProxyReply): void {
    if (!this.dispatching) return this.writeReply(reply)
    if (this.queued !== undefined) return queueMicrotask(() => this.writeReply(reply)) // a second one, after the first
    this.queued = reply
    queueMicrotask(this.writeQueued)
  }
  /** The reply answer() holds for its microtask, and the function that writes it (made once, not per request). */
  private queued: ProxyReply | undefined
  private readonly writeQueued = (): void => {
    const reply = this.queued!
    this.queued = undefined
    this.writeReply(reply)
  }
  holdRecord(of: GoneListener): boolean { return of === this.inFlight && this.phase !== Phase.Closed && this.writer.records.hold(of) } // until the socket took the reply
  failed(err: unknown): void {
    if (this.dispatching) queueMicrotask(() => this.handlerFailed(err))
    else this.handlerFailed(err)
  }

  /** How a request body's stream moves this socket's reads (one for the connection's life). */
  private readonly bodySource: PausableSource = {
    pause: () => this.pauseReading(),
    resume: () => void (this.phase === Phase.Busy && this.resumeReading()),
    wrote: (whole, bytes) => this.sizer.wrote(whole, bytes),
  }

  private openBody(rest: Buffer | null): ReadableStream<Uint8Array> {
    if (!this.head!.expectContinue) this.armBodyDeadline() // else from the 100 (or the first bytes): a client waiting for it is not the one stalling
    // Cancelled: the request path gave up on the body; the rest cannot be read past, so the connection closes after the response.
    // Our own "100 Continue" only once the request path reads the body and the upstream let CONTINUE_WAIT_MS pass without its own or an answer (continue-wait.ts; RFC 9110 §15.2.1).
    const body = (this.body = new SocketBodyStream(this.bodySource, () => (this.closeAfter = true), this.head!.expectContinue ? () => this.writer.continueLater(() => void (body.started || this.sendContinue())) : undefined))
    if (rest && rest.length > 0) this.feedBody(rest)
    return body.stream
  }

  /** The next body bytes are due within the body timeout (re-armed on every read, as nginx does). */
  private armBodyDeadline(): void {
    const ms = this.shared.opts.bodyTimeoutMs
    this.deadlineAt = ms > 0 ? monoNow() + ms : 0
  }

  private feedBody(chunk: Buffer): void {
    this.armBodyDeadline()
    if (this.decoder) {
      let used: number
      try {
        used = this.decoder.feed(chunk, (s) => this.body?.push(s))
      } catch (err) {
        return void this.bodyFailed('BAD_BODY', `malformed chunked request body: ${(err as Error).message}`)
      }
      if (this.decoder.done) {
        this.decoder = undefined
        this.endBody(used < chunk.length ? chunk.subarray(used) : null)
      }
      return
    }
    const take = Math.min(this.bodyRemaining, chunk.length)
    this.bodyRemaining -= take
    this.body?.push(take === chunk.length ? chunk : chunk.subarray(0, take))
    if (this.bodyRemaining === 0) this.endBody(take < chunk.length ? chunk.subarray(take) : null)
  }

  private endBody(rest: Buffer | null): void {
    this.deadlineAt = 0
    this.body?.close()
    this.body = undefined
    if (rest) this.keepPipelined(rest)
  }

  /**
   * A malformed (400) or stalled (408) request body: the upstream request is aborted (the body
   * stream errors), the client gets the status if nothing was answered yet, and the connection
   * closes.
   */
  private bodyFailed(code: FailureCode, detail: string): void {
    this.deadlineAt = 0
    this.decoder = undefined
    this.bodyRemaining = 0
    // The request path sees the body fail with this code, and records the request with it.
    this.body?.error(Object.assign(new Error(detail), { code }))
    this.body = undefined
    this.closeAfter = true
    if (this.responded) return this.destroy()
    this.responded = true
    this.answerAndClose(this.shared.opts.refuse(code, detail, this.client, this.req, false), this.req?.method ?? 'GET')
  }

  private handlerFailed(err: unknown): void {
    this.shared.opts.onError(err)
    this.writeReply(this.shared.opts.refuse('INTERNAL', 'internal error', this.client, this.req, true))
  }

  private writeReply(reply: ProxyReply): void {
    const head = this.head!
    if (this.phase === Phase.Closed || this.responded) {
      if (reply.body instanceof ReadableStream) reply.body.cancel().catch(() => {})
      return this.requestDone()
    }
    this.responded = true
    // The request body must be read to its end before the next request; if it is not, close.
    if (this.bodyOpen) this.closeAfter = true
    try {
      this.writer.writeReply(reply, head.method, head.minor, this.closeAfter, this.onReplyEnd)
    } catch (err) {
      // A bug: logged, and the connection cut (part of the reply may be out) rather than left waiting.
      this.shared.opts.onError(err)
      this.destroy()
    }
  }

  /** A 1xx ahead of the final response (one 100 at most: reply-writer.ts); never to an HTTP/1.0 client (RFC 9110 §15.2). */
  private writeInterim(status: number, headers: [string, string][]): void {
    if (this.phase === Phase.Busy && !this.responded && this.head?.minor === 1) this.writer.interim(status, headers)
  }
  private readonly sendContinue = (headers: [string, string][] = []): void => void (this.writeInterim(100, headers), this.bodyOpen && this.armBodyDeadline())

  /** The reply is written, or cut (an upstream that failed mid-body: the client must see an abort, not an end). */
  private readonly onReplyEnd = (end: 'done' | 'failed', close: boolean): void => {
    if (close) this.closeAfter = true
    if (this.phase === Phase.Closed) return
    if (end === 'failed') return this.destroy()
    this.requestDone()
  }

  /** The current request is over: the next one may be read, or the connection closes. */
  private requestDone(): void {
    this.writer.records.unwritten() // a reply this request got from no writer (the connection answered itself): its record as it is
    if (this.head === undefined) return
    this.head = undefined
    this.req = undefined
    this.inFlight = undefined // not kept through the keep-alive wait
    this.shared.requestEnded()
    if (this.phase === Phase.Closed) return
    const graceMs = this.closeAfter ? 0 : this.closeGraceMs
    if ((this.closeAfter || this.shared.stopping) && graceMs === 0) return void this.writer.endWhenFlushed()
    this.phase = Phase.Head
    this.deadlineKindIsIdle = true
    this.deadlineAt = monoNow() + Math.min(graceMs || Infinity, this.shared.opts.keepaliveTimeoutMs)
    this.resumeReadingIfRoom()
    if (this.pending.size > 0) this.readHead()
  }

  onDrain(): void {
    if (this.writer.onDrain() && this.phase === Phase.Tunnel) this.tunnel?.handlers.drain()
  }
  /** An answer the connection makes itself, then FIN. */
  private answerAndClose(reply: ProxyReply, method: string): void { void (this.writer.writeReply(reply, method, 1, true, () => {}), this.writer.endWhenFlushed()) }

  /** Answers a request the listener itself refuses (recorded and counted by the server), and closes; `line`: what of an unparsed one was read. */
  refuse(code: FailureCode, detail: string, line?: { method: string; target: string; host?: string }, sinceMs?: number): void {
    // A HEAD's answer has no content (RFC 9110 §9.3.2), its line read whole or not (414, 431, a bare LF): its record says HEAD too.
    const req = this.head ? this.req : unparsedRequest(line ?? (startsWithHead(this.pending.buffer, this.pending.size) ? { method: 'HEAD', target: '-' } : undefined))
    this.pending.clear()
    this.deadlineAt = 0
    this.phase = Phase.Busy
    this.responded = true
    this.answerAndClose(this.shared.opts.refuse(code, detail, this.client, req, true, undefined, sinceMs), req === undefined || req.method === '-' ? 'GET' : req.method)
  }

  onDeadline(): void {
    const headBeganMs = this.deadlineAt - this.shared.opts.headerTimeoutMs // a head's deadline is set at its first byte (or the accept)
    this.deadlineAt = 0
    if (this.phase === Phase.Busy && this.bodyOpen) {
      // Reading is paused because the upstream is slow: the client is not the one stalling.
      return void (this.readPaused ? this.armBodyDeadline() : this.bodyFailed('CLIENT_BODY_TIMEOUT', `no request body bytes for client_body_timeout (${this.shared.opts.bodyTimeoutMs} ms)`))
    }
    if (this.phase !== Phase.Head) return
    if (this.deadlineKindIsIdle || this.pending.size === 0) {
      // Keep-alive idle, or nothing sent at all: close quietly, with a FIN (nginx does the same).
      if (!this.deadlineKindIsIdle && !this.shared.stopping) this.shared.opts.onQuietClose('CLIENT_HEADER_TIMEOUT', this.client.ip)
      return void (this.writer.finish(() => this.onClose(undefined)) && this.pauseReading()) // a whole reply may still be on its way (keep-alive is timed from when it was queued)
    }
    this.refuse('CLIENT_HEADER_TIMEOUT', `request head not received within client_header_timeout (${this.shared.opts.headerTimeoutMs} ms)`, refusedRequestOf(this.pending.buffer, this.pending.size, false), headBeganMs) // its line, if it came whole
  }

  closeIfIdle(graceMs: number): void {
    if (this.phase !== Phase.Head || this.pending.size > 0) [this.closeAfter, this.closeGraceMs] = this.responded && !this.closeAfter && graceMs > 0 && this.phase !== Phase.Tunnel ? [false, graceMs] : [true, 0]
    else if (graceMs <= 0) void (this.writer.finish(() => this.onClose(undefined)) && this.pauseReading()) // a reply still on its way (a slow reader of a whole body) goes out first
    else [this.deadlineKindIsIdle, this.deadlineAt] = [true, Math.min(this.deadlineAt || Infinity, monoNow() + graceMs)] // a grace, also while the last reply (keep-alive) waits in the batch: the sweep closes it; a request on its way is answered, a head begun in it gets all of client_header_timeout
  }

  onEnd(): void {
    // The client half-closed; Bun closes the socket once this returns: what is held goes out now.
    this.writer.sendBatch()
    if (this.phase === Phase.Tunnel) return this.tunnel?.handlers.close(undefined)
    if (this.phase !== Phase.Head) return void (this.closeAfter = true)
    // Nothing in progress: a FIN back (over TLS a close_notify first), as nginx closes; a reset could cost the client what it has not read yet.
    this.writer.endWhenFlushed()
    this.onClose(undefined)
  }

  /** drain_timeout's end: a request whose answer has not begun (an upload still coming in too) gets the 503 its record says (DRAIN_TIMEOUT), then a FIN if the socket took it all; the rest are cut (no lingering past the drain). */
  cut(): void {
    const flight = this.phase === Phase.Busy && this.head !== undefined && !this.responded ? this.inFlight : undefined
    if (!flight) return this.destroy()
    ;[this.closeAfter, this.inFlight] = [true, undefined]
    this.writeReply(failureReply('DRAIN_TIMEOUT', flight.requestId))
    flight.clientGone() // its upstream exchange ends; recorded DRAIN_TIMEOUT (flight.ts cutByDrain), as the answer said
    if (this.phase !== Phase.Closed) void (this.writer.sendBatch(), this.writer.flushed ? (this.writer.endWhenFlushed(), this.onClose(undefined)) : this.destroy())
  }

  destroy(why?: Error): void {
    if (this.phase === Phase.Closed) return
    this.writer.sendBatch() // an answer already written goes out before the cut
    this.onClose(why) // before the cut, whose close event comes within terminate(): `why` (send_timeout) reaches a tunnel's record
    this.sock.terminate()
  }

  onClose(err: Error | undefined): void {
    if (this.phase === Phase.Closed) return
    const wasTunnel = this.phase === Phase.Tunnel
    this.phase = Phase.Closed
    this.deadlineAt = 0
    this.writer.close(err)
    this.pending.clear()
    this.body?.error(new Error('client closed the connection'))
    this.body = undefined
    if (wasTunnel) this.tunnel?.markClosed(err)
    else if (this.head !== undefined && !this.responded) this.inFlight?.clientGone()
    if (!wasTunnel && this.head !== undefined) this.requestDone() // a request cut while served ends here (the in-flight count)
    this.shared.closed(this)
  }

  get isClosed(): boolean { return this.phase === Phase.Closed }
  get isTunnel(): boolean { return this.phase === Phase.Tunnel }
}
