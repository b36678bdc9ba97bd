/**
 * The proxy's own HTTP/1.1 listener, on Bun.listen (server.listener = "own"). It reads request
 * heads with the strict parser of transport/request-head.ts, frames request and response bodies
 * itself (Content-Length or chunked, with backpressure both ways), and hands the request path
 * plain ProxyRequest / ProxyReply values, without building Request and Response objects. What
 * Bun.serve does not let us do is here: a deadline for the request head (slowloris), a cap on
 * client connections with a clean 503, refusing absolute-form targets that name another host,
 * Content-Length kept on streamed responses, and raw protocol upgrades (WebSocket tunnels).
 */
import { Buffer } from 'node:buffer'
import { httpDateNow } from '../lib/clock.ts'
import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions } from 'bun'
import { NOOP_HANDLERS, type Conn, type ConnHandlers } from '../runtime/socket.ts'
import { WriteQueue } from '../runtime/write-queue.ts'
import type { ProxyReply, ProxyRequest } from './message.ts'
import { ChunkedDecoder } from './transport/chunked.ts'
import { perConnectionTls, type CertSource } from '../acme/tls-per-connection.ts'
import { HeadHeaders, parseRequestHead, RequestHeadError, type RequestHead } from './transport/request-head.ts'

export interface ClientInfo {
  ip: string
}

/** Why the listener answered a client itself, for counters and logs. */
export type RefusalReason = 'malformed' | 'connections' | 'header_timeout' | 'body_timeout'

export interface Http1ListenOptions {
  hostname: string
  port: number
  tls: { cert: string; key: string } | undefined
  /** ACME hook (issue 17): a certificate that changes while listening, read per connection; replaces `tls`. */
  dynamicTls?: CertSource
  reusePort: boolean
  /** Largest request head (request line and headers), in bytes; 431 (or 414) beyond. */
  maxHeaderBytes: number
  /** Time from a connection's first byte of a request (or from accept) to the end of its head; 408 beyond. */
  headerTimeoutMs: number
  /** How long an idle keep-alive connection is held. */
  keepaliveTimeoutMs: number
  /** Longest wait for the next bytes of a request body (the proxy not holding the client back); 408 beyond. 0: none. */
  bodyTimeoutMs: number
  /** Most open client connections; beyond it a new one gets 503 and is closed. 0 means no limit. */
  maxConnections: number
  handle(req: ProxyRequest, client: ClientInfo): ProxyReply | Promise<ProxyReply>
  /**
   * Takes over a connection whose request asks for a protocol upgrade: the callee owns `conn`
   * from now on (bytes the client sent after the head are passed as `early`).
   */
  upgrade(req: ProxyRequest, upgrade: string, client: ClientInfo, conn: Conn, early: Uint8Array): void
  onRefused(reason: RefusalReason, status: number, detail: string, ip: string): void
  onError(err: unknown): void
}

