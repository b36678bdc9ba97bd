/**
 * The proxy's own HTTP/1.1 listener on Bun.listen (plain or TLS): accepts client connections,
 * caps their number with a clean 503 (max_connections), checks every connection's deadline from
 * one sweep timer, and stops gracefully (busy connections close after their response, idle ones
 * after a grace for a request already on its way) or at once. Each connection is a
 * client-connection.ts state machine that feeds the request path (the `handle` callback) and
 * hands upgrades to a tunnel. What Bun.serve does not let us do is why it exists: a deadline for
 * the request head (slowloris), the connection cap, strict parsing that refuses what another
 * parser could read differently, Content-Length kept on streamed responses, pipelining, and raw
 * protocol upgrades.
 */
import type { Buffer } from 'node:buffer'
import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions } from 'bun'
import { holdClocks, releaseClocks } from '../../lib/clock.ts'
import { perConnectionTls, type CertSource } from '../../runtime/tls-per-connection.ts'
import { ALPN_H2_HTTP1 } from '../../http2/bun-listener.ts'
import type { Http2Limits } from '../../http2/limits.ts'
import { encodeClosingResponse } from '../../http1/response-encode.ts'
import { clientAddress, ForwardingLines } from '../headers.ts'
import { ClientConnection } from './client-connection.ts'
import type { ClientInfo, ConnectionOptions, DownstreamConnection, ListenerState } from './connection-options.ts'
import { H2Client } from './h2-client.ts'
import { LingeringClose } from './lingering-close.ts'
import { SERVER_CIPHERS } from '../../runtime/tls-policy.ts'

export type { ClientInfo }

/**
 * A connection flood past max_connections is answered 503 at once, and each refused connection's
 * objects (its socket and record; over TLS its state machine and writer too, refuseAtAccept below
 * says why not in cleartext) are garbage a moment later; but they are still held
 * by their socket across the event-loop turn its close takes, so JSC's young-generation
 * collections promote them, and only a full collection frees them. JSC times those by its heap's
 * growth, not by the sockets' native memory, and under ~19,000 refusals a second (a client that
 * holds 1,000 silent connections and reconnects each one closed) the heap grew to 256 MiB of such
 * garbage (5.4 million objects, RSS 340 MiB, back to 23 MiB the moment the flood stopped; a
 * forced full collection leaves 4.7 MiB). So after every REFUSALS_PER_COLLECTION refusals, at
 * most once per COLLECTION_INTERVAL_MS, the listener asks for a full collection: a few ms of
 * pause, while the proxy is refusing connections anyway, for memory bounded by a second's refusals.
 */
const REFUSALS_PER_COLLECTION = 10_000
const COLLECTION_INTERVAL_MS = 1000
let refusedSinceCollection = 0
let lastCollectionMs = 0

/** What a refused connection's ClientInfo carries for X-Forwarded-* lines, which no refusal sends. */
const REFUSAL_FORWARDING = new ForwardingLines()

function collectAfterRefusals(): void {
  if (++refusedSinceCollection < REFUSALS_PER_COLLECTION) return
  const now = performance.now()
  if (now - lastCollectionMs < COLLECTION_INTERVAL_MS) return
  refusedSinceCollection = 0
  lastCollectionMs = now
  Bun.gc(true)
}

