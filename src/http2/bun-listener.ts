/**
 * HTTP/2 sessions on Bun.listen sockets: TLS with ALPN "h2" (RFC 9113 §3.2) and cleartext with
 * prior knowledge (h2c, §3.3). One connection is one ServerSession fed from the socket's data
 * events, writing through a WriteQueue, ending only once queued bytes are out. The proxy's own
 * listener, which also serves HTTP/1.1 on the same port, plugs sessions in with attachH2; listenH2
 * is a standalone server for tests and the comparison script. Requests are the caller's business.
 */
import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions } from 'bun'
import { monoNow } from '../lib/clock.ts'
import { unwatchStall, watchStall, type StallWatch } from '../lib/stall-sweep.ts'
import { WriteQueue } from '../runtime/write-queue.ts'
import { H2Code, type Http2Error } from './errors.ts'
import type { Http2Limits } from './limits.ts'
import { ServerSession } from './session.ts'
import type { Refused, RefusedFields } from './refused.ts'
import type { ServerStream } from './stream.ts'
import { SERVER_CIPHERS } from '../runtime/tls-policy.ts'

/**
 * ALPN wire format (RFC 7301 §3.1): length-prefixed protocol names, in the server's order of
 * preference. Bun wants it as one string. "http/1.0" is served as in cleartext (`curl --http1.0`
 * offers only it; without it in the list that client got no_application_protocol).
 */
export const ALPN_H2_HTTP1 = '\x02h2\x08http/1.1\x08http/1.0'
export const ALPN_H2 = '\x02h2'

export interface H2ConnectionOptions {
  limits?: Partial<Http2Limits>
  /** The client's round trip when it is far (SessionOptions.roundTripMs). */
  roundTripMs?: number
  /**
   * send_timeout: bytes queued for a client that takes none of them for this long end the
   * connection (the socket is cut: a GOAWAY could not reach it either). 0 or absent: none.
   */
  sendTimeoutMs?: number
  /**
   * What ends the socket once the session's last bytes are out (default its end()). The proxy's
   * listener lingers (lingering-close.ts): Bun's end() of a TLS socket held it, outside any count,
   * until the client's close_notify or about 12 s.
   */
  end?(): void
  onRequest(stream: ServerStream, conn: H2Connection): void
  /** A request the session refused itself (session-options.ts Refused). */
  onRefused?(refused: Refused): RefusedFields
  onHeadTimeout?(): void
  onClose?(err: Http2Error | undefined): void
  onError?(err: unknown): void
}

/** A session bound to one socket. The socket's handlers must forward data, drain and close here. */
export class H2Connection {
  readonly session: ServerSession
  private readonly out: WriteQueue
  private gone = false
  /** Times bytes the socket did not take (send_timeout), while some wait. */
  private stall: StallWatch | undefined
  /** drain_timeout's end (endOrCut): a plain end, nothing lingers past the drain. */
  private cutting = false

  constructor(private readonly sock: Socket<unknown>, opts: H2ConnectionOptions) {
    // Batched: the flushes of many sessions in one round of events go out together (write-queue.ts).
    const sendTimeoutMs = opts.sendTimeoutMs ?? 0
    const endSocket = opts.end
    const end = endSocket === undefined ? undefined : () => (this.cutting ? sock.end() : endSocket())
    this.out = new WriteQueue(sock, { batch: true, onQueued: sendTimeoutMs > 0 ? () => this.watchStall(sendTimeoutMs) : undefined, end })
    this.session = new ServerSession({
      write: (b) => (this.gone ? false : this.out.write(b)),
      close: () => this.endWhenFlushed(),
      onRequest: (s) => opts.onRequest(s, this),
      onRefused: opts.onRefused,
      onHeadTimeout: opts.onHeadTimeout,
      onClose: opts.onClose,
      onError: opts.onError,
      limits: opts.limits,
      roundTripMs: opts.roundTripMs,
    })
  }

  get remoteAddress(): string {
    return this.sock.remoteAddress
  }

  onData(chunk: Uint8Array): void {
    this.session.receive(chunk)
  }

  onDrain(): void {
    if (this.stall) this.stall.since = monoNow() // the client took bytes: progress
    const open = this.out.flush()
    if (this.stall && this.out.empty) unwatchStall(this.stall)
    if (open) this.session.drained()
  }

  /**
   * A client that reads nothing while bytes wait for it, for sendTimeoutMs, is cut, as an
   * HTTP/1.1 one is (reply-writer.ts) and as nginx's send_timeout closes an HTTP/2 connection:
   * the streams' own watches reset streams but could not end the connection, whose GOAWAY and
   * FIN wait behind the bytes it never takes, so the socket and what it held were kept for ever.
   */
  private watchStall(limitMs: number): void {
    const w = (this.stall ??= { since: 0, limitMs, expire: () => this.sock.terminate() })
    w.since = monoNow()
    watchStall(w)
  }