export interface Http1Listener {
  readonly hostname: string
  readonly port: number
  readonly pendingRequests: number
  readonly connections: number
  stop(force: boolean): Promise<void>
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')
const LAST_CHUNK = Buffer.from('0\r\n\r\n')
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n')
/** Request bodies that arrive whole with their head and are at most this large are handed over as bytes. */
const INLINE_BODY_BYTES = 64 * 1024
/** How often deadlines (header read, keep-alive idle) are checked. */
const SWEEP_MS = 250

const enum Phase {
  /** Waiting for (or reading) a request head. */
  Head,
  /** A request is being served. */
  Busy,
  /** Handed over to an upgrade tunnel. */
  Tunnel,
  Closed,
}

type Sock = Socket<ClientConnection>

export function listenHttp1(opts: Http1ListenOptions): Http1Listener {
  const conns = new Set<ClientConnection>()
  let pending = 0
  let stopping = false
  const stopWaiters: (() => void)[] = []
  const shared: Shared = {
    opts,
    get stopping() {
      return stopping
    },
    requestStarted() {
      pending++
    },
    requestEnded() {
      pending--
    },
    closed(c) {
      conns.delete(c)
      if (stopping && conns.size === 0) for (const w of stopWaiters.splice(0)) w()
    },
  }
  const handlers: SocketHandler<ClientConnection> = {
    binaryType: 'buffer',
    open(sock) {
      const c = new ClientConnection(sock, shared)
      sock.data = c
      if (opts.maxConnections > 0 && conns.size >= opts.maxConnections) {
        c.refuse(503, 'too many client connections (max_connections); retry shortly', 'connections', [['retry-after', '1']])
        return
      }
      conns.add(c)
    },
    data(sock, chunk) {
      sock.data?.onData(chunk as unknown as Buffer)
    },
    drain(sock) {
      sock.data?.onDrain()
    },
    close(sock, err) {
      sock.data?.onClose(err)
    },
    end(sock) {
      sock.data?.onEnd()
    },
    error(sock, err) {
      sock.data?.onClose(err)
    },
  }
  // reusePort works on Bun.listen (SO_REUSEPORT, for --workers) though its types omit it.
  // ACME hook (issue 17): with dynamicTls the listener is plain and each connection is upgraded
  // with the certificate current at accept (see acme/tls-per-connection.ts for why).
  const socket = opts.dynamicTls ? perConnectionTls(handlers, opts.dynamicTls) : handlers
  const listenOptions = { hostname: opts.hostname, port: opts.port, reusePort: opts.reusePort, ...(opts.tls && !opts.dynamicTls ? { tls: opts.tls } : {}), socket }
  const server: TCPSocketListener<ClientConnection> = Bun.listen<ClientConnection>(listenOptions as TCPSocketListenOptions<ClientConnection>)
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const c of conns) if (c.deadlineAt !== 0 && now >= c.deadlineAt) c.onDeadline()
  }, SWEEP_MS)
  ;(sweep as { unref?: () => void }).unref?.()

  return {
    hostname: server.hostname,
    port: server.port,
    get pendingRequests() {
      return pending
    },
    get connections() {
      return conns.size
    },
    stop(force) {
      if (!stopping) {
        stopping = true
        server.stop(false)
      }
      // Idle connections close now, busy ones after their response (closeAfter is read then).
      for (const c of [...conns]) {
        if (force) c.destroy()
        else c.closeIfIdle()
      }
      if (conns.size === 0) {
        clearInterval(sweep)
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => {
        stopWaiters.push(() => {
          clearInterval(sweep)
          resolve()
        })
      })
    },
  }
}

interface Shared {
  readonly opts: Http1ListenOptions
  readonly stopping: boolean
  requestStarted(): void
  requestEnded(): void
  closed(c: ClientConnection): void
}

class ClientConnection {
  phase = Phase.Head
  /** performance.now() by which something must happen (0: none); what, depends on the phase. */
  deadlineAt = 0
  /** Whether deadlineAt is the keep-alive idle limit (else the request-head limit). */
  private deadlineKindIsIdle = false
  /**
   * Bytes read but not yet parsed (a request head, or the next pipelined request): `acc` holds
   * `accLen` of them. A head that arrives in one read is kept as that read's buffer; one that
   * dribbles in is copied into a buffer that doubles as it fills, so a client sending a byte at a
   * time costs linear, not quadratic, copying. `scanned` bytes are known to hold no CRLFCRLF.
   */
  private acc: Buffer | null = null
  private accLen = 0
  private accOwned = false
  private scanned = 0
  private readonly ip: string
  /** What the request path is told of the client; the same for every request on the connection. */
  private readonly client: ClientInfo
  // The current request.
  private head: RequestHead | undefined
  private closeAfter = false
  private responded = false
  // Its body, while it streams.
  private bodyCtl: ReadableStreamDefaultController<Uint8Array> | undefined
  private bodyRemaining = 0
  private decoder: ChunkedDecoder | undefined
  private bodyOpen = false
  private readPaused = false
  // Writes.
  private readonly out: WriteQueue
  private drainWaiter: (() => void) | undefined
  private tunnel: TunnelConn | undefined
  private replyReader: ReturnType<ReadableStream<Uint8Array>['getReader']> | undefined
  /** end() once the write queue has drained. */
  private endPending = false

  constructor(
    private readonly sock: Sock,
    private readonly shared: Shared,
  ) {
    this.ip = sock.remoteAddress
    this.client = { ip: this.ip }
    this.out = new WriteQueue(sock)
    sock.setNoDelay(true)
    // The first request's head is due within the header timeout from accept.
    this.deadlineAt = performance.now() + shared.opts.headerTimeoutMs
  }

  // ---------------------------------------------------------------- reading

