/**
 * Raw client sockets: how bytes reach one IP address. A small interface (`Conn`) over
 * Bun.connect, with a node:net/node:tls fallback for Deno. TLS verification, SNI, connect
 * timeout and write backpressure live here; HTTP framing lives in proxy/upstream/connection.ts.
 */
import { isIP } from 'node:net'
import { holdClocks, releaseClocks } from '../lib/clock.ts'
import { connectFailure, DialError } from './dial-errors.ts'
import { isBun } from './detect.ts'
import { ReadSizer } from './receive-buffer.ts'
import { peerHasNews } from './socket-poll.ts'
import type { TlsSessionCache } from './tls-sessions.ts'
import { WriteQueue } from './write-queue.ts'

export { DialError, type DialErrorCode } from './dial-errors.ts'

export interface TlsDialOptions {
  /** SNI and the name the certificate is verified against. */
  serverName: string
  /** PEM CA bundle; undefined means the runtime's default roots. */
  ca: string | undefined
  rejectUnauthorized: boolean
  /** Sessions to offer again (resumption) and to keep, by address and port; none when undefined. */
  sessions?: TlsSessionCache
}

export interface DialOptions {
  /** An IP address (the resolver already chose it). */
  address: string
  port: number
  tls: TlsDialOptions | undefined
  connectTimeoutMs: number
}

export interface ConnTimings {
  /** performance.now() marks; tlsAt is undefined for plain TCP. */
  startAt: number
  connectAt: number
  tlsAt: number | undefined
  /** The TLS handshake resumed an earlier session (tls-sessions.ts). */
  tlsResumed?: boolean
}

/** Event sinks a Conn user installs. Each is replaced, never chained. */
export interface ConnHandlers {
  data(chunk: Uint8Array): void
  drain(): void
  /** The connection is gone; `err` is set when it ended abnormally. Called once. */
  close(err: Error | undefined): void
}

export interface Conn {
  readonly remoteAddress: string
  readonly timings: ConnTimings
  /** performance.now() when the connection was made: its age is on the monotonic clock. */
  readonly createdAtMonoMs: number
  readonly closed: boolean
  handlers: ConnHandlers
  /** Writes all of `data`; returns false when some of it was queued (wait for handlers.drain). */
  write(data: Uint8Array | string): boolean
  pause(): void
  resume(): void
  /** What is read here was written onward, `whole` or not: reads are sized by it (receive-buffer.ts; Bun only). */
  wrote?(whole: boolean, bytes: number): void
  /** Closes gracefully (FIN), after whatever is still queued has been sent. */
  end(): void
  /** Closes at once (RST where supported). */
  destroy(): void
  /** The kernel holds a FIN, a reset or bytes from the peer that no handler has heard yet (socket-poll.ts; false where unknown). */
  peerHasNews?(): boolean
  /** Bytes given to write() that the socket has not taken (held, queued, or dropped at the close); undefined where unknown. */
  readonly unsentBytes?: number
  tlsInfo(): { version: string | undefined; alpn: string | undefined; cipher: string | undefined } | undefined
}

/** Handlers that ignore every event: a Conn's state before it is used, or after it is let go. */
export const NOOP_HANDLERS: ConnHandlers = { data() {}, drain() {}, close() {} }

export function dial(opts: DialOptions): Promise<Conn> {
  return isBun ? dialBun(opts) : dialNode(opts)
}

// ---------------------------------------------------------------- Bun

interface BunSocketData {
  conn: BunConn | undefined
  rejectUnauthorized: boolean
  /** The DNS name the certificate was verified against (SNI); undefined for an IP or insecure. */
  dnsName: string | undefined
  settle: ((err: Error | undefined, socket: BunSocket | undefined, event: 'open' | 'handshake' | 'fail') => void) | undefined
  /** TLS resumption: where this socket's session goes (tls-sessions.ts), until its first read has kept it. */
  sessions: TlsSessionCache | undefined
  sessionKey: string
  /** A kept session was offered in this handshake (set in open): a failed dial pauses resumption (tls-sessions.ts). */
  offered?: boolean
}

type BunSocket = import('bun').Socket<BunSocketData>

