/**
 * The proxy server's lifecycle: builds one generation from a config (address sources, pools,
 * health checkers, the request path of handler.ts), opens the client side (the own HTTP/1.1
 * listener on Bun, the runtime front on Deno), reloads a new generation atomically, drains, and
 * closes. It serves admin a read-only view (observe/view.ts). The request path itself is
 * handler.ts; the client side is downstream/; the origin side is upstream/.
 */
import type { ResolvedConfig, ResolvedUpstream } from '../config/schema.ts'
import { parseCidr } from '../lib/cidr.ts'
import { ProxyError } from '../lib/errors.ts'
import { listenError } from '../lib/listen-error.ts'
import type { LogFn } from '../lib/logger.ts'
import { hostPort } from '../lib/net.ts'
import { isBun } from '../runtime/detect.ts'
import type { Listener } from '../runtime/listener.ts'
import { AddressLocks, canSharePort, migratesQueuedConnections } from '../runtime/shared-port.ts'
import { readCaBundle, validityProblem, type TlsPair } from '../runtime/tls-files.ts'
import { http1Settings, listenerTls, settingsKey, socketKey } from './listener-config.ts'
import { Admission } from './downstream/admission.ts'
import { listenHttp1, RELOAD_IDLE_GRACE_MS, type Http1Listener } from './downstream/http1-listener.ts'
import { listenRuntimeFront } from './downstream/runtime-front.ts'
import { RetiredListeners } from './retired-listeners.ts'
import { ProxyHandler, type HandlerHooks } from './handler.ts'
import type { ProxyView, UpstreamView } from './observe/view.ts'
import type { AddressSource } from './upstream/address-source.ts'
import { ActiveHealthChecker } from './upstream/health.ts'
import { UpstreamPool } from './upstream/pool.ts'
import { listenedAt, loopGuardedDial } from './upstream/self-address.ts'
import { firstAnswerWaitMs } from './upstream/resolver.ts'

export interface ProxyServerOptions {
  /** Builds the address source of one upstream (DNS resolver in production, static in tests). */
  sourceFor: (upstream: ResolvedUpstream) => AddressSource
  /** Share the listen port with other worker processes (SO_REUSEPORT). */
  reusePort?: boolean
  hooks?: Pick<HandlerHooks, 'onRecord' | 'cache'>
  log?: LogFn
  /** Automatic HTTPS: the certificate to present, read per client connection (own listener only); undefined: none yet (a TLS alert). */
  dynamicTls?: () => { cert: string; key: string } | undefined
}

/** The origin side of one upstream: where its addresses come from, its pool and its health checks. */
interface UpstreamParts {
  source: AddressSource
  pool: UpstreamPool
  health: ActiveHealthChecker
  /** The ca_file's contents the pool verifies with (undefined: the system's roots). */
  ca: string | undefined
}

/** The parts of a config that one generation of the proxy is built from; swapped whole on reload. */
interface Generation {
  config: ResolvedConfig
  handler: ProxyHandler
  upstreams: Map<string, UpstreamParts>
}

export class ProxyServer implements ProxyView {
  private server: (Listener & Partial<Pick<Http1Listener, 'update'>>) | undefined
  /** The certificate and key the listener was opened with (a reload compares the files' contents). */
  private serverTls: TlsPair | undefined
  private gen: Generation
  private started = false
  /** The hint about net.ipv4.tcp_migrate_req was logged (once a process). */
  private migrateHinted = false
  /** One process sharing its port: the lock on the address it listens on, among proxies (runtime/shared-port.ts). */
  private readonly locks = new AddressLocks()
  /** Listeners a reload replaced, finishing their connections (counted and drained with the current one). */
  private readonly retired = new RetiredListeners()
  private readonly admission: Admission

  constructor(
    config: ResolvedConfig,
    private readonly opts: ProxyServerOptions,
  ) {
    this.admission = new Admission({ maxConcurrentRequests: () => this.gen.config.server.maxConcurrentRequests, pendingRequests: () => this.pendingRequests }, opts.log)
    this.gen = this.build(config, new Map())
  }

  get config(): ResolvedConfig {
    return this.gen.config
  }

  /** Requests answered by the proxy itself without going upstream, by reason; HTTP/2 connections it ended with an error, by code (for /metrics). */
  get refused(): Readonly<Record<string, number>> { return this.admission.refused }
  get http2ConnectionErrors(): Readonly<Record<string, number>> { return this.admission.http2Errors }