  /** Hands what is held for this round's batch to the socket now (the peer half-closed: Bun closes the socket next). */
  sendBatch(): void {
    if (!this.gone) this.out.sendBatch()
  }

  /**
   * drain_timeout's end, once the answers it gave were framed (H2Client.cut): a session still open
   * (an answer the client's windows hold back) ends now, and a socket that did not take what was
   * written is cut, as an HTTP/1.1 one is: nothing lingers past the drain.
   */
  endOrCut(): void {
    if (this.gone) return
    this.cutting = true
    this.session.destroy()
    this.out.sendBatch()
    if (!this.out.empty) this.sock.terminate()
  }

  onClose(): void {
    this.gone = true
    if (this.stall) unwatchStall(this.stall)
    this.out.clear()
    this.session.destroy()
  }

  private endWhenFlushed(): void {
    if (this.gone) return
    this.out.endWhenFlushed()
  }
}

export interface H2ListenOptions extends H2ConnectionOptions {
  hostname: string
  port: number
  /** TLS with ALPN h2; without it the listener speaks h2c with prior knowledge. */
  tls?: { cert: string; key: string }
  /** How often sessions are swept for the idle timeout. */
  sweepMs?: number
}

export interface H2Listener {
  readonly port: number
  readonly connections: number
  /** Graceful: GOAWAY to every session; they close when their streams are done. */
  shutdown(): void
  stop(): void
}

/** A standalone HTTP/2-only server (tests, benchmarks). */
export function listenH2(opts: H2ListenOptions): H2Listener {
  const conns = new Set<H2Connection>()
  const start = (sock: Socket<H2Connection | undefined>) => {
    const c = new H2Connection(sock as Socket<unknown>, opts)
    sock.data = c
    conns.add(c)
  }
  const handlers: SocketHandler<H2Connection | undefined> = {
    binaryType: 'uint8array',
    open(sock) {
      if (!opts.tls) start(sock)
    },
    handshake(sock, success) {
      // Only a client that chose h2 by ALPN gets a session (RFC 9113 §3.2).
      if (success && sock.alpnProtocol === 'h2') start(sock)
      else sock.end()
    },
    data(sock, chunk) {
      sock.data?.onData(chunk)
    },
    drain(sock) {
      sock.data?.onDrain()
    },
    close(sock) {
      if (sock.data) conns.delete(sock.data)
      sock.data?.onClose()
    },
    error(sock) {
      if (sock.data) conns.delete(sock.data)
      sock.data?.onClose()
    },
  }
  const listenOptions = {
    hostname: opts.hostname,
    port: opts.port,
    ...(opts.tls ? { tls: { ...opts.tls, ciphers: SERVER_CIPHERS, ALPNProtocols: ALPN_H2 } } : {}),
    socket: handlers,
  }
  const server: TCPSocketListener<H2Connection | undefined> = Bun.listen(listenOptions as TCPSocketListenOptions<H2Connection | undefined>)
  const sweep = setInterval(() => {
    for (const c of conns) c.session.sweep()
  }, opts.sweepMs ?? 1000)
  ;(sweep as { unref?: () => void }).unref?.()
  return {
    port: server.port,
    get connections() {
      return conns.size
    },
    shutdown() {
      for (const c of conns) c.session.shutdown()
    },
    stop() {
      clearInterval(sweep)
      server.stop(true)
      for (const c of conns) c.session.destroy()
      conns.clear()
    },
  }
}

/**
 * Sends a whole response body on a stream that has responded: bytes at once (no promise made), a
 * ReadableStream pumped with backpressure (a slow HTTP/2 reader pauses the source), then END_STREAM.
 */
export function sendBody(stream: ServerStream, body: Uint8Array | string | ReadableStream<Uint8Array> | null, sendTimeoutMs = 0): void {
  if (body === null) return stream.end()
  if (typeof body === 'string') return endWhole(stream, new TextEncoder().encode(body), sendTimeoutMs)
  if (body instanceof Uint8Array) return endWhole(stream, body, sendTimeoutMs)
  void pumpBody(stream, body, sendTimeoutMs)
}

/**
 * A send_timeout watch on `stream`: a DATA frame of it sent since the last look is progress. Past
 * the limit, `beforeReset` (if any), then the stream is marked (its record says
 * CLIENT_SEND_TIMEOUT) and reset with INTERNAL_ERROR (see pumpBody for why that code).
 */
function streamStall(stream: ServerStream, limitMs: number, beforeReset?: () => void): StallWatch {
  let seenFrames = stream.framesSent
  const expire = () => {
    beforeReset?.()
    stream.sendTimedOut = true
    stream.reset(H2Code.INTERNAL_ERROR)
  }
  return { since: monoNow(), limitMs, progressed: () => seenFrames !== (seenFrames = stream.framesSent), expire }
}