class BunConn implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  readonly createdAtMonoMs = performance.now()
  private readonly out: WriteQueue
  /** Sizes this socket's reads by how fast what is read moves on (receive-buffer.ts). */
  private readonly sizer: ReadSizer
  constructor(
    private readonly socket: BunSocket,
    readonly remoteAddress: string,
    readonly timings: ConnTimings,
  ) {
    // Batched: requests written from promise reactions go out together (write-queue.ts).
    this.out = new WriteQueue(socket, { batch: true })
    // What is read here goes to client sockets, whose unsent backlog is bounded (send-backlog.ts).
    this.sizer = new ReadSizer(socket, true)
  }

  wrote(whole: boolean, bytes: number): void {
    this.sizer.wrote(whole, bytes)
  }

  peerHasNews(): boolean {
    return peerHasNews(this.socket)
  }

  write(data: Uint8Array | string): boolean {
    if (this.closed) return false
    return this.out.write(typeof data === 'string' ? encoder.encode(data) : data)
  }

  /** Hands what is held for this round's batch to the socket now. */
  sendBatch(): void {
    if (!this.closed) this.out.sendBatch()
  }

  /** Called from the socket's drain event: flush what is queued, then tell the user. */
  flushQueue(): void {
    if (!this.out.flush()) return
    this.handlers.drain()
  }

  pause(): void {
    this.socket.pause()
  }
  resume(): void {
    this.socket.resume()
  }
  end(): void {
    if (this.closed) return
    this.out.endWhenFlushed()
  }
  destroy(): void {
    if (this.closed) return
    // What was written goes to the kernel first, as it did before writes were batched.
    this.out.sendBatch()
    this.socket.terminate()
  }
  tlsInfo() {
    if (this.timings.tlsAt === undefined) return undefined
    const alpn = this.socket.alpnProtocol
    return { version: this.socket.getTLSVersion() ?? undefined, alpn: typeof alpn === 'string' ? alpn : undefined, cipher: this.socket.getCipher()?.name }
  }
  get unsentBytes(): number {
    return this.out.unsent
  }
  markClosed(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.out.clear()
    this.handlers.close(err)
  }
}

const encoder = new TextEncoder()

const bunHandlers: import('bun').SocketHandler<BunSocketData> = {
  binaryType: 'buffer',
  open(socket) {
    // With a handshake handler present, open fires at TCP connect, before any TLS: the one
    // place a session to resume can be set (Bun's setSession).
    const d = socket.data
    const session = d.sessions?.get(d.sessionKey)
    if (session !== undefined) {
      socket.setSession(session)
      d.offered = true
    }
    d.settle?.(undefined, socket, 'open')
  },
  handshake(socket, success, authorizationError) {
    const d = socket.data
    // Bun reports an untrusted certificate (a name mismatch included) as success = false, which
    // insecure accepts; a handshake refused by an alert (an h2-only origin's no_application_protocol)
    // is false too, but negotiated no cipher: that one fails under insecure as well.
    const refused = !success && (d.rejectUnauthorized || !socket.getCipher()?.name)
    let err = refused ? new DialError('TLS_FAILED', `TLS handshake failed: ${authorizationError?.message ?? 'certificate not trusted'}`, { cause: authorizationError }) : undefined
    if (err === undefined && d.dnsName !== undefined) err = commonNameOnly(d.dnsName, socket.getPeerCertificate())
    // A failed handshake's session (if one was offered) is not offered again.
    if (err !== undefined) d.sessions?.forget(d.sessionKey)
    d.settle?.(err, socket, 'handshake')
  },
  data(socket, chunk) {
    holdClocks()
    try {
      const d = socket.data
      // The session is kept at the first read: a TLS 1.3 ticket comes after the handshake
      // (RFC 8446 §4.6.1), before the answer's bytes.
      if (d.sessions !== undefined) keepSession(socket, d.sessions, d.sessionKey)
      d.conn?.handlers.data(chunk as unknown as Uint8Array)
    } finally {
      releaseClocks()
    }
  },
  drain(socket) {
    socket.data.conn?.flushQueue()
  },
  close(socket, err) {
    const d = socket.data
    d.settle?.(new DialError('CONNECT_FAILED', `connection closed during connect${err ? `: ${err.message}` : ''}`, { cause: err }), socket, 'fail')
    d.conn?.markClosed(err)
  },
  end(socket) {
    // Half-close from the peer: treat as close; HTTP/1.1 responses that end at close are
    // completed by the close handler of the exchange. What is held for this round's batch goes
    // to the kernel first, as it did before writes were batched.
    socket.data.conn?.sendBatch()
    socket.end()
  },
  error(socket, err) {
    const d = socket.data
    d.settle?.(new DialError('CONNECT_FAILED', err.message, { cause: err }), socket, 'fail')
    if (!d.conn) return
    d.conn.markClosed(err)
    // Bun also brings here what a handler of ours threw, with the socket still open: cut it, or
    // it would stay open outside the pool's count.
    socket.terminate()
  },
  connectError(socket, err) {
    socket.data.settle?.(connectFailure(err), undefined, 'fail')
  },
}