export interface Http1ListenOptions extends ConnectionOptions {
  hostname: string
  port: number
  tls: { cert: string; key: string } | undefined
  /** A certificate that changes while listening (automatic HTTPS), read per connection; replaces `tls`. */
  dynamicTls?: CertSource
  /** Offer HTTP/2 by ALPN on TLS (RFC 9113 §3.2), with these session limits; undefined: HTTP/1.1 only. */
  http2?: Partial<Http2Limits>
  reusePort: boolean
  /** Most open client connections; beyond it a new one gets 503 and is closed. 0 means no limit. */
  maxConnections: number
  /** Connections a reload's replaced listeners still hold, counted against maxConnections with this one's. */
  otherConnections?: () => number
  /**
   * Client and upstream connections the open-files limit leaves room for (runtime/open-files.ts):
   * at it, a new client is refused as over maxConnections is, so accepting never meets a full
   * descriptor table (Bun's accept loop would spin on it). Undefined: no limit known.
   */
  socketBudget?: number
  /**
   * Client and upstream connections (as they stand) past which the sweep closes idle pooled ones
   * without a client asking: a table nearly full, where accepts are about to fail.
   */
  socketTrimAt?: number
  /** Connections held beside the clients' against socketBudget: the upstream ones (each client is counted as one at least). */
  otherSockets?: () => number
  /** Closes n idle upstream connections (all or none, unless allOrNone is false: as many as there are); returns how many closed. */
  freeSockets?: (n: number, allOrNone?: boolean) => number
}

/** What a reload changes on an open listener in place: no new socket, so nothing in the accept queue is lost. */
export type Http1Settings = Pick<Http1ListenOptions, 'maxHeaderBytes' | 'headerTimeoutMs' | 'keepaliveTimeoutMs' | 'bodyTimeoutMs' | 'sendTimeoutMs' | 'maxConnections' | 'http2' | 'socketBudget' | 'socketTrimAt' | 'otherSockets' | 'freeSockets'>

export interface Http1Listener {
  readonly hostname: string
  readonly port: number
  readonly pendingRequests: number
  readonly connections: number
  /** Connections handed over to an upgrade tunnel and still open. */
  readonly tunnels: number
  /** New limits and timeouts, read by each connection at its next use of them (HTTP/2 ones by new connections). */
  update(settings: Http1Settings): void
  /** Graceful (idle connections closed now, or kept `idleGraceMs` for a request on its way) or forced. */
  stop(force: boolean, idleGraceMs?: number): Promise<void>
}

/** How often deadlines (header read, body read, keep-alive idle) are checked. */
const SWEEP_MS = 250

/**
 * A reload's old listener keeps an idle connection this long (then the sweep closes it): a
 * request the client sent as the reload began, still in the socket or on the wire, is served and
 * not cut (RFC 9112 §9.6; over HTTP/2 the round trip between two GOAWAYs RFC 9113 §6.8 asks for).
 * A drain at shutdown closes idle connections at once, as nginx does: a request that crossed the
 * close is retried by its client (RFC 9112 §9.3.1, RFC 9113 §8.7), where a 503 would not be.
 */
export const RELOAD_IDLE_GRACE_MS = 1000

