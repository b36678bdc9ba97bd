/**
 * Upstream address discovery for one upstream: lookups, refresh timing (TTL-aware, clamped,
 * ahead of expiry with jitter), single-flight and rate-limited refreshes, and the stale policy
 * (keep the last good addresses through DNS failures for stale_grace). The request path only
 * reads `snapshot()`; health and picking live in pool.ts. Every duration here is on the monotonic
 * clock; the wall clock only turns marks into the times /status shows.
 */
import type { ResolvedUpstream } from '../../config/schema.ts'
import { monoNow, wallAtMs, wallNow, type Clocks } from '../../lib/clock.ts'
import type { LogFn } from '../../lib/logger.ts'
import { DnsError } from '../../dns/client.ts'
import type { Lookup, LookupResult } from '../../dns/lookup.ts'
import type { Address, AddressChange, AddressSnapshot, AddressSource } from './address-source.ts'

/** The clocks (monoMs for durations, wallMs for display) and the timers (monotonic themselves). */
export interface Clock extends Clocks {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const realClock: Clock = {
  monoMs: monoNow,
  wallMs: wallNow,
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    ;(t as { unref?: () => void }).unref?.()
    return t
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

export interface ResolverOptions {
  lookup: Lookup
  clock?: Clock
  /** Returns [0, 1); drives the jitter. */
  random?: () => number
  log?: LogFn
}

/** A refresh is scheduled at this share of the (clamped) TTL... */
export const REFRESH_AT_TTL_SHARE = 0.9
/** ...minus up to this share of the TTL as jitter, so many proxies do not ask in lockstep. */
export const JITTER_TTL_SHARE = 0.1
/** Failure-triggered refreshes start at most this often. */
export const REFRESH_NOW_MIN_INTERVAL_MS = 1000
/** Retry backoff after a failed lookup: 1 s doubling, capped. */
const RETRY_BASE_MS = 1000
const RETRY_MAX_MS = 30_000
/** The longest delay a timer takes (2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1

export interface ResolverStatus {
  host: string
  ready: boolean
  stale: boolean
  stale_since: string | undefined
  addresses: { address: string; family: 4 | 6; first_seen: string }[]
  answer_age_ms: number | undefined
  ttl_ms: number | undefined
  source: string | undefined
  next_refresh_in_ms: number | undefined
  last_error: { code: string; message: string; at: string } | undefined
  refreshes: Record<string, number>
  changes: number
}

/** Name servers glibc asks from resolv.conf (MAXNS), for the bound below when resolvers is unset. */
const SYSTEM_SERVERS = 3

/**
 * How long serve waits for an upstream's first answer before it listens: a lookup asks the
 * servers in turn, each for resolve_timeout over UDP and, after a truncated answer, as long again
 * over TCP. A lookup that fails sooner (DNS down) ends the wait sooner: this bounds a slow,
 * healthy one, so that its first requests are not answered 503 "has not resolved yet".
 */
export function firstAnswerWaitMs(upstream: Pick<ResolvedUpstream, 'resolveTimeoutMs' | 'resolvers'>): number {
  return upstream.resolveTimeoutMs * 2 * (upstream.resolvers.length || SYSTEM_SERVERS)
}

export class UpstreamResolver implements AddressSource {
  private readonly lookup: Lookup
  private readonly clock: Clock
  private readonly random: () => number
  private readonly log: LogFn | undefined
  private readonly listeners = new Set<(c: AddressChange) => void>()
  private snap: AddressSnapshot = { addresses: [], version: 0, stale: false, ready: false }
  private firstSeenMonoMs = new Map<string, number>()
  private inFlight: Promise<void> | undefined
  /** Callers waiting for the next refresh to finish (nextRefresh). */
  private refreshWaiters: (() => void)[] = []
  /** A connect failure asked for a re-resolve during a lookup: another follows it (refreshNow). */
  private again = false
  /** Waiting for that next lookup (nextRefresh while `again`). */
  private againWaiters: (() => void)[] = []
  private timer: unknown
  private timerAtMonoMs = 0
  private closed = false
  private lastAnswerMonoMs: number | undefined
  private ttlMs: number | undefined
  private source: string | undefined
  private staleSinceMonoMs: number | undefined
  private failures = 0
  private lastRefreshStartedMonoMs = Number.NEGATIVE_INFINITY
  private readonly refreshes: Record<string, number> = {}
  private changes = 0

