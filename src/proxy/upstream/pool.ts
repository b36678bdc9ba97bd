/**
 * Connection pooling for one upstream: keeps the per-address states in step with the address
 * source, picks an address (picker.ts), hands out keep-alive connections (LIFO idle lists, age
 * and idle limits, an optional per-address cap) or dials new ones, and applies the ejection
 * rules of address-state.ts when an attempt reports back. Its constructor starts nothing:
 * start() subscribes to the source, starts the idle sweep and pre-warms; close() undoes it.
 * The request path calls pick / takeIdle / acquire and never awaits DNS. Ejections, idle times
 * and connection ages are on the monotonic clock; the wall clock only shows first_seen.
 */
import type { ResolvedUpstream } from '../../config/schema.ts'
import { heldClocks, type Clocks } from '../../lib/clock.ts'
import type { LogFn } from '../../lib/logger.ts'
import { OUT_OF_DESCRIPTORS_HINT } from '../../runtime/dial-errors.ts'
import { dial as defaultDial, type DialOptions, type Conn } from '../../runtime/socket.ts'
import { TlsSessionCache } from '../../runtime/tls-sessions.ts'
import { RequestFailure } from '../errors.ts'
import type { Address, AddressSource } from './address-source.ts'
import { addressStats, isHealthy, newAddressState, recordFailure, recordSuccess, type AddressState } from './address-state.ts'
import { Http1Connection } from './connection.ts'
import { countedUntilClose, toRequestFailure } from './dialled.ts'
import { pickAddress } from './picker.ts'
import { hostPort } from '../../lib/net.ts'

export interface PoolOptions {
  dial?: (opts: DialOptions) => Promise<Conn>
  /** Monotonic for every duration, wall only for first_seen (default: the process's, held per socket event). */
  clock?: Clocks
  random?: () => number
  /** PEM CA bundle text for https upstreams (read once at start). */
  ca?: string
  log?: LogFn
}

export interface AcquiredConnection {
  connection: Http1Connection
  /** True when the connection was reused from the idle pool. */
  reused: boolean
  /** ms spent opening a new connection (TCP + TLS); undefined when reused. */
  connectMs: number | undefined
}

const SWEEP_INTERVAL_MS = 1000
/** Connects that fail for lack of file descriptors come in bursts: one log line per this long at most. */
const NO_FDS_LOG_EVERY_MS = 10_000

export class UpstreamPool {
  readonly addresses = new Map<string, AddressState>()
  /** The same states as a list, for the pick of every request (no iterator made). */
  private states: AddressState[] = []
  readonly dialFn: (opts: DialOptions) => Promise<Conn> // the server's has the loop guard (self-address.ts); its health checker dials with it too
  /** TLS sessions of this upstream's addresses, offered again on new connections (runtime/tls-sessions.ts). */
  readonly tlsSessions = new TlsSessionCache()
  private readonly clock: Clocks
  private readonly random: () => number
  private sweeper: ReturnType<typeof setInterval> | undefined
  private unsubscribe: (() => void) | undefined
  /** Requests waiting for a rescue after a connect failure (waitForRescue). */
  private rescueWaiters: (() => void)[] = []
  private closed = false
  /** Connections opened over the pool's life (for metrics and the churn check). */
  connectsTotal = 0
  /** New connections whose TLS handshake resumed a kept session. */
  tlsResumedTotal = 0
  /** When the last out-of-descriptors line was logged, and the failed connects since. */
  private noFdsLoggedAtMonoMs = -Infinity
  private noFdsFailures = 0

  constructor(
    readonly upstream: ResolvedUpstream,
    readonly source: AddressSource,
    private readonly opts: PoolOptions = {},
  ) {
    this.dialFn = opts.dial ?? defaultDial
    this.clock = opts.clock ?? heldClocks
    this.random = opts.random ?? Math.random
  }