export function listenHttp1(opts: Http1ListenOptions): Http1Listener {
  const conns = new Set<DownstreamConnection>()
  /**
   * TLS connections over max_connections or the open-files budget, answered 503 once their
   * handshake says in which protocol, with the reason each was refused for.
   */
  const refusing = new Map<DownstreamConnection, string>()
  /** Past the open-files budget by this many (0 or less: within it), counting each client as one upstream connection at least. */
  const overBudgetBy = (clients: number, budget: number): number => clients + refusing.size + Math.max(clients, opts.otherSockets?.() ?? 0) + 1 - budget
  /**
   * Closes idle pooled upstream connections past the budget (an HTTP/2 client's fan-out leaves
   * many behind) for a client that would be refused, as many as let it in or none. (The sweep
   * trims on its own only a table nearly full: merely past the budget, under HTTP/2 load, it closed
   * connections the pool dialled again, 490-592 opened where 160 served.)
   */
  const makeRoom = (clients: number, budget: number): void => {
    const over = overBudgetBy(clients, budget)
    const beyondClients = (opts.otherSockets?.() ?? 0) - clients
    // Only where enough can close to let one more client in (closing fewer admits no one).
    if (over > 0 && beyondClients >= over) opts.freeSockets?.(over)
  }
  /** Why a new connection is refused now ('' when it is not): max_connections, or the open-files budget. */
  const overLimit = (): string => {
    const clients = conns.size + (opts.otherConnections?.() ?? 0)
    if (opts.maxConnections > 0 && clients >= opts.maxConnections) return `too many client connections (max_connections=${opts.maxConnections}); retry shortly`
    const budget = opts.socketBudget
    if (budget === undefined || overBudgetBy(clients, budget) <= 0) return ''
    makeRoom(clients, budget)
    if (overBudgetBy(clients, budget) <= 0) return ''
    return `the proxy is at its open-files limit (${budget} client and upstream connections; raise LimitNOFILE= or ulimit -n); retry shortly`
  }
  /** A cleartext connection over max_connections or the budget: its 503 (recorded and counted as any refusal), then FIN. */
  const refuseAtAccept = (sock: Socket<DownstreamConnection>, reason: string): void => {
    const client: ClientInfo = { ip: clientAddress(sock.remoteAddress), tls: false, streamKeepsLength: true, protocol: 'HTTP/1.1', forwarding: REFUSAL_FORWARDING }
    const reply = opts.refuse('TOO_MANY_CONNECTIONS', reason, client, undefined, true)
    // A fresh socket's send buffer takes the whole answer (under 500 bytes).
    sock.write(encodeClosingResponse(reply.status, reply.headers, reply.body as string))
    sock.end()
  }
  let pending = 0
  let stopping = false
  /** The grace of the stop under way (a TLS handshake that ends in it is given the same). */
  let stopGraceMs = 0
  const stopWaiters: (() => void)[] = []
  const shared: ListenerState = {
    opts,
    tls: opts.tls !== undefined || opts.dynamicTls !== undefined,
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
      refusing.delete(c as DownstreamConnection)
      conns.delete(c as DownstreamConnection)
      if (stopping && conns.size === 0) for (const w of stopWaiters.splice(0)) w()
    },
    linger(sock, closed) {
      // The socket is the lingerer's (counted in its place, so a graceful stop waits for it, to
      // its own bounds: lingering-close.ts); the connection is then over for the proxy: its
      // request done, its body abandoned.
      const s = sock as Socket<DownstreamConnection>
      const l = new LingeringClose(s, (c) => shared.closed(c))
      s.data = l
      conns.add(l)
      closed()
    },
  }
  // Whether h2 is offered is fixed with the socket (its ALPN list); its limits may change (update).
  const h2 = opts.http2 !== undefined && (opts.tls !== undefined || opts.dynamicTls !== undefined)
  const handlers: SocketHandler<DownstreamConnection> = {
    binaryType: 'buffer',
    open(sock) {
      const reason = overLimit()
      const over = reason !== ''
      if (over) collectAfterRefusals()
      // In cleartext the 503 goes out at once, with nothing made for the connection but its
      // record (a flood of refusals made each a whole connection: 15 closures, 21 objects, 4.4 KB).
      if (over && !shared.tls) return refuseAtAccept(sock, reason)
      const c = new ClientConnection(sock as Socket<ClientConnection>, shared)
      sock.data = c
      if (over) {
        // Over TLS the answer waits for the handshake, so that it is in the protocol the client
        // chose by ALPN (an HTTP/2 client cannot read an HTTP/1.1 503). Until then the head
        // deadline (client_header_timeout, from accept) bounds it; past a cap's worth of them
        // waiting, a newcomer is cut at once.
        if (refusing.size >= Math.max(64, opts.maxConnections)) {
          opts.onQuietClose('TOO_MANY_CONNECTIONS', clientAddress(sock.remoteAddress), `${reason.replace(/; retry shortly$/, '')}; closed at once: ${refusing.size} refused TLS connections already wait for their handshakes`)
          return void sock.terminate()
        }
        refusing.set(c, reason)
        return
      }
      conns.add(c)
    },
    // TLS: the protocol the client chose by ALPN. "h2" turns the connection (nothing was read on
    // it yet) into an HTTP/2 one; anything else stays HTTP/1.1, WebSockets included.
    handshake(sock) {
      const c = sock.data
      if (!c || c.isClosed) return
      const wantsH2 = h2 && (sock as { alpnProtocol?: string | false | null }).alpnProtocol === 'h2'
      const refusedFor = refusing.get(c)
      if (refusedFor !== undefined) {
        if (!wantsH2) return (c as ClientConnection).refuse('TOO_MANY_CONNECTIONS', refusedFor)
        // Each stream it opens is answered 503, then GOAWAY (h2-client.ts).
        refusing.delete(c)
        const h2c = new H2Client(sock, shared, opts.http2!, ['TOO_MANY_CONNECTIONS', refusedFor])
        sock.data = h2c
        refusing.set(h2c, refusedFor)
        return
      }
      if (!wantsH2 || !conns.has(c)) return
      conns.delete(c)
      const h2c = new H2Client(sock, shared, opts.http2!)
      sock.data = h2c
      conns.add(h2c)
      // A handshake that ends in a reload's grace: told to go as the other connections were.
      if (stopping) h2c.closeIfIdle(stopGraceMs)
    },
    data(sock, chunk) {
      holdClocks()
      try {
        sock.data?.onData(chunk)
      } finally {
        releaseClocks()
      }
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
      // A socket error, or what a handler of ours threw (Bun brings both here, the socket still
      // open in the second case): the connection is cut either way.
      sock.data?.onClose(err)
      sock.terminate()
    },
  }
  // reusePort works on Bun.listen (SO_REUSEPORT, for --workers) though its types omit it.
  // With dynamicTls the listener is plain and each connection is upgraded with the certificate
  // current at accept (runtime/tls-per-connection.ts says why).
  // ALPN must be wire format (length-prefixed names in one string): Bun refuses an array.
  const alpn = h2 ? ALPN_H2_HTTP1 : undefined
  const socket = opts.dynamicTls ? perConnectionTls(handlers, opts.dynamicTls, { alpn }) : handlers
  const tls = opts.tls && !opts.dynamicTls ? { tls: { ...opts.tls, ciphers: SERVER_CIPHERS, ...(alpn ? { ALPNProtocols: alpn } : {}) } } : {}
  const listenOptions = { hostname: opts.hostname, port: opts.port, reusePort: opts.reusePort, ...tls, socket }
  const server: TCPSocketListener<DownstreamConnection> = Bun.listen<DownstreamConnection>(listenOptions as TCPSocketListenOptions<DownstreamConnection>)
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const c of conns) if (c.deadlineAt !== 0 && now >= c.deadlineAt) c.onDeadline()
    for (const c of refusing.keys()) if (c.deadlineAt !== 0 && now >= c.deadlineAt) c.onDeadline()
    // A table nearly full: idle pooled connections close, as many as bring it under socketTrimAt,
    // whether or not that lets a client in (with the clients at their cap none would be: r4 saw
    // the table stay full, the accept loop spinning, until pool_idle_timeout).
    const trimAt = opts.socketTrimAt
    if (trimAt !== undefined) {
      const standing = conns.size + (opts.otherConnections?.() ?? 0) + refusing.size + (opts.otherSockets?.() ?? 0)
      if (standing >= trimAt) opts.freeSockets?.(standing - trimAt + 1, false)
    }
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
    get tunnels() {
      let n = 0
      for (const c of conns) if (c.isTunnel) n++
      return n
    },
    update(settings) {
      // `opts` is the connections' shared.opts: they read these values where they use them.
      Object.assign(opts, settings)
    },
    stop(force, idleGraceMs = 0) {
      if (!stopping) {
        stopping = true
        server.stop(false)
      }
      stopGraceMs = idleGraceMs
      // Busy connections close after their response (closeAfter is read then), idle ones now or
      // after idleGraceMs (a reload's: a request on its way is served), unless a request arrives.
      for (const c of [...refusing.keys()]) c.destroy()
      for (const c of [...conns]) {
        // Forced (drain_timeout's end): a request with no answer begun gets its 503 first (each stream of an HTTP/2 connection).
        if (force) void (c instanceof ClientConnection || c instanceof H2Client ? c.cut() : c.destroy())
        else c.closeIfIdle(idleGraceMs)
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
