/**
 * The proxy server: wires config, address sources, pools and the handler into a client listener
 * (the own HTTP/1.1 listener of http1-listener.ts, or Bun.serve / Deno.serve through
 * runtime/listener.ts), and owns its lifecycle (start, reload, graceful drain, close). The
 * request path itself is in handler.ts; upgrade tunnels in tunnel.ts (own listener) and
 * websocket.ts (Bun.serve).
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'bun'
import { listen, setMaxHeaderBytes, type Listener, type RequestContext } from '../runtime/listener.ts'
import type { ResolvedConfig, ResolvedUpstream } from '../config/schema.ts'
import { parseCidr, cidrContains, type Cidr } from '../lib/cidr.ts'
import { ProxyError } from '../lib/errors.ts'
import type { LogFn } from '../lib/logger.ts'
import type { AddressSource } from './address-source.ts'
import { ProxyHandler, type HandlerHooks } from './handler.ts'
import { requestIdFor } from './headers.ts'
import { checkRequest } from './request-checks.ts'
import { UpstreamPool } from './pool.ts'
import { errorReply, errorResponse } from './status.ts'
import { isWebSocketUpgrade, tunnelHandlers, tunnelWebSocket, type TunnelData } from './websocket.ts'
import { isBun } from '../runtime/detect.ts'
import type { Conn } from '../runtime/socket.ts'
import { listenHttp1, type RefusalReason } from './http1-listener.ts'
import { fromRequest, toResponse, type ProxyReply, type ProxyRequest } from './message.ts'
import { tunnelUpgrade } from './tunnel.ts'
import { isoNow } from '../lib/clock.ts'

export interface ProxyServerOptions {
  /** Builds the address source of one upstream (DNS resolver in production, static in tests). */
  sourceFor: (upstream: ResolvedUpstream) => AddressSource
  /** Share the listen port with other worker processes (SO_REUSEPORT). */
  reusePort?: boolean
  hooks?: HandlerHooks
  log?: LogFn
  /**
   * ACME hook (issue 17): the certificate to present, read per client connection (own listener
   * only); undefined from it means none yet, and the handshake is refused with a TLS alert.
   */
  dynamicTls?: () => { cert: string; key: string } | undefined
}

/** The parts of a config that one generation of the proxy is built from; swapped whole on reload. */
interface Generation {
  config: ResolvedConfig
  handler: ProxyHandler
  trusted: Cidr[]
  keepaliveS: number
}

export class ProxyServer {
  /** Current pools and sources by upstream name; replaced (not mutated) on reload. */
  pools = new Map<string, UpstreamPool>()
  sources = new Map<string, AddressSource>()
  private server: Listener | undefined
  private gen: Generation
  private readonly cas = new Map<string, string | undefined>()
  private stopping = false
  private started = false
  /** Requests answered by the proxy itself without going upstream, by reason (for /metrics). */
  readonly refused: Record<'malformed' | 'overload' | 'shutting_down' | RefusalReason, number> = { malformed: 0, overload: 0, shutting_down: 0, connections: 0, header_timeout: 0, body_timeout: 0 }
  private overloadLoggedAtMs = 0
  private refusalLoggedAtMs = 0

  constructor(
    config: ResolvedConfig,
    private readonly opts: ProxyServerOptions,
  ) {
    this.gen = this.build(config, new Map(), new Map())
  }

  get config(): ResolvedConfig {
    return this.gen.config
  }

  /**
   * Builds pools and sources for `config`, reusing those of upstreams whose settings did not
   * change (so their warm connections and DNS state survive a reload).
   */
  private build(config: ResolvedConfig, oldPools: Map<string, UpstreamPool>, oldSources: Map<string, AddressSource>): Generation {
    const pools = new Map<string, UpstreamPool>()
    const sources = new Map<string, AddressSource>()
    for (const u of Object.values(config.upstreams)) {
      const old = oldPools.get(u.name)
      if (old && JSON.stringify(old.upstream) === JSON.stringify(u)) {
        pools.set(u.name, old)
        sources.set(u.name, oldSources.get(u.name)!)
        continue
      }
      const ca = u.caFile ? readPem(u.caFile, `upstream.${u.name}.ca_file`) : undefined
      this.cas.set(u.name, ca)
      const source = this.opts.sourceFor(u)
      sources.set(u.name, source)
      pools.set(u.name, new UpstreamPool(u, source, { ca, log: this.opts.log }))
    }
    this.pools = pools
    this.sources = sources
    const trusted = config.server.trustedProxies.map((c) => parseCidr(c)!)
    return {
      config,
      trusted,
      keepaliveS: Math.min(255, Math.max(1, Math.ceil(config.server.keepaliveTimeoutMs / 1000))),
      handler: new ProxyHandler(config, pools, trusted, this.opts.hooks),
    }
  }