/**
 * A whole body (a small upstream answer, a cache hit, an error page), ended at once. When the
 * client's windows (the stream's or the connection's) do not let all of it go, the wait is timed
 * by `sendTimeoutMs` (send_timeout), DATA frames sent counting as progress: a client that never
 * opens a window does not keep the stream (and its request's slot) for ever. Which bodies wait is
 * known only once the round's output is framed (the connection window is shared by the streams
 * ended in the round, framed in turn), so the look is then (lookAtHeldBack); a body sent whole by
 * then is not watched. (Until the sixteenth session only the stream's window was looked at; until
 * the seventeenth, both windows at the end() call: streams of one round each saw the whole
 * connection window, and those it then left short were kept open for good.)
 */
function endWhole(stream: ServerStream, bytes: Uint8Array, sendTimeoutMs: number): void {
  stream.end(bytes)
  if (sendTimeoutMs > 0 && !stream.closed) lookAfterFlush(stream, sendTimeoutMs)
}

/** Streams ended this round whose DATA may be held back, and their send_timeout: looked at once the round's output is framed. */
const endedThisRound: ServerStream[] = []
const endedLimitsMs: number[] = []
let lookQueued = false

/**
 * Looks at `stream` after its session's flush: end() scheduled that flush as a microtask
 * (output.ts), queued before this look. (A look queued earlier in the round, before the flush of
 * another connection's stream ended later, sees that stream not yet framed and watches it:
 * needlessly, never wrongly.)
 */
function lookAfterFlush(stream: ServerStream, limitMs: number): void {
  endedThisRound.push(stream)
  endedLimitsMs.push(limitMs)
  if (lookQueued) return
  lookQueued = true
  queueMicrotask(lookAtHeldBack)
}

/** Watches each stream of the round left with bytes its windows held back. */
function lookAtHeldBack(): void {
  lookQueued = false
  for (let i = 0; i < endedThisRound.length; i++) {
    const s = endedThisRound[i]!
    if (s.outBytes > 0 && !s.closed) watchEnded(s, endedLimitsMs[i]!)
  }
  endedThisRound.length = 0
  endedLimitsMs.length = 0
}

/** A send_timeout watch on an ended stream, until it closes. */
function watchEnded(stream: ServerStream, limitMs: number): void {
  const stall = streamStall(stream, limitMs)
  watchStall(stall)
  const prevClose = stream.onClose
  stream.onClose = (code, s) => {
    unwatchStall(stall)
    prevClose?.(code, s)
  }
}

/**
 * A stream body, written as the stream's and the connection's windows allow. A wait on a client
 * that takes nothing (no DATA frame of this stream sent: windows shut, or the socket full) is
 * timed by `sendTimeoutMs` (send_timeout): past it, the body is cancelled (the exchange logs
 * CLIENT_SEND_TIMEOUT) and the stream reset. A tail still queued when the body ends (taken under
 * the high-water mark, so never waited on) is looked at after the flush, as a whole body is.
 * Every reset here is INTERNAL_ERROR, as nginx (but for its timeouts) and Go send: the response
 * could not be completed. Not CANCEL, which says the stream is no longer needed (RFC 9113 §7),
 * the client's to say; nor PROTOCOL_ERROR for a timeout, as nginx sends: a receiver that keeps
 * its window shut breaks no rule of the protocol.
 */
async function pumpBody(stream: ServerStream, body: ReadableStream<Uint8Array>, sendTimeoutMs: number): Promise<void> {
  const reader = body.getReader()
  let closed = false
  let wake: (() => void) | undefined
  const prevClose = stream.onClose
  stream.onClose = (code, s) => {
    closed = true
    prevClose?.(code, s)
    wake?.()
    if (code !== undefined) reader.cancel().catch(() => {})
  }
  stream.onDrain = () => wake?.()
  const stall =
    sendTimeoutMs > 0
      ? streamStall(stream, sendTimeoutMs, () => {
          const why = Object.assign(new Error(`the client took no response bytes for ${sendTimeoutMs}ms (send_timeout)`), { code: 'CLIENT_SEND_TIMEOUT' })
          reader.cancel(why).catch(() => {})
        })
      : undefined
  let watching = false
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (closed) return
      if (done) {
        stream.end()
        // A tail queued under the high-water mark, without a wait, may still be held back by the
        // client's windows: looked at after the flush, as a whole body is.
        if (sendTimeoutMs > 0 && !stream.closed) lookAfterFlush(stream, sendTimeoutMs)
        return
      }
      if (!stream.write(value)) {
        // A body that breaks while the window is shut (the upstream failed) ends the wait, and
        // the stream is reset below; watched from the first wait on.
        if (!watching) {
          watching = true
          reader.closed.catch(() => wake?.())
        }
        if (stall) {
          stall.since = monoNow()
          stall.progressed!() // counts from the frames sent so far
          watchStall(stall)
        }
        await new Promise<void>((resolve) => (wake = resolve))
        if (stall) unwatchStall(stall)
      }
      wake = undefined
      if (closed) return
    }
  } catch {
    // The body broke (the upstream's cut or stalled): a response we cannot complete, INTERNAL_ERROR.
    stream.reset(H2Code.INTERNAL_ERROR)
  }
}