function keepSession(socket: BunSocket, sessions: TlsSessionCache, key: string): void {
  socket.data.sessions = undefined
  const session = (socket as unknown as { getSession(): Uint8Array | undefined }).getSession()
  if (session !== undefined && session.byteLength > 0) sessions.set(key, session)
}

/**
 * ALPN offer (RFC 7301 §3.1, wire format: length-prefixed names): HTTP/1.1, the only protocol
 * the upstream side speaks. Without it an origin that speaks only h2 accepts the connection and
 * answers HTTP/1.1 bytes with an error page of its own (Node's http2 server: 403); offered, the
 * origin refuses the handshake (no_application_protocol), a TLS_FAILED that names the cause.
 */
const ALPN_HTTP11 = new Uint8Array([8, ...new TextEncoder().encode('http/1.1')])

/**
 * A certificate verified for a DNS name only by its subject's Common Name: the runtimes' check
 * (Node's checkServerIdentity) falls back to the CN when there is no DNS SAN; RFC 9525 §6.3 (and
 * browsers, Go) do not, and CAs no longer issue such certificates. A TLS_FAILED then, else
 * undefined. A resumed handshake may carry no certificate: it was checked when first made.
 */
function commonNameOnly(name: string, cert: { subjectaltname?: string; subject?: unknown } | undefined): DialError | undefined {
  if (cert?.subject === undefined || cert.subjectaltname?.includes('DNS:')) return undefined
  return new DialError('TLS_FAILED', `TLS handshake failed: the certificate names ${name} only in its Common Name, with no DNS subjectAltName (RFC 9525 §6.3: the CN is not used); reissue it with a subjectAltName`)
}

/**
 * The SNI to send: none ('') for an IP address (RFC 6066 §3: a literal IP is not a HostName), as
 * for an upstream URL of an IP literal. Both runtimes then verify the certificate against the
 * dialled address, which is that IP; a tls_server_name that is some other IP is sent as is
 * (Bun then verifies against it; node:tls, for Deno, sends none and checks it in dialNode).
 */
function sniFor(serverName: string, address: string): string {
  return serverName === address && isIP(serverName) !== 0 ? '' : serverName
}

function dialBun(opts: DialOptions): Promise<Conn> {
  return new Promise<Conn>((resolve, reject) => {
    const startAt = performance.now()
    let connectAt = 0
    let done = false
    let socketRef: BunSocket | undefined
    const data: BunSocketData = { conn: undefined, settle: undefined, rejectUnauthorized: opts.tls?.rejectUnauthorized ?? true, dnsName: opts.tls?.rejectUnauthorized && isIP(opts.tls.serverName) === 0 ? opts.tls.serverName : undefined, sessions: opts.tls?.sessions, sessionKey: `${opts.address}:${opts.port}` }
    const finish = (err: Error | undefined, socket: BunSocket | undefined) => {
      if (done) return
      done = true
      clearTimeout(timer)
      data.settle = undefined
      if (err || !socket) {
        // A dial that offered a session and then failed (cut or timed out mid-handshake, not only
        // refused a certificate) does not offer it again: a peer that cannot take it would
        // otherwise fail every new connection, where a full handshake would have done.
        if (data.offered) data.sessions?.refused(data.sessionKey)
        ;(socket ?? socketRef)?.terminate()
        reject(err ?? new DialError('CONNECT_FAILED', 'connect failed'))
        return
      }
      socket.setNoDelay(true)
      const conn = new BunConn(socket, opts.address, { startAt, connectAt, tlsAt: opts.tls ? performance.now() : undefined, tlsResumed: opts.tls !== undefined && socket.isSessionReused() })
      data.conn = conn
      resolve(conn)
    }
    const timer = setTimeout(() => {
      finish(new DialError('CONNECT_TIMEOUT', `connect timed out after ${opts.connectTimeoutMs}ms`), undefined)
    }, opts.connectTimeoutMs)
    data.settle = (err, socket, event) => {
      if (socket) socketRef = socket
      if (event === 'open') {
        connectAt = performance.now()
        if (opts.tls) return // wait for the handshake
      }
      finish(err, socket)
    }
    Bun.connect<BunSocketData>({
      hostname: opts.address,
      port: opts.port,
      data,
      socket: bunHandlers,
      tls: opts.tls ? { serverName: sniFor(opts.tls.serverName, opts.address), ca: opts.tls.ca, rejectUnauthorized: opts.tls.rejectUnauthorized, ALPNProtocols: ALPN_HTTP11 } : undefined,
    }).then(
      (s) => {
        socketRef = s
        if (done && data.conn === undefined) s.terminate()
      },
      // Mostly after connectError has settled it (then not mapped again: a refusal's check costs system calls).
      (err: Error) => void (done || finish(connectFailure(err), undefined)),
    )
  })
}

