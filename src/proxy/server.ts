/**
 * The proxy listener: wires config, address sources, pools and the handler into a Bun.serve
 * server, and owns its lifecycle (start, graceful drain, close). The request path itself is
 * in handler.ts; WebSocket tunnels in websocket.ts.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'bun'
import { listen, type Listener, type RequestContext } from '../runtime/listener.ts'
import type { ResolvedConfig, ResolvedUpstream } from '../config/schema.ts'
import { parseCidr, cidrContains, type Cidr } from '../lib/cidr.ts'
import { ProxyError } from '../lib/errors.ts'
import type { AddressSource } from './address-source.ts'
import { ProxyHandler, type HandlerHooks } from './handler.ts'
import { requestIdFor } from './headers.ts'
import { checkRequest } from './request-checks.ts'
import { UpstreamPool } from './pool.ts'
import { errorResponse } from './status.ts'
import { isWebSocketUpgrade, tunnelHandlers, tunnelWebSocket, type TunnelData } from './websocket.ts'

export interface ProxyServerOptions {
  /** Builds the address source of one upstream (DNS resolver in production, static in tests). */
  sourceFor: (upstream: ResolvedUpstream) => AddressSource
  hooks?: HandlerHooks
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void
}

export class ProxyServer {
  readonly pools = new Map<string, UpstreamPool>()
  readonly sources = new Map<string, AddressSource>()
  private server: Listener | undefined
  private readonly handler: ProxyHandler
  private readonly trusted: Cidr[]
  private readonly cas = new Map<string, string | undefined>()
  private stopping = false
  private readonly keepaliveS: number

  constructor(
    readonly config: ResolvedConfig,
    private readonly opts: ProxyServerOptions,
  ) {
    this.trusted = config.server.trustedProxies.map((c) => parseCidr(c)!)
    this.keepaliveS = Math.min(255, Math.max(1, Math.ceil(config.server.keepaliveTimeoutMs / 1000)))
    for (const u of Object.values(config.upstreams)) {
      const ca = u.caFile ? readPem(u.caFile, `upstream.${u.name}.ca_file`) : undefined
      this.cas.set(u.name, ca)
      const source = opts.sourceFor(u)
      this.sources.set(u.name, source)
      this.pools.set(u.name, new UpstreamPool(u, source, { ca, log: opts.log }))
    }
    this.handler = new ProxyHandler(config, this.pools, this.trusted, opts.hooks)
  }

  /** Starts the address sources and the listener. Throws E_LISTEN when the port is taken. */
  start(): this {
    for (const s of this.sources.values()) s.start()
    const cfg = this.config.server
    const tls = cfg.tlsCertFile && cfg.tlsKeyFile ? { cert: readPem(cfg.tlsCertFile, 'server.tls_cert'), key: readPem(cfg.tlsKeyFile, 'server.tls_key') } : undefined
    const clientTls = tls !== undefined
    // Bun's listener idle timer (whole seconds, at most 255) is the keep-alive timeout. Each
    // proxied request turns it off for its own duration (a silent stream or a slow upstream must
    // not be cut by it; the upstream idle_timeout governs those) and restores it at the end.
    const idleTimeoutS = this.keepaliveS
    try {
      this.server = listen<TunnelData>({
        hostname: cfg.listen.host,
        port: cfg.listen.port,
        tls,
        idleTimeoutS,
        maxRequestBodySize: cfg.maxBodyBytes > 0 ? cfg.maxBodyBytes : Number.MAX_SAFE_INTEGER,
        fetch: (req, ctx) => this.fetch(req, ctx, clientTls),
        websocket: tunnelHandlers,
        onError: (err) => this.opts.log?.('error', 'listener error', { error: String(err) }),
      })
    } catch (err) {
      for (const s of this.sources.values()) s.close()
      throw new ProxyError('E_LISTEN', `cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${(err as Error).message}; pick another --listen address or stop what uses it`, { cause: err })
    }
    return this
  }

  get pendingRequests(): number {
    return this.server?.pendingRequests ?? 0
  }

  get port(): number {
    return this.server?.port ?? 0
  }

  get url(): string {
    const s = this.server!
    return `${this.config.server.tlsCertFile ? 'https' : 'http'}://${s.hostname.includes(':') ? `[${s.hostname}]` : s.hostname}:${s.port}`
  }

  private async fetch(req: Request, ctx: RequestContext, clientTls: boolean): Promise<Response | undefined> {
    const ip = ctx.ip
    if (this.stopping) return errorResponse(503, 'proxy is shutting down', requestIdFor(req.headers.get('x-request-id')), [['connection', 'close']])
    const rejected = checkRequest(req)
    if (rejected) {
      const extra: [string, string][] = rejected.status === 405 ? [['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']] : [['connection', 'close']]
      this.opts.log?.('info', 'request rejected', { client: ip, status: rejected.status, reason: rejected.reason })
      return errorResponse(rejected.status, rejected.reason, requestIdFor(null), extra)
    }
    if (isWebSocketUpgrade(req) && ctx.bunServer) {
      const url = req.url
      const pathStart = url.indexOf('/', url.indexOf('//') + 2)
      const target = pathStart < 0 ? '/' : url.slice(pathStart)
      const q = target.indexOf('?')
      const pool = this.handler.route(hostOnly(req.headers.get('host') ?? ''), q < 0 ? target : target.slice(0, q))
      return tunnelWebSocket(req, {
        pool,
        server: ctx.bunServer as Server<TunnelData>,
        clientIp: ip,
        clientTls,
        requestId: requestIdFor(req.headers.get('x-request-id')),
        target,
        trustedPeer: this.trusted.some((c) => cidrContains(c, ip)),
        ca: this.cas.get(pool.upstream.name),
        openTimeoutMs: pool.upstream.connectTimeoutMs + pool.upstream.headerTimeoutMs,
      })
    }
    ctx.setIdleTimeout(0)
    return this.handler.handle(req, {
      ip,
      tls: clientTls,
      onDone: () => {
        try {
          ctx.setIdleTimeout(this.keepaliveS)
        } catch {
          // the client connection is already gone
        }
      },
    })
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

function hostOnly(host: string): string {
  const i = host.lastIndexOf(':')
  return (i > 0 && !host.endsWith(']') ? host.slice(0, i) : host).toLowerCase()
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new ProxyError('E_TLS_FILES', `${key}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}; check the path and permissions`, { cause: err })
  }
}