  onData(chunk: Buffer): void {
    switch (this.phase) {
      case Phase.Head:
        this.append(chunk)
        this.readHead()
        return
      case Phase.Busy:
        if (this.bodyOpen) this.feedBody(chunk)
        else this.keepPipelined(chunk)
        return
      case Phase.Tunnel:
        this.tunnel?.handlers.data(chunk)
        return
    }
  }

  /** Bytes of the next request that arrive while this one is served: kept, and reading pauses. */
  private keepPipelined(chunk: Buffer): void {
    this.append(chunk)
    if (!this.readPaused && this.accLen > this.shared.opts.maxHeaderBytes) {
      this.readPaused = true
      this.sock.pause()
    }
  }

  private append(chunk: Buffer): void {
    if (this.accLen === 0) {
      this.acc = chunk
      this.accLen = chunk.length
      this.accOwned = false
      this.scanned = 0
      return
    }
    const need = this.accLen + chunk.length
    if (!this.accOwned || need > this.acc!.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.accLen, 1024))
      this.acc!.copy(grown, 0, 0, this.accLen)
      this.acc = grown
      this.accOwned = true
    }
    chunk.copy(this.acc!, this.accLen)
    this.accLen = need
  }

  /** Keeps `rest` (a view of a read) as the bytes not yet parsed. */
  private setBuffered(rest: Buffer | null): void {
    this.acc = rest && rest.length > 0 ? rest : null
    this.accLen = this.acc ? this.acc.length : 0
    this.accOwned = false
    this.scanned = 0
  }

  private readHead(): void {
    if (this.accLen === 0) return
    const buf = this.acc!.subarray(0, this.accLen)
    const opts = this.shared.opts
    if (this.deadlineKindIsIdle) {
      // The first byte of a new request on a kept-alive connection: its head is now due.
      this.deadlineKindIsIdle = false
      this.deadlineAt = performance.now() + opts.headerTimeoutMs
    }
    const end = buf.indexOf(CRLFCRLF, Math.max(0, this.scanned - 3))
    this.scanned = buf.length
    if (end < 0 || end + 4 > opts.maxHeaderBytes) {
      if (end < 0 && buf.length <= opts.maxHeaderBytes) return // wait for more
      // Too large: 414 when the request line alone does not fit, else 431.
      const lineEnd = buf.indexOf(CRLF)
      if (lineEnd < 0 || lineEnd > opts.maxHeaderBytes) this.refuse(414, `request line longer than max_header_size (${opts.maxHeaderBytes} bytes)`, 'malformed')
      else this.refuse(431, `request head larger than max_header_size (${opts.maxHeaderBytes} bytes)`, 'malformed')
      return
    }
    let head: RequestHead
    try {
      head = parseRequestHead(buf.toString('latin1', 0, end))
    } catch (err) {
      if (err instanceof RequestHeadError) {
        this.refuse(err.status, err.message, 'malformed', err.status === 405 ? [['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']] : undefined)
        return
      }
      throw err
    }
    const rest = buf.length > end + 4 ? buf.subarray(end + 4) : null
    this.setBuffered(null)
    this.dispatch(head, rest)
  }

  private dispatch(head: RequestHead, rest: Buffer | null): void {
    this.phase = Phase.Busy
    this.deadlineAt = 0
    this.head = head
    this.responded = false
    this.closeAfter = !head.keepAlive || this.shared.stopping
    const headers = new HeadHeaders(head.names, head.values)
    const client = this.client

    if (head.upgrade !== undefined) {
      this.phase = Phase.Tunnel
      const tunnel = new TunnelConn(this.sock, this.ip, this)
      this.tunnel = tunnel
      this.shared.opts.upgrade({ method: head.method, target: head.target, headers, body: null }, head.upgrade, client, tunnel, rest ?? new Uint8Array(0))
      return
    }

    let body: Uint8Array | ReadableStream<Uint8Array> | null = null
    const framing = head.body
    if (framing.kind === 'length') {
      if (rest && rest.length >= framing.length && framing.length <= INLINE_BODY_BYTES) {
        // A view, not a copy: the buffer it views is never written again (the next read replaces it).
        body = rest.subarray(0, framing.length)
        this.setBuffered(rest.length > framing.length ? rest.subarray(framing.length) : null)
      } else {
        this.bodyRemaining = framing.length
        body = this.openBody(rest)
      }
    } else if (framing.kind === 'chunked') {
      this.decoder = new ChunkedDecoder()
      body = this.openBody(rest)
    } else {
      this.setBuffered(rest)
    }
    if (head.expectContinue && this.bodyOpen) this.write(CONTINUE)

    this.shared.requestStarted()
    let reply: ProxyReply | Promise<ProxyReply>
    try {
      reply = this.shared.opts.handle({ method: head.method, target: head.target, headers, body }, client)
    } catch (err) {
      this.handlerFailed(err)
      return
    }
    if (reply instanceof Promise) reply.then((r) => this.writeReply(r), (err) => this.handlerFailed(err))
    else this.writeReply(reply)
  }

  private openBody(rest: Buffer | null): ReadableStream<Uint8Array> {
    this.bodyOpen = true
    this.armBodyDeadline()
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (ctl) => {
          this.bodyCtl = ctl
        },
        pull: () => {
          if (this.readPaused && this.phase === Phase.Busy) {
            this.readPaused = false
            this.sock.resume()
          }
        },
        cancel: () => {
          // The request path gave up on the body: the rest of it cannot be read past, so the
          // connection closes after the response.
          this.bodyCtl = undefined
          this.closeAfter = true
        },
      },
      { highWaterMark: 2 },
    )
    if (rest && rest.length > 0) this.feedBody(rest)
    return stream
  }

  /** The next body bytes are due within the body timeout (re-armed on every read, as nginx does). */
  private armBodyDeadline(): void {
    const ms = this.shared.opts.bodyTimeoutMs
    this.deadlineAt = ms > 0 ? performance.now() + ms : 0
  }

  private feedBody(chunk: Buffer): void {
    this.armBodyDeadline()
    if (this.decoder) {
      let used: number
      try {
        used = this.decoder.feed(chunk, (s) => this.enqueueBody(s))
      } catch (err) {
        this.bodyFailed(`malformed chunked request body: ${(err as Error).message}`)
        return
      }
      if (this.decoder.done) {
        this.decoder = undefined
        this.endBody(used < chunk.length ? chunk.subarray(used) : null)
      }
      return
    }
    const take = Math.min(this.bodyRemaining, chunk.length)
    this.bodyRemaining -= take
    this.enqueueBody(take === chunk.length ? chunk : chunk.subarray(0, take))
    if (this.bodyRemaining === 0) this.endBody(take < chunk.length ? chunk.subarray(take) : null)
  }

  private enqueueBody(slice: Uint8Array): void {
    const ctl = this.bodyCtl
    if (!ctl || slice.byteLength === 0) return
    ctl.enqueue(slice)
    if ((ctl.desiredSize ?? 1) <= 0 && !this.readPaused) {
      this.readPaused = true
      this.sock.pause()
    }
  }

  private endBody(rest: Buffer | null): void {
    this.bodyOpen = false
    this.deadlineAt = 0
    try {
      this.bodyCtl?.close()
    } catch {
      // cancelled
    }
    this.bodyCtl = undefined
    if (rest) this.keepPipelined(rest)
  }

  /**
   * A malformed (400) or stalled (408) request body: the upstream request is aborted (the body
   * stream errors), the client gets the status if nothing was answered yet, and the connection
   * closes.
   */
  private bodyFailed(reason: string, status = 400, why: RefusalReason = 'malformed'): void {
    this.bodyOpen = false
    this.deadlineAt = 0
    this.decoder = undefined
    try {
      this.bodyCtl?.error(new Error(reason))
    } catch {
      // cancelled
    }
    this.bodyCtl = undefined
    this.closeAfter = true
    if (!this.responded) {
      this.responded = true
      this.shared.opts.onRefused(why, status, reason, this.ip)
      this.write(plainReply(status, reason))
      this.endWhenFlushed()
    } else this.destroy()
  }

  // ---------------------------------------------------------------- writing

  private handlerFailed(err: unknown): void {
    this.shared.opts.onError(err)
    this.writeReply({ status: 500, statusText: 'Internal Server Error', headers: [['content-type', 'text/plain; charset=utf-8']], body: '500 internal error\n' })
  }

  private writeReply(reply: ProxyReply): void {
    const head = this.head!
    const stream = reply.body instanceof ReadableStream ? reply.body : undefined
    if (this.phase === Phase.Closed || this.responded) {
      stream?.cancel().catch(() => {})
      this.requestDone()
      return
    }
    this.responded = true
    const status = reply.status
    const noBody = head.method === 'HEAD' || status === 204 || status === 304 || status < 200
    let out = `HTTP/1.1 ${status} ${reply.statusText || STATUS_TEXT[status] || 'Status'}\r\n`
    let lengthValue: string | undefined
    let hasDate = false
    for (const [name, value] of reply.headers) {
      const n = name.length
      if (n === 4 && name.toLowerCase() === 'date') hasDate = true
      if (n === 10 && name.toLowerCase() === 'connection') {
        if (value.toLowerCase().includes('close')) this.closeAfter = true
        continue
      }
      if (n === 14 && name.toLowerCase() === 'content-length') {
        lengthValue = value
        if (stream || noBody) out += `${name}: ${value}\r\n`
        continue
      }
      if (n === 17 && name.toLowerCase() === 'transfer-encoding') continue
      out += `${name}: ${value}\r\n`
    }
    // Answers the proxy made itself carry a Date, as an origin's would (RFC 9110 §6.6.1).
    if (!hasDate) out += `date: ${httpDateNow()}\r\n`
    // The request body must be read to its end before the next request; if it is not, close.
    if (this.bodyOpen) this.closeAfter = true
    let bytes: Uint8Array = EMPTY
    let chunked = false
    if (!stream) {
      const b = reply.body as Uint8Array | string | null
      if (!noBody) {
        bytes = b === null ? EMPTY : typeof b === 'string' ? Buffer.from(b, 'utf8') : b
        out += `content-length: ${bytes.byteLength}\r\n`
      }
    } else if (!noBody && lengthValue === undefined) {
      if (head.minor === 1) {
        chunked = true
        out += 'transfer-encoding: chunked\r\n'
      } else this.closeAfter = true // HTTP/1.0: the body ends when the connection does
    }
    if (this.closeAfter) out += 'connection: close\r\n\r\n'
    else out += head.minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n'

    if (!stream || noBody) {
      stream?.cancel().catch(() => {})
      // Head and body in one send.
      const headBytes = Buffer.from(out, 'latin1')
      this.write(bytes.byteLength > 0 ? Buffer.concat([headBytes, bytes]) : headBytes)
      this.requestDone()
      return
    }
    this.write(Buffer.from(out, 'latin1'))
    void this.pumpReply(stream, chunked)
  }

  private async pumpReply(stream: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
    const reader = stream.getReader()
    this.replyReader = reader
    let failed = false
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        if (this.isClosed) return
        if (value.byteLength === 0) continue
        const ok = chunked ? this.write(Buffer.concat([Buffer.from(`${value.byteLength.toString(16)}\r\n`, 'latin1'), value, CRLF])) : this.write(value)
        if (!ok) {
          await new Promise<void>((r) => (this.drainWaiter = r))
          if (this.isClosed) return
        }
      }
      if (chunked) this.write(LAST_CHUNK)
    } catch {
      // The upstream failed mid-body: the client must see an aborted response, not a complete one.
      failed = true
    } finally {
      this.replyReader = undefined
    }
    if (failed) {
      this.destroy()
      return
    }
    this.requestDone()
  }

  /** The current request is over: the next one may be read, or the connection closes. */
  private requestDone(): void {
    if (this.head === undefined) return
    this.head = undefined
    this.shared.requestEnded()
    if (this.phase === Phase.Closed) return
    if (this.closeAfter || this.shared.stopping) {
      this.endWhenFlushed()
      return
    }
    this.phase = Phase.Head
    this.deadlineKindIsIdle = true
    this.deadlineAt = performance.now() + this.shared.opts.keepaliveTimeoutMs
    if (this.readPaused) {
      this.readPaused = false
      this.sock.resume()
    }
    if (this.accLen > 0) this.readHead()
  }

  /** Writes all of `data`; false when some of it is queued until the socket drains. */
  write(data: Uint8Array): boolean {
    if (this.phase === Phase.Closed) return false
    return this.out.write(data)
  }

  onDrain(): void {
    if (!this.out.flush()) return
    if (this.phase === Phase.Tunnel) this.tunnel?.handlers.drain()
    const w = this.drainWaiter
    this.drainWaiter = undefined
    w?.()
    if (this.endPending) {
      this.endPending = false
      this.sock.end()
    }
  }

  /** FIN once every queued byte has been sent. */
  endWhenFlushed(): void {
    if (this.out.empty) this.sock.end()
    else this.endPending = true
  }

  /** Answers a request the listener itself refuses, and closes the connection. */
  refuse(status: number, reason: string, why: RefusalReason, extra?: [string, string][]): void {
    this.shared.opts.onRefused(why, status, reason, this.ip)
    this.setBuffered(null)
    this.deadlineAt = 0
    this.phase = Phase.Busy
    this.responded = true
    this.write(plainReply(status, reason, extra))
    this.endWhenFlushed()
  }

  onDeadline(): void {
    this.deadlineAt = 0
    if (this.phase === Phase.Busy && this.bodyOpen) {
      // Reading is paused because the upstream is slow: the client is not the one stalling.
      if (this.readPaused) this.armBodyDeadline()
      else this.bodyFailed(`no request body bytes for client_body_timeout (${this.shared.opts.bodyTimeoutMs} ms)`, 408, 'body_timeout')
      return
    }
    if (this.phase !== Phase.Head) return
    if (this.deadlineKindIsIdle || this.accLen === 0) {
      // Keep-alive idle, or nothing sent at all: close quietly (nginx does the same).
      if (!this.deadlineKindIsIdle) this.shared.opts.onRefused('header_timeout', 0, 'no request within the header timeout', this.ip)
      this.destroy()
      return
    }
    this.refuse(408, `request head not received within client_header_timeout (${this.shared.opts.headerTimeoutMs} ms)`, 'header_timeout')
  }

  closeIfIdle(): void {
    if (this.phase === Phase.Head && this.accLen === 0) this.destroy()
    else this.closeAfter = true
  }

  onEnd(): void {
    // The client half-closed. A request still being served finishes; otherwise close.
    if (this.phase === Phase.Tunnel) {
      this.tunnel?.handlers.close(undefined)
      return
    }
    if (this.phase === Phase.Head) this.destroy()
    else this.closeAfter = true
  }

  destroy(): void {
    if (this.phase === Phase.Closed) return
    this.sock.terminate()
    this.onClose(undefined)
  }

  onClose(err: Error | undefined): void {
    if (this.phase === Phase.Closed) return
    const wasTunnel = this.phase === Phase.Tunnel
    this.phase = Phase.Closed
    this.deadlineAt = 0
    this.out.clear()
    this.setBuffered(null)
    if (this.bodyCtl) {
      try {
        this.bodyCtl.error(new Error('client closed the connection'))
      } catch {
        // already closed
      }
      this.bodyCtl = undefined
    }
    this.replyReader?.cancel(new Error('client closed the connection')).catch(() => {})
    const w = this.drainWaiter
    this.drainWaiter = undefined
    w?.()
    if (wasTunnel) this.tunnel?.markClosed(err)
    this.shared.closed(this)
  }

  get isClosed(): boolean {
    return this.phase === Phase.Closed
  }
}