  /** Starts the address sources and the listener. Throws E_LISTEN when the port is taken. */
  start(): this {
    for (const s of this.sources.values()) s.start()
    try {
      this.server = this.openListener(this.gen.config)
    } catch (err) {
      for (const s of this.sources.values()) s.close()
      throw err
    }
    this.started = true
    return this
  }

  private openListener(config: ResolvedConfig): Listener {
    const cfg = config.server
    const tls = cfg.tlsCertFile && cfg.tlsKeyFile ? { cert: readPem(cfg.tlsCertFile, 'server.tls_cert'), key: readPem(cfg.tlsKeyFile, 'server.tls_key') } : undefined
    const clientTls = tls !== undefined
    try {
      if (cfg.listener === 'own') return this.openOwnListener(config, tls)
      if (this.opts.dynamicTls) throw new ProxyError('E_LISTEN', 'automatic HTTPS (--acme) needs listener = "own" (Bun)') // ACME hook (issue 17)
      return listen<TunnelData>({
        hostname: cfg.listen.host,
        port: cfg.listen.port,
        tls,
        // Bun's listener idle timer (whole seconds, at most 255) is the keep-alive timeout.
        // Each proxied request turns it off for its own duration (a silent stream or a slow
        // upstream must not be cut by it; idle_timeout governs those) and restores it after.
        idleTimeoutS: Math.min(255, Math.max(1, Math.ceil(cfg.keepaliveTimeoutMs / 1000))),
        maxRequestBodySize: cfg.maxBodyBytes > 0 ? cfg.maxBodyBytes : Number.MAX_SAFE_INTEGER,
        maxHeaderBytes: cfg.maxHeaderBytes,
        reusePort: this.opts.reusePort ?? false,
        fetch: (req, ctx) => this.fetch(req, ctx, clientTls),
        websocket: tunnelHandlers,
        onError: (err) => this.opts.log?.('error', 'listener error', { error: String(err) }),
      })
    } catch (err) {
      if (err instanceof ProxyError) throw err
      throw new ProxyError('E_LISTEN', `cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${(err as Error).message}; pick another --listen address or stop what uses it`, { cause: err })
    }
  }

  /** The proxy's own HTTP/1.1 listener (server.listener = "own"); Bun only. */
  private openOwnListener(config: ResolvedConfig, tls: { cert: string; key: string } | undefined): Listener {
    const cfg = config.server
    if (!isBun) throw new ProxyError('E_LISTEN', 'server.listener = "own" needs the Bun runtime (Bun.listen); use listener = "runtime" on Deno')
    const clientTls = tls !== undefined || this.opts.dynamicTls !== undefined // ACME hook (issue 17)
    return listenHttp1({
      hostname: cfg.listen.host,
      port: cfg.listen.port,
      tls,
      dynamicTls: this.opts.dynamicTls, // ACME hook (issue 17)
      reusePort: this.opts.reusePort ?? false,
      maxHeaderBytes: cfg.maxHeaderBytes,
      headerTimeoutMs: cfg.clientHeaderTimeoutMs,
      keepaliveTimeoutMs: cfg.keepaliveTimeoutMs,
      bodyTimeoutMs: cfg.clientBodyTimeoutMs,
      maxConnections: cfg.maxConnections,
      handle: (req, client) => this.serve(req, client.ip, clientTls),
      upgrade: (req, upgrade, client, conn, early) => this.upgrade(req, upgrade, client.ip, clientTls, conn, early),
      onRefused: (reason, status, detail, ip) => this.countRefusal(reason, status, detail, ip),
      onError: (err) => this.opts.log?.('error', 'listener error', { error: String(err) }),
    })
  }

  /** The request path behind the own listener: the same checks and handler as fetch(). */
  private serve(req: ProxyRequest, ip: string, clientTls: boolean): ProxyReply | Promise<ProxyReply> {
    if (this.stopping) {
      this.refused.shutting_down++
      return errorReply(503, 'proxy is shutting down', requestIdFor(req.headers.get('x-request-id')), [['connection', 'close']])
    }
    const maxConcurrent = this.gen.config.server.maxConcurrentRequests
    if (maxConcurrent > 0 && this.pendingRequests > maxConcurrent) return this.refuseOverload(ip, maxConcurrent)
    return this.gen.handler.handle(req, { ip, tls: clientTls, streamKeepsLength: true })
  }