  /** Builds a generation for `config`, reusing the origin side of upstreams whose settings did not change (warm connections and DNS state survive a reload). Starts nothing. */
  private build(config: ResolvedConfig, old: Map<string, UpstreamParts>): Generation {
    const upstreams = new Map<string, UpstreamParts>()
    for (const u of Object.values(config.upstreams)) {
      // Read at every reload, as tls_cert is: a CA bundle changed at the same path (a CA added for
      // a renewed origin certificate, or one taken out) is a new pool, with no TLS session kept
      // under the old trust (a resumed handshake does not check the certificate again).
      const ca = u.caFile ? readCaBundle(u.caFile, config.fileKeys?.[`upstream.${u.name}.ca_file`] ?? `upstream.${u.name}.ca_file`) : undefined
      const prev = old.get(u.name)
      if (prev && prev.ca === ca && JSON.stringify(prev.pool.upstream) === JSON.stringify(u)) {
        upstreams.set(u.name, prev)
        continue
      }
      // Settings of the pool changed, not of the name's resolution: the new pool takes the old
      // resolver, with its addresses and DNS state, so that it serves at once and a DNS outage at
      // the reload still has the last good addresses (a fresh resolver answered 503 until DNS did).
      const source = prev && sourceKey(prev.pool.upstream) === sourceKey(u) ? prev.source : this.opts.sourceFor(u)
      const pool = new UpstreamPool(u, source, { ca, log: this.opts.log, dial: loopGuardedDial(() => ({ host: this.config.server.listen.host, port: this.port }), u.name, this.opts.log) })
      // The upstream's counters go on from the parts it replaces: a counter never goes down but at a restart (Prometheus).
      if (prev) {
        pool.connectsTotal = prev.pool.connectsTotal
        pool.tlsResumedTotal = prev.pool.tlsResumedTotal
        // A new resolver: its counts, and for the same name its last good addresses until its first answer (a DNS outage at the reload keeps them).
        if (source !== prev.source) source.takeOver?.(prev.source)
      }
      upstreams.set(u.name, { source, pool, health: new ActiveHealthChecker(pool, { log: this.opts.log, dial: pool.dialFn }), ca })
    }
    const pools = new Map([...upstreams].map(([name, p]) => [name, p.pool]))
    const trusted = config.server.trustedProxies.map((c) => parseCidr(c)!)
    const handler = new ProxyHandler(config, pools, trusted, {
      onRecord: this.opts.hooks?.onRecord,
      cache: this.opts.hooks?.cache,
      admit: (client) => this.admission.admit(client.ip),
      cutting: () => this.admission.cutting,
      onBodyStall: (ip, detail) => this.admission.count('CLIENT_BODY_TIMEOUT', detail, ip),
      onError: (err) => this.opts.log?.('error', 'request path failed', { error: String(err) }),
    })
    return { config, handler, upstreams }
  }

  private startParts(parts: Iterable<UpstreamParts>): void {
    for (const p of parts) {
      p.source.start()
      p.pool.start()
      p.health.start()
    }
  }

  /** Closes an upstream's parts; its address source only when none of `live` (the generation kept) still uses it. */
  private closeParts(p: UpstreamParts, live: Iterable<UpstreamParts> = []): void {
    p.health.close()
    p.pool.close()
    for (const q of live) if (q.source === p.source) return
    p.source.close()
  }

  /**
   * Starts the origin side, waits up to resolve_timeout for each upstream's first DNS answer (as
   * nginx resolves before it listens), then opens the listener. When DNS is down it starts anyway
   * and requests get 503 until an answer arrives. Throws E_LISTEN when the port is taken.
   */
  async startResolved(): Promise<this> {
    this.startParts(this.gen.upstreams.values())
    await this.firstAnswers(this.gen.upstreams, 'starting')
    return this.start()
  }

