/**
 * The proxy's own HTTP/1.1 listener on Bun.listen (plain or TLS): accepts client connections,
 * caps their number with a clean 503 (max_connections), checks every connection's deadline from
 * one sweep timer, and stops gracefully (idle connections close, busy ones after their response)
 * or at once. Each connection is a client-connection.ts state machine that feeds the request
 * path (the `handle` callback) and hands upgrades to a tunnel. What Bun.serve does not let us do
 * is why it exists: a deadline for the request head (slowloris), the connection cap, strict
 * parsing that refuses what another parser could read differently, Content-Length kept on
 * streamed responses, pipelining, and raw protocol upgrades.
 */
import type { Buffer } from 'node:buffer'
import type { SocketHandler, TCPSocketListener, TCPSocketListenOptions } from 'bun'
import { perConnectionTls, type CertSource } from '../../runtime/tls-per-connection.ts'
import { ClientConnection } from './client-connection.ts'
import type { ClientInfo, ConnectionOptions, ListenerState } from './connection-options.ts'

export type { ClientInfo }

export interface Http1ListenOptions extends ConnectionOptions {
  hostname: string
  port: number
  tls: { cert: string; key: string } | undefined
  /** A certificate that changes while listening (automatic HTTPS), read per connection; replaces `tls`. */
  dynamicTls?: CertSource
  reusePort: boolean
  /** Most open client connections; beyond it a new one gets 503 and is closed. 0 means no limit. */
  maxConnections: number
}

export interface Http1Listener {
  readonly hostname: string
  readonly port: number
  readonly pendingRequests: number
  readonly connections: number
  stop(force: boolean): Promise<void>
}

/** How often deadlines (header read, body read, keep-alive idle) are checked. */
const SWEEP_MS = 250

export function listenHttp1(opts: Http1ListenOptions): Http1Listener {
  const conns = new Set<ClientConnection>()
  let pending = 0
  let stopping = false
  const stopWaiters: (() => void)[] = []
  const shared: ListenerState = {
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
      conns.delete(c as ClientConnection)
      if (stopping && conns.size === 0) for (const w of stopWaiters.splice(0)) w()
    },
  }
  const handlers: SocketHandler<ClientConnection> = {
    binaryType: 'buffer',
    open(sock) {
      const c = new ClientConnection(sock, shared)
      sock.data = c
      if (opts.maxConnections > 0 && conns.size >= opts.maxConnections) {
        c.refuse('TOO_MANY_CONNECTIONS', `too many client connections (max_connections=${opts.maxConnections}); retry shortly`)
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
  // With dynamicTls the listener is plain and each connection is upgraded with the certificate
  // current at accept (runtime/tls-per-connection.ts says why).
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