  private upgrade(req: ProxyRequest, upgrade: string, ip: string, clientTls: boolean, conn: Conn, early: Uint8Array): void {
    const gen = this.gen
    const pool = gen.handler.routeFor(req.target, req.headers.get('host'))
    const requestId = requestIdFor(req.headers.get('x-request-id'))
    const startedAt = performance.now()
    const ts = isoNow()
    tunnelUpgrade(req, conn, early, {
      pool,
      upgrade,
      clientIp: ip,
      clientTls,
      trustedPeer: gen.trusted.some((c) => cidrContains(c, ip)),
      requestId,
      openTimeoutMs: pool.upstream.connectTimeoutMs + pool.upstream.headerTimeoutMs,
      // One access-log line per upgrade, when it is over (as nginx logs a WebSocket: 101, with its bytes).
      onEnd: (end) =>
        this.opts.hooks?.onRecord?.({
          ts,
          request_id: requestId,
          client: ip,
          method: req.method,
          host: req.headers.get('host') ?? pool.upstream.host,
          path: req.target,
          status: end.status,
          bytes_in: end.bytesIn,
          bytes_out: end.bytesOut,
          duration_ms: Math.round((performance.now() - startedAt) * 1000) / 1000,
          upstream: pool.upstream.name,
          ...(end.upstreamAddr !== undefined ? { upstream_addr: end.upstreamAddr } : {}),
          ...(end.status !== 499 && end.status !== 502 ? { upstream_status: end.status } : {}),
          retries: Math.max(0, end.attempts - 1),
          ...(end.error !== undefined ? { error: end.error } : {}),
        }),
    }).catch((err) => {
      this.opts.log?.('error', 'upgrade tunnel failed', { error: String(err), request_id: requestId })
      conn.destroy()
    })
  }

  /** Counts what the own listener answered itself, and logs it (at most one line a second). */
  private countRefusal(reason: RefusalReason, status: number, detail: string, ip: string): void {
    this.refused[reason]++
    const nowMs = Date.now()
    if (nowMs - this.refusalLoggedAtMs < 1000) return
    this.refusalLoggedAtMs = nowMs
    this.opts.log?.(reason === 'malformed' ? 'info' : 'warn', 'request rejected', { client: ip, status, reason: detail, refused_total: this.refused[reason] })
  }

  /**
   * Applies a new config atomically: new requests use it at once; requests and WebSockets in
   * flight finish on what they started with. A changed listen address or TLS files open a new
   * listener first, then the old one drains. Throws (and changes nothing) if the new listener
   * cannot be opened.
   */
  async reload(next: ResolvedConfig): Promise<void> {
    const prev = this.gen
    const oldPools = this.pools
    const oldSources = this.sources
    const listenerChanged = listenerKey(prev.config) !== listenerKey(next)
    let newListener: Listener | undefined
    let gen: Generation
    try {
      gen = this.build(next, oldPools, oldSources)
      if (listenerChanged && this.started) {
        // Same address (a TLS or limit change): the old one must let go of the port first.
        const sameAddress = JSON.stringify(prev.config.server.listen) === JSON.stringify(next.server.listen)
        if (sameAddress && !this.opts.reusePort) void this.server?.stop(false)
        newListener = this.openListener(next)
      }
    } catch (err) {
      // Roll back: keep serving the previous generation.
      for (const [name, src] of this.sources) if (oldSources.get(name) !== src) src.close()
      for (const [name, pool] of this.pools) if (oldPools.get(name) !== pool) pool.close()
      this.pools = oldPools
      this.sources = oldSources
      throw err
    }
    this.gen = gen
    // Bun.serve reads its head limit from one process-wide value; the own listener has its own.
    if (this.started && next.server.listener === 'runtime') setMaxHeaderBytes(next.server.maxHeaderBytes)
    for (const s of this.sources.values()) if (![...oldSources.values()].includes(s)) s.start()
    // Retire what the new generation does not use: idle connections close now, busy ones when
    // their exchange ends (the pool is closed, so nothing returns to it).
    for (const [name, pool] of oldPools) if (this.pools.get(name) !== pool) pool.close()
    for (const [name, src] of oldSources) if (this.sources.get(name) !== src) src.close()
    if (newListener) {
      const old = this.server
      this.server = newListener
      void old?.stop(false)
    }
  }

  get pendingRequests(): number {
    return this.server?.pendingRequests ?? 0
  }

  /** Open client connections; undefined when the listener cannot tell (Bun.serve, Deno.serve). */
  get clientConnections(): number | undefined {
    return this.server?.connections
  }

  get port(): number {
    return this.server?.port ?? 0
  }