  /**
   * Starts the address sources of `parts` that have no address yet and waits for their first
   * answer, each at most its resolve_timeout per DNS server: at start, and for a reload's new
   * upstreams before they are put in service (they answered 503 until DNS did).
   */
  private async firstAnswers(parts: Iterable<[string, UpstreamParts]>, what: 'starting' | 'reloading'): Promise<void> {
    const waits: Promise<unknown>[] = []
    for (const [name, p] of parts) {
      p.source.start()
      if (p.source.snapshot().ready) continue
      const timeoutMs = firstAnswerWaitMs(p.pool.upstream)
      let timer: ReturnType<typeof setTimeout> | undefined
      const timedOut = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))
      waits.push(
        Promise.race([p.source.nextRefresh?.(timeoutMs) ?? Promise.resolve(), timedOut]).then(() => {
          clearTimeout(timer)
          const snap = p.source.snapshot()
          if (!snap.ready) this.opts.log?.('warn', `${what} before the first DNS answer; requests get 503 until one arrives`, { upstream: name, host: p.pool.upstream.host, error: snap.lastError?.code })
        }),
      )
    }
    await Promise.all(waits)
  }

  /** Starts the origin side (if not yet) and the listener, without waiting for DNS. Throws E_LISTEN when the port is taken. */
  start(): this {
    this.startParts(this.gen.upstreams.values())
    try {
      const tls = listenerTls(this.gen.config)
      this.server = this.openListener(this.gen.config, tls)
      this.serverTls = tls
    } catch (err) {
      for (const p of this.gen.upstreams.values()) this.closeParts(p)
      throw err
    }
    this.started = true
    this.warnValidity()
    return this
  }

  /** At start and at each reload: what is wrong with the served certificate's dates (expired, not yet valid, near its end), as a warning. */
  private warnValidity(): void {
    const problem = this.serverTls && validityProblem(this.serverTls, this.gen.config.server.tlsCertFile ?? '', this.gen.config.fileKeys?.['server.tls_cert'])
    if (problem) this.opts.log?.('warn', problem)
  }

  /** The certificate the listener serves from tls_cert, and when it expires (the admin's /status and /metrics). */
  get certificate(): { file: string; notAfterMs: number } | undefined {
    return this.serverTls?.notAfterMs === undefined ? undefined : { file: this.gen.config.server.tlsCertFile ?? '', notAfterMs: this.serverTls.notAfterMs }
  }

  /** Whether listeners for `config` take SO_REUSEPORT: with --workers, and in one process where a reload's new listener can open beside the old one (runtime/shared-port.ts). */
  private sharesPort(config: ResolvedConfig): boolean {
    return this.opts.reusePort === true || (canSharePort && config.server.listener !== 'runtime')
  }

  /** Opens the client side for `config`; `joinPort`: beside the current listener, on its port (a reload's). */
  private openListener(config: ResolvedConfig, tls: TlsPair | undefined, joinPort?: number): Listener {
    const cfg = listenedAt(config.server) // a listen name's address, for the loop guard, looked up as the bind looks it up
    const reusePort = this.sharesPort(config)
    const onError = (err: unknown) => this.opts.log?.('error', 'listener error', { error: String(err) })
    try {
      if (cfg.listener === 'runtime') {
        if (this.opts.dynamicTls) throw new ProxyError('E_LISTEN', 'automatic HTTPS (--acme) needs the own listener (Bun)')
        return listenRuntimeFront(config, { tls, reusePort, handler: () => this.gen.handler, onRefused: (code, detail, ip) => this.admission.count(code, detail, ip), onError })
      }
      if (!isBun) throw new ProxyError('E_LISTEN', 'server.listener = "own" needs the Bun runtime (Bun.listen); use listener = "auto" on Deno')
      const clientTls = tls !== undefined || this.opts.dynamicTls !== undefined
      return listenHttp1({
        hostname: cfg.listen.host,
        // One process sharing its port: the address claimed alone first (a port in use still fails to start).
        port: joinPort ?? (reusePort && !this.opts.reusePort ? this.locks.claim(cfg.listen.host, cfg.listen.port) : cfg.listen.port),
        tls,
        dynamicTls: this.opts.dynamicTls,
        reusePort,
        ...http1Settings(config),
        // The connection's own client record: nothing made per request.
        handle: (req, client, sink) => this.gen.handler.serve(req, client, sink),
        upgrade: (req, upgrade, client, conn, early) => this.gen.handler.upgrade(req, upgrade, { ip: client.ip, tls: clientTls, protocol: client.protocol }, conn, early),
        refuse: (code, detail, client, req, record, status, sinceMs) => {
          this.admission.count(code, detail, client.ip)
          return this.gen.handler.refusal(code, detail, { ip: client.ip, tls: clientTls, protocol: client.protocol }, req, record, status, sinceMs)
        },
        onQuietClose: (code, ip, detail) => this.admission.count(code, detail ?? 'no request within client_header_timeout', ip, false),
        onHttp2Error: (code, detail, ip) => this.admission.http2ConnectionError(code, detail, ip),
        otherConnections: () => this.retired.connections, // max_connections counts a replaced listener's too
        onError,
      })
    } catch (err) {
      if (err instanceof ProxyError) throw err
      throw listenError('proxy', cfg.listen.host, cfg.listen.port, err, undefined, config.fileKeys?.['server.listen'])
    }
  }

  /**
   * Applies a new config atomically: new requests use it at once; requests and tunnels in flight
   * finish on what they started with. Limits and timeouts change on the open listener (the own
   * one) in place. A new listen address, certificate (the files' contents: a renewed pair at the
   * same paths counts), or HTTP/2 on or off opens a new listener first, then the old one drains;
   * on the same address it opens beside the old one on its port (SO_REUSEPORT: --workers, or one
   * process on Linux, runtime/shared-port.ts); without it the old one must let go of the port first,
   * and if the new one then cannot open, the old config's is opened again. The certificate pair is
   * checked before anything is touched. Throws (and changes nothing) on failure.
   */
  async reload(next: ResolvedConfig): Promise<void> {
    const prev = this.gen
    let newListener: Listener | undefined
    let nextTls = this.serverTls
    let gen: Generation | undefined
    try {
      gen = this.build(next, prev.upstreams)
      if (this.started) {
        // A new upstream (a new name, or new resolver settings) goes into service with an address.
        await this.firstAnswers([...gen.upstreams].filter(([name, p]) => prev.upstreams.get(name)?.source !== p.source), 'reloading')
        // A drain begun meanwhile (SIGTERM after the SIGHUP) drops the reload: no listener opens mid-drain.
        if (this.admission.stopping) throw new ProxyError('E_INTERNAL', 'a drain began while the reload waited for DNS; nothing of it is applied')
        nextTls = listenerTls(next)
        const inPlace = this.server?.update !== undefined && next.server.listener === prev.config.server.listener
        // No listener at all (a reload whose new and old listeners both failed to open): open one.
        if (this.server === undefined || socketKey(prev.config, this.serverTls) !== socketKey(next, nextTls) || (!inPlace && settingsKey(prev.config) !== settingsKey(next))) {
          newListener = await this.reopen(prev.config, next, nextTls)
        }
      }
    } catch (err) {
      // Roll back: keep serving the previous generation; close what was built for the new one.
      for (const [name, p] of gen?.upstreams ?? []) if (prev.upstreams.get(name) !== p) this.closeParts(p, prev.upstreams.values())
      this.locks.settle(prev.config.server.listen.host, this.port) // a moved listener's new lock, let go
      throw err
    }
    this.gen = gen
    const fresh = [...gen.upstreams].filter(([name, p]) => prev.upstreams.get(name) !== p).map(([, p]) => p)
    this.startParts(fresh)
    // Retire what the new generation does not use: idle connections close now, busy ones when
    // their exchange ends (the pool is closed, so nothing returns to it).
    for (const [name, p] of prev.upstreams) if (gen.upstreams.get(name) !== p) this.closeParts(p, gen.upstreams.values())
    if (newListener) {
      const old = this.server
      this.server = newListener
      this.serverTls = nextTls
      if (old !== newListener) this.retired.add(old, RELOAD_IDLE_GRACE_MS)
      this.locks.settle(next.server.listen.host, this.port)
    } else if (this.server?.update && settingsKey(prev.config) !== settingsKey(next)) {
      this.server.update(http1Settings(next))
    }
    this.warnValidity()
  }

  /**
   * Opens the listener for `next`; see reload for the order. Returns the new listener (or the old
   * config's, reopened, never: that throws). A stopped listener may let go of its port a moment
   * later (Deno.serve's shutdown is asynchronous): the port is tried again for up to a second.
   */
  private async reopen(prev: ResolvedConfig, next: ResolvedConfig, nextTls: TlsPair | undefined): Promise<Listener> {
    const sameAddress = JSON.stringify(prev.server.listen) === JSON.stringify(next.server.listen)
    const old = this.server
    if (!sameAddress || old === undefined) return this.openListener(next, nextTls)
    if (this.sharesPort(prev) && this.sharesPort(next)) {
      if (!this.migrateHinted && migratesQueuedConnections() === false) {
        this.migrateHinted = true
        this.opts.log?.('info', "a new listening socket replaces the old one on its port: connections still in the old one's accept queue when it closes are reset; sysctl net.ipv4.tcp_migrate_req=1 has Linux hand them to the new one")
      }
      return this.openListener(next, nextTls, old.port)
    }
    this.retired.add(old, RELOAD_IDLE_GRACE_MS)
    const openWhenFree = async (config: ResolvedConfig, tls: TlsPair | undefined): Promise<Listener> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return this.openListener(config, tls)
        } catch (err) {
          if (attempt >= 50 || !/in use/i.test(String((err as Error).message))) throw err
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    }
    try {
      return await openWhenFree(next, nextTls)
    } catch (err) {
      try {
        this.server = await openWhenFree(prev, this.serverTls)
      } catch (again) {
        this.opts.log?.('error', 'the previous listener could not be opened again; nothing listens until a reload succeeds', { error: String(again) })
        this.server = undefined
      }
      throw err
    }
  }

  get pendingRequests(): number {
    return (this.server?.pendingRequests ?? 0) + this.retired.pendingRequests
  }

  /** Open upgrade tunnels (WebSocket and others); undefined when the listener cannot tell (the runtime front). */
  get openTunnels(): number | undefined {
    return this.server?.tunnels === undefined ? undefined : this.server.tunnels + this.retired.tunnels
  }

  /** Open client connections; undefined when the listener cannot tell (the runtime front). */
  get clientConnections(): number | undefined {
    return this.server?.connections === undefined ? undefined : this.server.connections + this.retired.connections
  }

  get port(): number {
    return this.server?.port ?? 0
  }

  get url(): string {
    const listen = this.config.server.listen
    const s = this.server ?? { hostname: listen.host, port: listen.port } // nothing listens: what it was told to
    return `${this.config.server.tlsCertFile || this.opts.dynamicTls ? 'https' : 'http'}://${hostPort(s.hostname, s.port)}`
  }

  /** Each upstream's pool and address source, read-only, for the admin endpoints. */
  upstreams(): UpstreamView[] {
    return [...this.gen.upstreams].map(([name, p]) => ({ name, pool: p.pool, source: p.source }))
  }

  /** One upstream's pool, by name (tests and the demo read its state). */
  pool(name: string): UpstreamPool | undefined {
    return this.gen.upstreams.get(name)?.pool
  }

  /** One upstream's address source, by name. */
  source(name: string): AddressSource | undefined {
    return this.gen.upstreams.get(name)?.source
  }

  /** True while a drain is under way (/readyz answers 503). */
  get draining(): boolean {
    return this.admission.stopping
  }

  /** Graceful stop: refuse new connections, let in-flight requests finish for up to drainMs, then close what is left; resolves when the listeners are closed. */
  async drain(drainMs: number): Promise<void> {
    if (!this.server) return
    this.admission.stopping = true
    const server = this.server
    this.opts.log?.('info', 'drain started', { pending_requests: this.pendingRequests, open_tunnels: this.openTunnels ?? 0, drain_timeout_ms: drainMs })
    const done = Promise.all([server.stop(false), this.retired.stop(false)]) // the listeners a reload replaced, still finishing, too
    this.locks.close() // nothing listens here now: a successor may take the address during the drain
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), drainMs)))
    const result = await Promise.race([done.then(() => 'done' as const), timedOut])
    clearTimeout(timer)
    if (result === 'timeout') {
      this.opts.log?.('warn', 'drain timeout reached; cutting what is left', { pending_requests: this.pendingRequests, open_tunnels: this.openTunnels ?? 0 })
      this.admission.cutting = true
      await Promise.all([server.stop(true), this.retired.stop(true)])
    }
    this.close()
  }

  /** Closes everything at once. */
  close(): void {
    this.admission.stopping = true
    void (this.server?.stop(true), this.retired.stop(true))
    this.server = undefined
    this.locks.close()
    for (const p of this.gen.upstreams.values()) this.closeParts(p)
  }
}

/** What an upstream's address source is made from: equal, a reload's new pool can take the old source. */
function sourceKey(u: ResolvedUpstream): string {
  return JSON.stringify([u.host, u.family, u.resolvers, u.resolveIntervalMs, u.resolveMinTtlMs, u.resolveMaxTtlMs, u.resolveTimeoutMs, u.staleGraceMs])
}
