/**
 * The request half of an upstream exchange (exchange.ts extends it): writes the request head and
 * its body, whole with a Content-Length or streamed with backpressure (chunked where its length is
 * unknown), and holds a streamed body sent with Expect: 100-continue until the upstream answers
 * 100 (or a final status, which ends the exchange with no body sent) or CONTINUE_WAIT_MS pass.
 * The response half, the end and the failure are exchange.ts's.
 */
import { SocketBodyStream } from '../../http1/body-stream.ts'
import { encodeChunk, LAST_CHUNK } from '../../http1/chunked.ts'
import { encodeRequestHead } from '../../http1/request-encode.ts'
import { monoNow } from '../../lib/clock.ts'
import { clientBodyFailure, type FailureCode } from '../errors.ts'
import type { ExchangeHost, ExchangeSink, OutgoingRequest } from './exchange-shapes.ts'

/** Where an exchange is: reading the response head, its body, or over. */
export const enum St { Head, Body, Done }

/**
 * The longest a body sent with Expect: 100-continue waits for the upstream's 100 before it goes on
 * unasked (curl's own wait for a 100 before it sends a body, --expect100-timeout, is 1 s).
 */
const CONTINUE_WAIT_MS = 1000

export abstract class ExchangeRequest {
  protected st = St.Head
  protected requestDone = false
  protected bodyConsumed = false
  protected bodyBytes = 0
  protected finishedOnce = false
  /** performance.now() by which the response head is due (0: it came, or the exchange is over). */
  protected headDueAt = 0
  /** performance.now() by which the client's next request body bytes are due (0: not waiting for them). */
  protected bodyDueAt = 0
  protected reader: ReturnType<ReadableStream<Uint8Array>['getReader']> | undefined
  private drainWaiter: (() => void) | undefined
  /** A body held for Expect: 100-continue, and performance.now() by which it goes on unasked (0: none held). */
  private held: ReadableStream<Uint8Array> | undefined
  protected continueDueAt = 0

  constructor(
    protected readonly c: ExchangeHost,
    protected readonly req: OutgoingRequest,
    protected readonly opts: ExchangeSink,
  ) {}

  /** Aborts the exchange (exchange.ts). */
  protected abstract fail(code: FailureCode, message: string): void
  /** Ends the exchange if both halves are done (exchange.ts). */
  protected abstract maybeFinish(): void

  /** ExchangeEnd: the request body bytes sent (a whole one's length). */
  get requestBodyBytes(): number {
    return this.req.body instanceof Uint8Array ? this.req.body.byteLength : this.bodyBytes
  }

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
      if (req.awaitContinue) {
        // The upstream has its say first: a 100 from the proxy itself would tell the client that
        // the request "has not yet been rejected" (RFC 9110 §15.2.1) before the origin saw it; a
        // proxy sends its own only for an HTTP/1.0 origin (§10.1.1). The client's 100 comes with
        // the upstream's, or at the body's first read after the wait (client-connection.ts).
        this.held = req.body
        this.continueDueAt = monoNow() + Math.min(CONTINUE_WAIT_MS, this.opts.headerTimeoutMs)
        return
      }
      // header_timeout counts from the request's end (pump sets it): a long upload is not late.
      void this.pump(req.body, req.bodyLength === undefined)
      return
    } else {
      this.c.conn.write(encodeRequestHead(req.method, req.target, req.headers, '', undefined, req.lines))
      this.requestDone = true
    }
    this.headDueAt = monoNow() + this.opts.headerTimeoutMs
  }

  /** The held body goes on: the upstream said 100 Continue, or CONTINUE_WAIT_MS passed without a word. */
  protected release(): void {
    const body = this.unheld()
    if (body !== undefined) void this.pump(body, this.req.bodyLength === undefined)
  }

  /** Takes the held body, if any: the exchange ended before it went on, and the caller cancels it (its client hears of that). */
  protected unheld(): ReadableStream<Uint8Array> | undefined {
    const body = this.held
    this.held = undefined
    this.continueDueAt = 0
    return body
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
        // response, a stream both ways, an upload's pauses are the client's business.)
        this.headDueAt = 0
        if (this.st === St.Head) this.bodyDueAt = monoNow() + this.opts.headerTimeoutMs
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
      this.fail(clientBodyFailure(err), `client request body failed: ${(err as Error)?.message ?? err}`)
    } finally {
      this.reader = undefined
    }
  }

  onDrain(): void {
    const w = this.drainWaiter
    this.drainWaiter = undefined
    w?.()
  }
}