  get url(): string {
    const s = this.server!
    return `${this.config.server.tlsCertFile || this.opts.dynamicTls ? 'https' : 'http'}://${s.hostname.includes(':') ? `[${s.hostname}]` : s.hostname}:${s.port}`
  }

  private fetch(req: Request, ctx: RequestContext, clientTls: boolean): Response | Promise<Response | undefined> {
    const ip = ctx.ip
    if (this.stopping) {
      this.refused.shutting_down++
      return errorResponse(503, 'proxy is shutting down', requestIdFor(req.headers.get('x-request-id')), [['connection', 'close']])
    }
    const maxConcurrent = this.gen.config.server.maxConcurrentRequests
    // pendingRequests counts this request too, and every response still streaming.
    if (maxConcurrent > 0 && this.pendingRequests > maxConcurrent) return toResponse(this.refuseOverload(ip, maxConcurrent))
    const rejected = checkRequest(req)
    if (rejected) {
      this.refused.malformed++
      const extra: [string, string][] = rejected.status === 405 ? [['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']] : [['connection', 'close']]
      this.opts.log?.('info', 'request rejected', { client: ip, status: rejected.status, reason: rejected.reason })
      return errorResponse(rejected.status, rejected.reason, requestIdFor(null), extra)
    }
    const gen = this.gen
    if (isWebSocketUpgrade(req) && ctx.bunServer) {
      const target = fromRequest(req).target
      const pool = gen.handler.routeFor(target, req.headers.get('host'))
      return tunnelWebSocket(req, {
        pool,
        server: ctx.bunServer as Server<TunnelData>,
        clientIp: ip,
        clientTls,
        requestId: requestIdFor(req.headers.get('x-request-id')),
        target,
        trustedPeer: gen.trusted.some((c) => cidrContains(c, ip)),
        ca: this.cas.get(pool.upstream.name),
        openTimeoutMs: pool.upstream.connectTimeoutMs + pool.upstream.headerTimeoutMs,
      })
    }
    ctx.setIdleTimeout(0)
    const keepaliveS = gen.keepaliveS
    return gen.handler
      .handle(fromRequest(req), {
        ip,
        tls: clientTls,
        onDone: () => {
          try {
            ctx.setIdleTimeout(keepaliveS)
          } catch {
            // the client connection is already gone
          }
        },
      })
      .then(toResponse)
  }

  /** 503 beyond max_concurrent_requests; closing the connection frees the client's slot too. */
  private refuseOverload(ip: string, maxConcurrent: number): ProxyReply {
    this.refused.overload++
    const nowMs = Date.now()
    if (nowMs - this.overloadLoggedAtMs >= 1000) {
      // At most one line a second: a flood must not also flood the log.
      this.overloadLoggedAtMs = nowMs
      this.opts.log?.('warn', 'request refused: max_concurrent_requests reached', { client: ip, max_concurrent_requests: maxConcurrent, refused_total: this.refused.overload })
    }
    return errorReply(503, `too many concurrent requests (max_concurrent_requests=${maxConcurrent}); retry shortly`, requestIdFor(null), [
      ['retry-after', '1'],
      ['connection', 'close'],
    ])
  }

  /**
   * Graceful stop: refuse new connections, let in-flight requests finish for up to drainMs,
   * then close what is left. Resolves when the listener is closed.
   */
  async drain(drainMs: number): Promise<void> {
    if (!this.server) return
    this.stopping = true
    const server = this.server
    const done = server.stop(false)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), drainMs)))
    const result = await Promise.race([done.then(() => 'done' as const), timedOut])
    clearTimeout(timer)
    if (result === 'timeout') {
      this.opts.log?.('warn', 'drain timeout reached; closing remaining connections', { pending_requests: server.pendingRequests })
      await server.stop(true)
    }
    this.close()
  }

  /** Closes everything at once. */
  close(): void {
    this.stopping = true
    void this.server?.stop(true)
    this.server = undefined
    for (const p of this.pools.values()) p.close()
    for (const s of this.sources.values()) s.close()
  }
}

/** The settings a listener is opened with: when any changes, a reload opens a new listener. */
function listenerKey(config: ResolvedConfig): string {
  const s = config.server
  const own = s.listener === 'own' ? [s.clientHeaderTimeoutMs, s.clientBodyTimeoutMs, s.maxConnections, s.maxHeaderBytes] : []
  return JSON.stringify([s.listener, s.listen, s.tlsCertFile, s.tlsKeyFile, s.keepaliveTimeoutMs, s.maxBodyBytes, ...own])
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new ProxyError('E_TLS_FILES', `${key}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}; check the path and permissions`, { cause: err })
  }
}