/** The client connection seen as a Conn by an upgrade tunnel. */
class TunnelConn implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  readonly createdAt = Date.now()
  readonly timings = { startAt: 0, connectAt: 0, tlsAt: undefined }
  constructor(
    private readonly sock: Sock,
    readonly remoteAddress: string,
    private readonly owner: ClientConnection,
  ) {}
  write(data: Uint8Array | string): boolean {
    return this.owner.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
  }
  pause(): void {
    this.sock.pause()
  }
  resume(): void {
    this.sock.resume()
  }
  end(): void {
    if (!this.owner.isClosed) this.owner.endWhenFlushed()
  }
  destroy(): void {
    this.owner.destroy()
  }
  tlsInfo() {
    return undefined
  }
  markClosed(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.handlers.close(err)
  }
}

const EMPTY = new Uint8Array(0)

/**
 * A whole answer the proxy writes on a connection it then closes: the status, one plain line
 * with the reason, and `extra` headers. Also used by upgrade tunnels (tunnel.ts).
 */
export function plainReply(status: number, reason: string, extra?: [string, string][]): Buffer {
  const body = `${status} ${reason}\n`
  let out = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ndate: ${httpDateNow()}\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
  for (const [n, v] of extra ?? []) out += `${n}: ${v}\r\n`
  return Buffer.from(`${out}connection: close\r\n\r\n${body}`, 'utf8')
}

const STATUS_TEXT: Record<number, string> = {
  100: 'Continue',
  101: 'Switching Protocols',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  499: 'Client Closed Request',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
}