  /** Follows the address source, sweeps idle connections, and pre-warms. Idempotent. */
  start(): this {
    if (this.unsubscribe || this.closed) return this
    for (const a of this.source.snapshot().addresses) this.addAddress(a)
    this.unsubscribe = this.source.onChange((change) => {
      for (const a of change.added) this.addAddress(a)
      for (const a of change.removed) this.removeAddress(a.address)
      if (change.added.length > 0) this.wakeRescue()
    })
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS)
    ;(this.sweeper as { unref?: () => void }).unref?.()
    return this
  }

  private addAddress(a: Address): void {
    const existing = this.addresses.get(a.address)
    if (existing) {
      existing.removed = false
      return
    }
    const state = newAddressState(a, this.upstream.port, this.clock.monoMs())
    this.addresses.set(a.address, state)
    this.states.push(state)
    for (let i = 0; i < this.upstream.prewarmConnections; i++) void this.prewarm(state)
  }

  private removeAddress(address: string): void {
    const state = this.addresses.get(address)
    if (!state) return
    state.removed = true
    for (const wake of state.waiters.splice(0)) wake(undefined) // those waiting for a slot go elsewhere now
    // Idle connections to a removed address close now; busy ones finish their exchange.
    for (const c of state.idle.splice(0)) {
      c.destroy()
      state.open--
    }
    this.forgetIfDrained(state)
  }

  private forgetIfDrained(state: AddressState): void {
    if (!state.removed || state.open !== 0 || state.inFlight !== 0) return
    this.addresses.delete(state.address)
    this.states = this.states.filter((s) => s !== state)
  }

  /**
   * After a connect failure left nothing healthy to try: waits (at most `timeoutMs`) for what can
   * rescue the request: an address added by DNS, the re-resolve that the failure asked for (or a
   * TTL refresh) finishing, or the earliest ejection of an address not in `exclude` (those the
   * request tried) ending. Resolves at once when nothing of the kind is coming.
   */
  waitForRescue(timeoutMs: number, exclude?: ReadonlySet<string>): Promise<void> {
    if (timeoutMs <= 0 || this.closed) return Promise.resolve()
    const now = this.clock.monoMs()
    let ejectionEndsInMs = Infinity
    for (const s of this.addresses.values()) if (!s.removed && !exclude?.has(s.address) && s.ejectedUntilMonoMs > now) ejectionEndsInMs = Math.min(ejectionEndsInMs, s.ejectedUntilMonoMs - now)
    const refresh = this.source.nextRefresh?.(timeoutMs)
    if (!refresh && ejectionEndsInMs > timeoutMs) return Promise.resolve()
    return new Promise<void>((resolve) => {
      let done = false
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(timer)
        const i = this.rescueWaiters.indexOf(finish)
        if (i >= 0) this.rescueWaiters.splice(i, 1)
        resolve()
      }
      const timer = setTimeout(finish, Math.min(timeoutMs, ejectionEndsInMs))
      this.rescueWaiters.push(finish)
      refresh?.then(finish, finish)
    })
  }

  private wakeRescue(): void {
    for (const w of this.rescueWaiters.splice(0)) w()
  }

  /** Whether `state` takes traffic now. */
  takesTraffic(state: AddressState): boolean {
    return isHealthy(state, this.clock.monoMs())
  }

  /** Picks an address for a new request, skipping `exclude` (see picker.ts). */
  pick(exclude?: ReadonlySet<string>): AddressState | undefined {
    return pickAddress(this.states, this.clock.monoMs(), this.random, exclude)
  }

  /** The fast path: an idle pooled connection to `state`, taken synchronously, or undefined (then call acquire); counted in flight. */
  takeIdle(state: AddressState, probe = false): AcquiredConnection | undefined {
    const c = this.takeIdleConnection(state, probe)
    return c && { connection: c, reused: true, connectMs: undefined }
  }

  /**
   * takeIdle's connection itself (the first attempt's path: nothing made for it). With `probe`
   * (a request that may not be replayed), one whose upstream has closed it, as far as the kernel
   * knows, is not taken (socket-poll.ts): its close handler has not run yet.
   */
  takeIdleConnection(state: AddressState, probe = false): Http1Connection | undefined {
    const c = this.popUsableIdle(state, probe)
    if (!c) return undefined
    state.inFlight++
    state.requests++
    return c
  }

  /** Pops the newest idle connection still open and young enough; closes stale ones on the way. */
  private popUsableIdle(state: AddressState, probe: boolean): Http1Connection | undefined {
    const maxAge = this.upstream.maxConnectionAgeMs
    const now = this.clock.monoMs()
    while (state.idle.length > 0) {
      const c = state.idle.pop()!
      if (!c.closed && (maxAge === 0 || now - c.conn.createdAtMonoMs < maxAge) && now - c.idleSinceMonoMs < c.idleLimitMs(this.upstream.poolIdleTimeoutMs) && !(probe && c.conn.peerHasNews?.())) return c
      c.destroy()
      state.open--
    }
    return undefined
  }

  /** Gets a connection to `state`: an idle one, or a new one (always, when `fresh`). Counts the request as in flight. */
  async acquire(state: AddressState, fresh = false, probe = false): Promise<AcquiredConnection> {
    state.inFlight++
    state.requests++
    try {
      const max = this.upstream.maxConnsPerAddress
      for (;;) {
        const idle = fresh ? undefined : this.popUsableIdle(state, probe)
        if (idle) return { connection: idle, reused: true, connectMs: undefined }
        if (max === 0 || state.open < max) break
        // At the per-address limit: wait for a connection handed over by a finished exchange,
        // or for one to close.
        const handed = await this.waitForSlot(state)
        if (handed) return { connection: handed, reused: true, connectMs: undefined }
        // DNS removed it meanwhile: no new connection to it (nothing was sent; the attempt loop tries another).
        if (state.removed) throw new RequestFailure('NO_ADDRESS', 'connect', `${state.label} left the DNS answer while the request waited for a connection to it`, { address: state.address })
      }
      const t0 = performance.now()
      const connection = await this.connect(state)
      return { connection, reused: false, connectMs: performance.now() - t0 }
    } catch (err) {
      state.inFlight--
      this.forgetIfDrained(state)
      throw err
    }
  }

  private waitForSlot(state: AddressState): Promise<Http1Connection | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = state.waiters.indexOf(wake)
        if (i >= 0) state.waiters.splice(i, 1)
        reject(new RequestFailure('POOL_TIMEOUT', 'connect', `no free connection to ${state.label} within ${this.upstream.connectTimeoutMs}ms (max_conns_per_address=${this.upstream.maxConnsPerAddress})`, { address: state.address }))
      }, this.upstream.connectTimeoutMs)
      const wake = (handed: Http1Connection | undefined) => {
        clearTimeout(timer)
        resolve(handed)
      }
      state.waiters.push(wake)
    })
  }

  /** How to reach one address: its IP, the upstream port, and the TLS name and trust. */
  dialOptions(state: AddressState): DialOptions {
    const u = this.upstream
    return {
      address: state.address,
      port: u.port,
      connectTimeoutMs: u.connectTimeoutMs,
      tls: u.scheme === 'https' ? { serverName: u.tlsServerName, ca: this.opts.ca, rejectUnauthorized: !u.insecure, sessions: this.tlsSessions } : undefined,
    }
  }

  /**
   * A new connection to `state` that the pool does not keep (an upgrade tunnel owns it), open
   * among the address's until it closes (max_conns_per_address). At the limit an idle one makes
   * room; with none the upgrade does not wait (nginx's max_conns passes it on too): POOL_TIMEOUT,
   * not the address's failure. A failed dial rejects as any connect failure does.
   */
  async dialDetached(state: AddressState): Promise<Conn> {
    const max = this.upstream.maxConnsPerAddress
    if (max > 0 && state.open >= max) {
      const idle = this.popUsableIdle(state, false)
      if (idle) {
        idle.destroy()
        state.open--
      }
    }
    if (max > 0 && state.open >= max) throw new RequestFailure('POOL_TIMEOUT', 'connect', `all ${max} connections to ${state.label} are in use (max_conns_per_address); an upgrade does not wait for one`, { address: state.address })
    const conn = await this.connectRaw(state)
    return countedUntilClose(conn, () => void (state.open--, this.wakeWaiter(state), this.forgetIfDrained(state)))
  }

  private async connect(state: AddressState): Promise<Http1Connection> {
    const conn = await this.connectRaw(state)
    return new Http1Connection(conn, (c, reusable) => this.release(state, c, reusable))
  }

  /** A dial to `state`, counted open from the start (a failure gives the slot back to a waiter); counted opened once it is (not a refused one). */
  private async connectRaw(state: AddressState): Promise<Conn> {
    state.open++
    let conn: Conn
    try {
      conn = await this.dialFn(this.dialOptions(state))
    } catch (err) {
      state.open--
      this.wakeWaiter(state)
      throw this.dialFailed(err, state)
    }
    this.connectsTotal++
    state.connectsOpened++
    if (conn.timings.tlsResumed) this.tlsResumedTotal++
    return conn
  }

  /**
   * A failed dial as a RequestFailure. One for lack of file descriptors is the proxy's, not the
   * address's (the attempt loop does not count it: isAddressFailure), and says so in the log,
   * with what to do: the operator must see why requests fail while the upstream is up.
   */
  private dialFailed(err: unknown, state: AddressState): RequestFailure {
    const failure = toRequestFailure(err, state)
    if (failure.code !== 'NO_FILE_DESCRIPTORS') return failure
    this.noFdsFailures++
    const now = this.clock.monoMs()
    if (now - this.noFdsLoggedAtMonoMs < NO_FDS_LOG_EVERY_MS) return failure
    this.noFdsLoggedAtMonoMs = now
    this.opts.log?.('error', 'proxy is out of file descriptors: upstream connects fail in the proxy, not at the upstream, whose addresses stay in rotation', { upstream: this.upstream.name, address: state.label, failed_connects: this.noFdsFailures, fix: OUT_OF_DESCRIPTORS_HINT })
    this.noFdsFailures = 0
    return failure
  }

  private async prewarm(state: AddressState): Promise<void> {
    if (this.closed || state.removed) return
    try {
      const c = await this.connect(state)
      state.inFlight++
      this.release(state, c, true)
    } catch {
      // A failed pre-warm is not a request failure; the first real request will retry.
    }
  }

  /** Called once per exchange (or when an idle connection closes). */
  private release(state: AddressState, c: Http1Connection, reusable: boolean): void {
    const idleIndex = state.idle.indexOf(c)
    if (idleIndex >= 0) {
      // An idle connection closed under us.
      state.idle.splice(idleIndex, 1)
      state.open--
      this.wakeWaiter(state)
      this.forgetIfDrained(state)
      return
    }
    state.inFlight = Math.max(0, state.inFlight - 1)
    const tooOld = this.upstream.maxConnectionAgeMs > 0 && this.clock.monoMs() - c.conn.createdAtMonoMs >= this.upstream.maxConnectionAgeMs
    const keep = reusable && !c.closed && !state.removed && !this.closed && !tooOld
    // A request waiting at max_conns_per_address gets the connection itself: put back as idle,
    // the next request of this same turn (a pipelined one, answered from this very exchange)
    // would take it before the waiter runs, and could keep doing so.
    const waiter = keep ? state.waiters.shift() : undefined
    if (waiter) {
      waiter(c)
      return
    }
    if (keep && state.idle.length < this.upstream.maxIdlePerAddress && c.idleLimitMs(this.upstream.poolIdleTimeoutMs) > 0) {
      c.idleSinceMonoMs = this.clock.monoMs()
      state.idle.push(c)
    } else {
      if (!c.closed) c.destroy()
      state.open--
    }
    this.wakeWaiter(state)
    this.forgetIfDrained(state)
  }

  /** A slot opened (a connection closed): the first waiter may dial. */
  private wakeWaiter(state: AddressState): void {
    state.waiters.shift()?.(undefined)
  }

  reportSuccess(state: AddressState): void {
    if (recordSuccess(state)) this.opts.log?.('info', 'upstream address recovered', { upstream: this.upstream.name, address: state.address })
  }

  /** A connect-level failure of this address: count it, maybe eject it, and ask DNS again. */
  reportFailure(state: AddressState, err: RequestFailure): void {
    const backoffMs = recordFailure(state, this.upstream, this.clock.monoMs())
    // The reason with the code: which check a certificate failed (expired, another name, an unknown CA) is
    // the operator's next step, as nginx's "upstream SSL certificate verify error: (10:certificate has expired)".
    if (backoffMs !== undefined) this.opts.log?.('warn', 'upstream address ejected', { upstream: this.upstream.name, address: state.address, for_ms: backoffMs, error: err.code, detail: err.message })
    this.source.refreshNow(`connect to ${state.address} failed: ${err.code}`)
  }

  /** Closes idle connections past pool_idle_timeout or max_connection_age. */
  private sweep(): void {
    const now = this.clock.monoMs()
    const u = this.upstream
    for (const state of this.addresses.values()) {
      if (state.idle.length === 0) continue
      const keep: Http1Connection[] = []
      for (const c of state.idle) {
        const idleTooLong = now - c.idleSinceMonoMs >= c.idleLimitMs(u.poolIdleTimeoutMs)
        const tooOld = u.maxConnectionAgeMs > 0 && now - c.conn.createdAtMonoMs >= u.maxConnectionAgeMs
        if (idleTooLong || tooOld || c.closed) {
          if (!c.closed) c.destroy()
          state.open--
        } else keep.push(c)
      }
      state.idle = keep
      this.forgetIfDrained(state)
    }
  }

  /** True when at least one address can take traffic now (for /readyz). */
  hasHealthyAddress(): boolean {
    const now = this.clock.monoMs()
    for (const s of this.addresses.values()) if (isHealthy(s, now)) return true
    return false
  }

  stats() {
    const monoMs = this.clock.monoMs()
    const wallMs = this.clock.wallMs()
    return [...this.addresses.values()].map((s) => addressStats(s, monoMs, wallMs))
  }

  close(): void {
    this.closed = true
    clearInterval(this.sweeper)
    this.unsubscribe?.()
    this.wakeRescue()
    for (const s of this.addresses.values()) {
      for (const c of s.idle.splice(0)) {
        c.destroy()
        s.open--
      }
    }
  }
}

export type { AddressState }