  constructor(
    readonly upstream: Pick<ResolvedUpstream, 'host' | 'family' | 'resolveIntervalMs' | 'resolveMinTtlMs' | 'resolveMaxTtlMs' | 'resolveTimeoutMs' | 'staleGraceMs'> & { name?: string },
    opts: ResolverOptions,
  ) {
    this.lookup = opts.lookup
    this.clock = opts.clock ?? realClock
    this.random = opts.random ?? Math.random
    // Every line names its upstream, as the pool's do: two upstreams of one host name logged each
    // change twice, alike (until the eighteenth round of outside reviews).
    const log = opts.log
    const name = upstream.name
    this.log = log && name !== undefined ? (level, msg, fields) => log(level, msg, { upstream: name, ...fields }) : log
  }

  start(): void {
    if (this.closed || this.timer !== undefined || this.inFlight) return
    this.schedule(0)
  }

  snapshot(): AddressSnapshot {
    return this.snap
  }

  onChange(listener: (change: AddressChange) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * After a connect failure: re-resolve now, at most once per REFRESH_NOW_MIN_INTERVAL_MS. During
   * a lookup, once it ends: that lookup was asked before the failure and may answer with the address
   * that failed (a slow DNS server: an outside review saw 8 of 8 waiting requests get 502 so).
   */
  refreshNow(reason: string): void {
    if (this.closed) return
    if (this.inFlight) return void (this.again = true)
    const earliest = this.lastRefreshStartedMonoMs + REFRESH_NOW_MIN_INTERVAL_MS
    const now = this.clock.monoMs()
    this.log?.('debug', 'refresh requested', { host: this.upstream.host, reason })
    if (now >= earliest) this.schedule(0)
    else if (this.timer === undefined || this.timerAtMonoMs > earliest) this.schedule(earliest - now)
  }

  /**
   * The refresh in flight, or the next one when it is due within `withinMs` (a connect failure's
   * early re-resolve, or the TTL's): resolves when it has finished, whatever it found. Undefined
   * when none is coming that soon. The attempt loop waits on it after a connect failure.
   */
  nextRefresh(withinMs: number): Promise<void> | undefined {
    if (this.closed) return undefined
    if (this.again) return new Promise<void>((resolve) => this.againWaiters.push(resolve)) // the lookup after the one in flight
    if (this.inFlight) return this.inFlight
    if (this.timer === undefined || this.timerAtMonoMs - this.clock.monoMs() > withinMs) return undefined
    return new Promise<void>((resolve) => this.refreshWaiters.push(resolve))
  }

  /** Resolves true once an answer has arrived, false if none did within timeoutMs. */
  async whenReady(timeoutMs: number): Promise<boolean> {
    if (this.snap.ready) return true
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        off()
        resolve(this.snap.ready)
      }, timeoutMs)
      const off = this.onChange(() => {
        if (!this.snap.ready) return
        clearTimeout(t)
        off()
        resolve(true)
      })
    })
  }

  private schedule(ms: number): void {
    if (this.closed) return
    // A timer's delay is at most 2^31-1 ms (24.8 days); a longer one fires at once (Bun, Node),
    // which a long TTL under a large resolve_max_ttl made a query loop. Past it, a refresh then.
    ms = Math.min(ms, MAX_TIMER_MS)
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timerAtMonoMs = this.clock.monoMs() + ms
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      void this.refresh()
    }, ms)
  }

  /** One lookup at a time: a second caller waits for the one in flight. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.inFlight) return this.inFlight
    this.lastRefreshStartedMonoMs = this.clock.monoMs()
    this.inFlight = this.lookup(this.upstream.host, { family: this.upstream.family, timeoutMs: this.upstream.resolveTimeoutMs })
      .then(
        (result) => this.onAnswer(result),
        (err) => this.onFailure(err),
      )
      .finally(() => {
        this.inFlight = undefined
        for (const w of this.refreshWaiters.splice(0)) w()
        if (!this.again) return
        this.again = false
        this.refreshNow('a connect failure during the lookup')
        // Those waiting for the lookup after this one wait for the one just set off (close() lets all go).
        this.refreshWaiters.push(...this.againWaiters.splice(0))
      })
    return this.inFlight
  }

  private count(result: string): void {
    this.refreshes[result] = (this.refreshes[result] ?? 0) + 1
  }

  /** An answer's TTL as resolve_min_ttl and resolve_max_ttl bound it. */
  private clampedTtlMs(ttlMs: number): number {
    return Math.min(this.upstream.resolveMaxTtlMs, Math.max(this.upstream.resolveMinTtlMs, ttlMs))
  }

  /** The refresh delay for an answer: TTL clamped to [min, max], refreshed ahead of expiry with jitter. */
  nextRefreshMs(ttlMs: number | undefined): number {
    if (ttlMs === undefined) return this.upstream.resolveIntervalMs
    const clamped = this.clampedTtlMs(ttlMs)
    // At most once a second, as refreshNow: resolve_min_ttl = 0 and a TTL of 0 (dnsmasq's hosts, Consul) asked back to back (~660 a second).
    return Math.max(REFRESH_NOW_MIN_INTERVAL_MS, clamped * REFRESH_AT_TTL_SHARE - clamped * JITTER_TTL_SHARE * this.random())
  }

  private onAnswer(result: LookupResult): void {
    if (this.closed) return
    // One family's query failed while the other answered: where that family has last good
    // addresses, they stay in use, stale, as in any DNS failure (a published but unreachable
    // AAAA must not become the only address because the A query timed out), and the answering
    // family's addresses are taken: an A record that moved while the AAAA queries time out is
    // followed, not held at its old, perhaps dead, address for stale_grace.
    const failed = result.failedFamily
    if (failed !== undefined && this.snap.addresses.some((a) => a.family === failed.family)) {
      const graceOver = this.staleSinceMonoMs !== undefined && this.clock.monoMs() - this.staleSinceMonoMs >= this.upstream.staleGraceMs
      if (!graceOver) {
        if (result.addresses.length > 0) this.setAddresses([...result.addresses, ...this.snap.addresses.filter((a) => a.family === failed.family)], this.snap.stale, this.snap.lastError)
        return this.onFailure(failed.error)
      }
      // stale_grace is over for the family that keeps failing: its addresses go, and the other's
      // answer is taken (dropping everything would leave nothing while DNS answers for one).
      this.log?.('error', 'stale grace expired; dropping the last good addresses of the family that keeps failing', { host: this.upstream.host, family: failed.family === 4 ? 'A' : 'AAAA' })
    }
    this.count('ok')
    const now = this.clock.monoMs()
    this.lastAnswerMonoMs = now
    this.ttlMs = result.ttlMs
    this.source = result.source
    this.failures = 0
    if (result.addresses.length === 0) {
      // A lookup that "succeeds" with nothing is treated as a failure (keeps the last good set).
      this.onFailure(new DnsError('NODATA', `${this.upstream.host}: empty answer`))
      return
    }
    if (this.staleSinceMonoMs !== undefined) {
      this.log?.('info', 'DNS answers again; stale episode over', { host: this.upstream.host, stale_for_ms: now - this.staleSinceMonoMs, source: result.source })
      this.staleSinceMonoMs = undefined
    }
    this.setAddresses(result.addresses, false, undefined)
    this.schedule(this.nextRefreshMs(result.ttlMs))
  }

  private onFailure(err: unknown): void {
    if (this.closed) return
    const code = err instanceof DnsError ? err.code : 'ERROR'
    const message = err instanceof Error ? err.message : String(err)
    this.count(code)
    const now = this.clock.monoMs()
    this.failures++
    const lastError = { code, message, atMonoMs: now }
    // Doubling from 1 s, never past the last answer's TTL as clamped to [resolve_min_ttl, resolve_max_ttl] (its raw TTL of 60 s kept a DNS that was back unasked for 30 s).
    const ttlCapMs = this.ttlMs !== undefined ? Math.max(RETRY_BASE_MS, this.clampedTtlMs(this.ttlMs)) : RETRY_MAX_MS
    const retryMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.failures - 1, 10), ttlCapMs)
    if (!this.snap.ready) {
      if (this.failures === 1) this.log?.('warn', 'upstream has not resolved yet; answering 503 until it does', { host: this.upstream.host, error: code, detail: message })
      this.snap = { ...this.snap, lastError }
      this.schedule(retryMs)
      return
    }
    if (this.staleSinceMonoMs === undefined) {
      this.staleSinceMonoMs = now
      this.log?.('warn', 'DNS failing; serving the last good addresses', { host: this.upstream.host, error: code, detail: message, addresses: this.snap.addresses.map((a) => a.address).join(','), stale_grace_ms: this.upstream.staleGraceMs })
    }
    if (this.snap.addresses.length > 0 && now - this.staleSinceMonoMs >= this.upstream.staleGraceMs) {
      this.log?.('error', 'stale grace expired; dropping the last good addresses', { host: this.upstream.host, stale_for_ms: now - this.staleSinceMonoMs })
      this.setAddresses([], true, lastError)
    } else {
      this.snap = { ...this.snap, stale: true, lastError }
    }
    this.schedule(retryMs)
  }

  private setAddresses(addresses: readonly Address[], stale: boolean, lastError: AddressSnapshot['lastError']): void {
    const before = new Map(this.snap.addresses.map((a) => [a.address, a]))
    const after = new Map(addresses.map((a) => [a.address, a]))
    const added = addresses.filter((a) => !before.has(a.address))
    const removed = this.snap.addresses.filter((a) => !after.has(a.address))
    const now = this.clock.monoMs()
    for (const a of added) this.firstSeenMonoMs.set(a.address, now)
    for (const a of removed) this.firstSeenMonoMs.delete(a.address)
    const changed = added.length > 0 || removed.length > 0
    this.snap = { addresses: changed ? addresses : this.snap.addresses, version: this.snap.version + (changed ? 1 : 0), stale, ready: true, lastError }
    if (!changed) return
    this.changes++
    if (this.snap.version > 1) this.log?.('info', 'upstream addresses changed', { host: this.upstream.host, added: added.map((a) => a.address).join(','), removed: removed.map((a) => a.address).join(',') })
    const change: AddressChange = { added, removed, snapshot: this.snap }
    for (const l of this.listeners) {
      try {
        l(change)
      } catch (err) {
        this.log?.('error', 'address change listener failed', { error: String(err) })
      }
    }
  }

  status(): Record<string, unknown> {
    const now = this.clock.monoMs()
    // Marks are monotonic; shown as the wall-clock time they were, by the wall clock of now.
    const shown = (markMonoMs: number) => new Date(wallAtMs(this.clock, markMonoMs)).toISOString()
    const lastError = this.snap.lastError
    const s: ResolverStatus = {
      host: this.upstream.host,
      ready: this.snap.ready,
      stale: this.snap.stale,
      stale_since: this.staleSinceMonoMs !== undefined ? shown(this.staleSinceMonoMs) : undefined,
      addresses: this.snap.addresses.map((a) => ({ ...a, first_seen: shown(this.firstSeenMonoMs.get(a.address) ?? now) })),
      answer_age_ms: this.lastAnswerMonoMs !== undefined ? now - this.lastAnswerMonoMs : undefined,
      ttl_ms: this.ttlMs,
      source: this.source,
      next_refresh_in_ms: this.timer !== undefined ? Math.max(0, this.timerAtMonoMs - now) : undefined,
      last_error: lastError ? { code: lastError.code, message: lastError.message, at: shown(lastError.atMonoMs) } : undefined,
      refreshes: { ...this.refreshes },
      changes: this.changes,
    }
    return s as unknown as Record<string, unknown>
  }

  takeOver(prev: AddressSource): void {
    for (const [result, n] of Object.entries(prev.metrics?.().refreshes ?? {})) this.refreshes[result] = (this.refreshes[result] ?? 0) + n
    if (!(prev instanceof UpstreamResolver) || prev.upstream.host !== this.upstream.host || this.snap.ready) return
    // Only the families this one asks for (a reload to family = "ipv4" drops the AAAA ones).
    const fam = this.upstream.family
    const addresses = prev.snap.addresses.filter((a) => fam === 'auto' || (fam === 'ipv4') === (a.family === 4))
    if (addresses.length === 0) return
    const now = this.clock.monoMs()
    for (const a of addresses) this.firstSeenMonoMs.set(a.address, prev.firstSeenMonoMs.get(a.address) ?? now)
    this.snap = { addresses, version: 1, stale: prev.snap.stale, ready: true, lastError: prev.snap.lastError }
    // A stale episode goes on (its grace counts from when it began); the last answer's age and source stay what they were.
    this.staleSinceMonoMs = prev.staleSinceMonoMs
    this.lastAnswerMonoMs = prev.lastAnswerMonoMs
    this.ttlMs = prev.ttlMs
    this.source = prev.source
  }

  metrics(): { answerAgeMs: number | undefined; refreshes: Record<string, number> } {
    return { answerAgeMs: this.lastAnswerMonoMs !== undefined ? this.clock.monoMs() - this.lastAnswerMonoMs : undefined, refreshes: { ...this.refreshes } }
  }

  close(): void {
    this.closed = true
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.listeners.clear()
    for (const w of [...this.refreshWaiters.splice(0), ...this.againWaiters.splice(0)]) w()
  }
}