// ---------------------------------------------------------------- node:net (Deno)

async function dialNode(opts: DialOptions): Promise<Conn> {
  const net = await import('node:net')
  const tls = await import('node:tls')
  return new Promise<Conn>((resolve, reject) => {
    const startAt = performance.now()
    let connectAt = 0
    let settled = false
    const sessionKey = `${opts.address}:${opts.port}`
    // node:tls on Deno throws for an IP as servername (ERR_INVALID_ARG_VALUE), even one other than
    // the dialled address: none is sent for any IP, and the check names the configured one itself.
    const name = opts.tls?.serverName ?? ''
    const sock = opts.tls
      ? tls.connect({ host: opts.address, port: opts.port, servername: isIP(name) === 0 ? name : '', ca: opts.tls.ca, rejectUnauthorized: opts.tls.rejectUnauthorized, ALPNProtocols: ['http/1.1'], checkServerIdentity: (_host, cert) => (isIP(name) === 0 ? commonNameOnly(name, cert) : undefined) ?? tls.checkServerIdentity(name, cert), session: opts.tls.sessions?.get(sessionKey) as Buffer | undefined })
      : net.connect({ host: opts.address, port: opts.port })
    // Sessions to resume, as on Bun (tls-sessions.ts); node:tls says when one (or a TLS 1.3 ticket) arrives.
    const sessions = opts.tls?.sessions
    if (sessions !== undefined) sock.on('session', (session: Uint8Array) => sessions.set(sessionKey, session))
    sock.setNoDelay(true)
    const timer = setTimeout(() => fail(new DialError('CONNECT_TIMEOUT', `connect timed out after ${opts.connectTimeoutMs}ms`)), opts.connectTimeoutMs)
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      reject(err)
    }
    sock.once('connect', () => {
      connectAt = performance.now()
    })
    sock.once(opts.tls ? 'secureConnect' : 'connect', () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const conn = new NodeConn(sock, opts.address, { startAt, connectAt: connectAt || performance.now(), tlsAt: opts.tls ? performance.now() : undefined, tlsResumed: opts.tls !== undefined && (sock as import('node:tls').TLSSocket).isSessionReused() })
      resolve(conn)
    })
    sock.once('error', (err: NodeJS.ErrnoException) => {
      const failure = connectFailure(err, opts.tls && connectAt ? 'TLS_FAILED' : 'CONNECT_FAILED')
      if (failure.code === 'TLS_FAILED') sessions?.forget(sessionKey)
      fail(failure)
    })
  })
}

class NodeConn implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  readonly createdAtMonoMs = performance.now()
  constructor(
    private readonly sock: import('node:net').Socket,
    readonly remoteAddress: string,
    readonly timings: ConnTimings,
  ) {
    sock.on('data', (chunk: Uint8Array) => this.handlers.data(chunk))
    sock.on('drain', () => this.handlers.drain())
    let error: Error | undefined
    sock.on('error', (err) => {
      error = err
    })
    sock.on('close', () => {
      if (this.closed) return
      this.closed = true
      this.handlers.close(error)
    })
  }
  write(data: Uint8Array | string): boolean {
    if (this.closed) return false
    return this.sock.write(data)
  }
  pause(): void {
    this.sock.pause()
  }
  resume(): void {
    this.sock.resume()
  }
  end(): void {
    this.sock.end()
  }
  destroy(): void {
    this.sock.destroy()
  }
  tlsInfo() {
    const t = this.sock as import('node:tls').TLSSocket
    if (typeof t.getProtocol !== 'function') return undefined
    return { version: t.getProtocol() ?? undefined, alpn: typeof t.alpnProtocol === 'string' ? t.alpnProtocol : undefined, cipher: t.getCipher()?.name }
  }
}
