/**
 * The edge cache, as one phase of the request path (RFC 9111, shared cache). The request path
 * calls lookup() after it has the request (and its body); the returned exchange either holds
 * an answer (`hit`), or says which validators to add and takes the upstream's answer back
 * (`onReply`) or its failure (`onError`). Concurrent misses for one key wait for one upstream
 * request and share its answer as it streams (collapsed forwarding); a stale response within
 * stale-while-revalidate is served at once and refreshed in the background through the
 * forwarder the request path installs. A leader that ends without an answer the others can use
 * (a failure, an error status not stored) hands the lead on: one waiter goes upstream next and
 * the rest wait for it, each within its own collapse wait (nginx's proxy_cache_lock, whose
 * waiters retry the lock). Also: purge, status and metrics. Policy is in
 * policy.ts, storage in store.ts, the per-request logic in exchange.ts.
 */
import { heldClocks, type Clocks } from '../../lib/clock.ts'
import type { ProxyReply, ProxyRequest } from '../message.ts'
import { evaluateReuse, requestDirectives, staleIfErrorAllows } from './policy.ts'
import { CacheExchange } from './exchange.ts'
import type { CacheInternals, CacheResult, Fill, Flight, LookupContext } from './exchange-shapes.ts'
import { keyFromUrl, urlKeyOf } from './key.ts'
import { discardBody, hitStatus, onlyIfCachedReply } from './reply.ts'
import { CONDITIONAL_FIELDS, failsOriginPrecondition } from './revalidate.ts'
import { CacheStore, entryBytes, type CacheEntry } from './store.ts'
import type { FillBudget } from './tee.ts'
import { variantFlightKey, varyMatches } from './vary.ts'

export type { CacheExchange, CacheResult, LookupContext }

export interface EdgeCacheOptions {
  /** The store's budget in bytes (bodies, fields and bookkeeping). */
  maxBytes: number
  /** Larger responses stream through and are not stored. */
  maxObjectBytes: number
  /** stale-if-error for responses that do not say (0: off). */
  staleIfErrorMs: number
  /** Monotonic ms for ages, residence and deadlines, wall-clock ms for dates (held per socket event); tests pass fakes. */
  clocks?: Clocks
}

/** Sends a request through the rest of the request path (used for background refreshes). */
export type Forwarder = (req: ProxyRequest, client: unknown) => Promise<ProxyReply>

/** How long a key whose response was not storable stops collapsing concurrent requests. */
const UNCOLLAPSIBLE_MS = 5000
const MAX_UNCOLLAPSIBLE_KEYS = 10_000
/**
 * Most bytes of such keys held (each charged its length and an entry's cost): a key is a client's
 * target, up to max_header_size, and 10,000 of 15 KB held 150 MB outside max_size (an outside
 * review: RSS 50 -> 219 MiB with a 1 MiB cache storing nothing). Past it the list starts again:
 * those keys collapse once more, as any key does at first.
 */
const MAX_UNCOLLAPSIBLE_BYTES = 4 * 1024 * 1024
const UNCOLLAPSIBLE_ENTRY_BYTES = 64

/**
 * A collapsed request between its waits: what it forwards as, when its collapse wait ends (cache
 * monotonic clock; 0: spent), and whether the leader it waited for failed.
 */
export interface Waited {
  fwd: CacheExchange['fwd']
  untilMs: number
  leaderFailed: boolean
}

const RESULTS: readonly CacheResult[] = ['hit', 'stale', 'revalidated', 'collapsed', 'miss', 'bypass', 'refresh']

export class EdgeCache implements CacheInternals {
  readonly store: CacheStore
  readonly maxObjectBytes: number
  readonly staleIfErrorMs: number
  /** Installed by the request path: how a background refresh reaches the upstream. */
  forwarder: Forwarder | undefined
  readonly counts: Record<CacheResult, number> = { hit: 0, stale: 0, revalidated: 0, collapsed: 0, miss: 0, bypass: 0, refresh: 0 }
  stores = 0
  purged = 0
  /** Requests waiting now for another's upstream answer (collapsed forwarding). */
  waiting = 0
  /** Bodies being kept while they arrive may use as much memory as the store, and no more. */
  readonly fillBudget: FillBudget
  private readonly clocks: Clocks
  private readonly flights = new Map<string, Flight>()
  private readonly uncollapsible = new Map<string, number>()
  /** Every body kept while it arrives, collapsing or not (a no-cache request's is in no flight): purge and §4.4 reach them all. */
  private readonly filling = new Set<Fill>()
  /** What the keys in `uncollapsible` are charged (MAX_UNCOLLAPSIBLE_BYTES bounds it). */
  uncollapsibleBytes = 0
  /** Requests the cache itself sent (background refreshes): they revalidate, never hit. */
  private readonly background = new WeakSet<ProxyRequest>()
  /** Requests the cache sent again without validators after a 304 that matched nothing stored. */
  private readonly unconditional = new WeakSet<ProxyRequest>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()

  constructor(opts: EdgeCacheOptions) {
    this.store = new CacheStore(opts.maxBytes)
    this.maxObjectBytes = Math.min(opts.maxObjectBytes, opts.maxBytes)
    this.staleIfErrorMs = opts.staleIfErrorMs
    this.fillBudget = { keptBytes: 0, maxKeptBytes: opts.maxBytes }
    this.clocks = opts.clocks ?? heldClocks
  }

  now(): number {
    return this.clocks.monoMs()
  }

  wallNow(): number {
    return this.clocks.wallMs()
  }

  count(result: CacheResult): void {
    this.counts[result]++
  }

  /** The cache phase for one request: an answer from the cache, or what to forward. */
  lookup(req: ProxyRequest, ctx: LookupContext, waited?: Waited): CacheExchange | Promise<CacheExchange> {
    const rd = requestDirectives(req.headers)
    const x = new CacheExchange(this, req, ctx, rd)
    if (!ctx.enabled) return x.bypass('bypass')
    if (req.method !== 'GET' && req.method !== 'HEAD') return x.bypass('method')
    const nowMs = this.now()
    const isBackground = this.background.has(req)
    x.background = isBackground
    const isRetry = this.unconditional.has(req)
    x.noValidators = isRetry
    const variants = this.store.variants(ctx.key)
    let selected: CacheEntry | undefined
    for (const e of variants) {
      if (varyMatches(e.vary, req.headers)) {
        selected = e
        break
      }
    }
    // A client's If-Match or If-Unmodified-Since that the stored response fails goes to the origin as it came.
    if (selected && failsOriginPrecondition(req.headers, selected.status, selected.headers)) return x.bypass('bypass')
    if (selected) {
      x.candidate = selected
      x.fwd = 'stale'
      if (!isBackground && !isRetry) {
        const v = evaluateReuse(selected, rd, nowMs)
        const ttlS = Math.floor(v.ttlMs / 1000)
        // After waiting for another request's answer, it is that answer: a collapsed request, not a hit.
        if (v.reuse === 'fresh' && waited) return x.serve(selected, v.ageMs, 'collapsed', { fwd: waited.fwd, collapsed: true })
        if (v.reuse === 'fresh') return x.serve(selected, v.ageMs, 'hit', hitStatus(ttlS))
        // The leader it waited for just failed: a stale response stale-if-error allows answers now
        // (RFC 5861 §4), rather than this request trying the failing origin in its turn.
        if (waited?.leaderFailed && staleIfErrorAllows(selected, rd, nowMs, this.staleIfErrorMs)) return x.serve(selected, v.ageMs, 'stale', { fwd: waited.fwd, collapsed: true, ttlS, detail: 'stale-if-error' })
        if (v.reuse === 'stale-ok') return x.serve(selected, v.ageMs, 'stale', { hit: true, ttlS, detail: 'max-stale' })
        if (v.reuse === 'stale-while-revalidate') {
          this.refresh(selected, req, ctx)
          return x.serve(selected, v.ageMs, 'stale', { hit: true, ttlS, detail: 'stale-while-revalidate' })
        }
        if (v.reuse === 'revalidate-request') x.fwd = 'request'
      }
    } else x.fwd = variants.length > 0 ? 'vary-miss' : 'uri-miss'

    let flight = this.liveFlight(ctx.key, nowMs)
    // A response still arriving for this key can answer as it streams.
    if (waited) x.fwd = waited.fwd
    if (!isBackground && flight?.fill && x.canShare(flight.fill, nowMs)) return x.serveFill(flight.fill, nowMs)
    // Once the URL's answers are known to vary, a request waits only for one of its own variant:
    // behind another variant's it would go upstream after it anyway, and each in turn after the last.
    const flightKey = variantFlightKey(ctx.key, variants[0]?.vary.names ?? flight?.fill?.entry.vary.names, req.headers)
    if (flightKey !== ctx.key) {
      flight = this.liveFlight(flightKey, nowMs)
      if (!isBackground && flight?.fill && x.canShare(flight.fill, nowMs)) return x.serveFill(flight.fill, nowMs)
    }
    if (rd.onlyIfCached) return x.reply(onlyIfCachedReply(ctx.requestId), 'miss')
    const collapsible = !isBackground && !isRetry && x.collapsible(this.isUncollapsible(ctx.key, nowMs))
    // A waiter whose client has left neither waits more nor leads: the request path ends it (CLIENT_GONE).
    if (waited && ctx.state?.left) return x.forward()
    // The collapse wait counts from the request's first lookup, whatever leaders it waits for in turn.
    const untilMs = waited ? waited.untilMs : nowMs + ctx.maxWaitMs
    if (flight && !flight.settled && collapsible && untilMs > nowMs) {
      // Another request is fetching this key: wait for its head, then look again (it may have been
      // stored, or be shareable while it streams; or it failed, and the first waiter leads next and
      // the others wait for it; or it cannot be shared: then go ourselves).
      const fwd = x.fwd
      return this.waitFor(flightKey, flight, Math.min(untilMs, flight.deadlineMs) - nowMs).then((settled) => this.lookup(req, ctx, { fwd, untilMs: settled ? untilMs : 0, leaderFailed: flight.failed }))
    }
    // The flight is taken once nothing more can throw before the exchange is the request path's.
    if (!flight && collapsible) return x.forward().holding(this.openFlight(flightKey, nowMs + ctx.maxWaitMs))
    return x.forward()
  }

  /**
   * The flight under a key, unless its leader is past the collapse wait without an answer head:
   * then it is lost (or as slow as a lost one), nobody waits for it any more, and this request may
   * lead anew (nginx's proxy_cache_lock_age).
   */
  private liveFlight(key: string, nowMs: number): Flight | undefined {
    const flight = this.flights.get(key)
    return flight && !flight.settled && flight.deadlineMs <= nowMs ? this.expire(key, flight) : flight
  }

  private openFlight(key: string, deadlineMs: number): Flight {
    let release!: () => void
    const headed = new Promise<void>((r) => (release = r))
    const flight: Flight = { key, headed, release, fill: undefined, settled: false, failed: false, deadlineMs }
    this.flights.set(key, flight)
    return flight
  }

  /** Drops a flight whose leader is past its deadline and wakes its waiters (they go upstream themselves). */
  private expire(key: string, flight: Flight): undefined {
    if (this.flights.get(key) === flight) this.flights.delete(key)
    flight.release()
    return undefined
  }

  /**
   * Resolves true when the flight settles, or false after `waitMs`: the waiter's collapse wait is
   * spent, and when that was the flight's own deadline too, the flight is lost and dropped.
   */
  private waitFor(key: string, flight: Flight, waitMs: number): Promise<boolean> {
    const untilFlightDeadline = this.now() + waitMs >= flight.deadlineMs
    this.waiting++
    return new Promise<boolean>((resolve) => {
      let done = false
      const finish = (settled: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        this.timers.delete(timer)
        this.waiting--
        resolve(settled)
      }
      const timer = setTimeout(() => {
        if (!flight.settled && untilFlightDeadline) this.expire(key, flight)
        finish(false)
      }, waitMs)
      this.timers.add(timer)
      // Settled, or released by close(): look again.
      flight.headed.then(() => finish(true))
    })
  }

  settle(key: string, flight: Flight, fill?: Fill, failed = false): void {
    flight.settled = true
    flight.failed = failed
    if (fill) flight.fill = fill
    else if (this.flights.get(key) === flight) this.flights.delete(key)
    flight.release()
  }

  fillStarted(fill: Fill): void {
    this.filling.add(fill)
  }

  endFill(key: string, fill: Fill): void {
    this.filling.delete(fill)
    const f = this.flights.get(key)
    if (f?.fill === fill) this.flights.delete(key)
  }

  commit(entry: CacheEntry, body: Uint8Array): void {
    entry.body = body
    entry.bytes = entryBytes(entry.key, entry.headers, body, entry.vary)
    if (this.store.put(entry)) this.stores++
  }

  /**
   * §4.4: an unsafe request's answer invalidates a URI (revalidate.ts invalidatedKeys), which is
   * every key and variant stored for it, as purge by URL drops them: the request's own key may
   * carry a forwarded-host suffix, and other clients' keys for the URI may carry others.
   */
  invalidate(key: string): void {
    this.dropUrl(urlKeyOf(key))
  }

  /**
   * Drops every variant of a URL's key and of the keys a trusted proxy's other X-Forwarded-Host
   * made for it (key.ts requestKey), and their fills still arriving; returns how many entries went.
   */
  private dropUrl(key: string): number {
    let n = this.store.purgeKey(key)
    for (const k of this.store.suffixedKeys(key)) n += this.store.purgeKey(k)
    const ofUrl = (k: string) => k === key || k.startsWith(`${key}#`) || k.startsWith(`${key}\n`)
    for (const k of [...this.flights.keys()]) if (ofUrl(k)) this.dropFill(k)
    for (const f of this.filling) if (ofUrl(f.entry.key)) f.discarded = true
    return n
  }

  private dropFill(key: string): void {
    const f = this.flights.get(key)
    if (f?.fill) {
      f.fill.discarded = true
      this.flights.delete(key)
    }
  }

  markUncollapsible(key: string): void {
    const cost = key.length + UNCOLLAPSIBLE_ENTRY_BYTES
    if (this.uncollapsible.size >= MAX_UNCOLLAPSIBLE_KEYS || this.uncollapsibleBytes + cost > MAX_UNCOLLAPSIBLE_BYTES) {
      this.uncollapsible.clear()
      this.uncollapsibleBytes = 0
    }
    if (!this.uncollapsible.has(key)) this.uncollapsibleBytes += cost
    this.uncollapsible.set(key, this.now() + UNCOLLAPSIBLE_MS)
  }

  private isUncollapsible(key: string, nowMs: number): boolean {
    const until = this.uncollapsible.get(key)
    if (until === undefined) return false
    if (until > nowMs) return true
    this.uncollapsible.delete(key)
    this.uncollapsibleBytes -= key.length + UNCOLLAPSIBLE_ENTRY_BYTES
    return false
  }

  /**
   * stale-while-revalidate (RFC 5861 §3): one background request per stored response, sent
   * through the request path like the client's (same headers, minus its conditions, its Range and
   * its id: the refresh is for the whole response, a 206 would not be stored).
   */
  private refresh(entry: CacheEntry, req: ProxyRequest, ctx: LookupContext): void {
    if (entry.refreshing || !this.forwarder || this.flights.has(ctx.key) || this.flights.has(variantFlightKey(ctx.key, entry.vary.names, req.headers))) return
    entry.refreshing = true
    const headers = new Headers()
    req.headers.forEach((value, name) => {
      if (!CONDITIONAL_FIELDS.includes(name) && name !== 'x-request-id' && name !== 'range') headers.append(name, value)
    })
    const bg: ProxyRequest = { method: 'GET', target: req.target, headers, body: null }
    this.background.add(bg)
    this.forwarder(bg, ctx.client)
      .then((reply) => discardBody(reply.body), () => {})
      .finally(() => {
        entry.refreshing = false
      })
  }

  refetch(req: ProxyRequest, client: unknown): Promise<ProxyReply> | undefined {
    if (!this.forwarder) return undefined
    const again: ProxyRequest = { method: req.method, target: req.target, headers: req.headers, body: null }
    this.unconditional.add(again)
    return this.forwarder(again, client)
  }

  /**
   * DELETE /cache?url=: every variant of one key, and of the keys a trusted proxy's other
   * X-Forwarded-Host made for that URL (key.ts requestKey). undefined when the URL is not absolute http(s).
   */
  purgeUrl(url: string): number | undefined {
    const key = keyFromUrl(url)
    if (key === undefined) return undefined
    const n = this.dropUrl(key)
    this.purged += n
    return n
  }

  /**
   * DELETE /cache?prefix=: every key of the prefix's scheme and authority (exactly: not
   * example.com.evil, nor another port) whose path and query start with the prefix's, as plain
   * strings ("/assets" takes "/assets-old/x" too, as nginx's cache_purge and a Varnish ban do).
   * A bare origin is its "/": every stored target starts with one, and that "/" ends the
   * authority, so a string prefix of the key never reaches past it.
   */
  purgePrefix(prefix: string): number | undefined {
    const p = keyFromUrl(prefix)
    if (p === undefined) return undefined
    const n = this.store.purgePrefix(p)
    for (const k of [...this.flights.keys()]) if (k.startsWith(p)) this.dropFill(k)
    for (const f of this.filling) if (f.entry.key.startsWith(p)) f.discarded = true
    this.purged += n
    return n
  }

  /** For /status. */
  status(): Record<string, number> {
    return {
      max_bytes: this.store.maxBytes,
      max_object_bytes: this.maxObjectBytes,
      bytes: this.store.bytes,
      pinned_bytes: this.store.pinnedBytes,
      objects: this.store.objects,
      evictions: this.store.evictions,
      in_flight: this.flights.size,
      waiting: this.waiting,
      filling_bytes: this.fillBudget.keptBytes,
    }
  }

  /** Prometheus text lines for /metrics. */
  renderMetrics(out: string[]): void {
    out.push('# HELP proxy_cache_requests_total Requests through the cache by result: hit, stale (served stale), revalidated (304 from the origin), collapsed (shared another request\'s response), miss, bypass (not cacheable by method or route), refresh (a background stale-while-revalidate request of the cache\'s own).', '# TYPE proxy_cache_requests_total counter')
    for (const r of RESULTS) out.push(`proxy_cache_requests_total{result="${r}"} ${this.counts[r]}`)
    const gauge = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`)
    const counter = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`)
    gauge('proxy_cache_stored_bytes', 'Bytes held by stored responses (bodies, fields, bookkeeping).', this.store.bytes)
    gauge('proxy_cache_pinned_bytes', 'Bytes of responses no longer stored (evicted, replaced, purged) that cache hits still stream: counted against max_size.', this.store.pinnedBytes)
    gauge('proxy_cache_max_bytes', 'The cache budget ([cache] max_size).', this.store.maxBytes)
    gauge('proxy_cache_stored_objects', 'Stored responses (each Vary variant counts).', this.store.objects)
    counter('proxy_cache_stores_total', 'Responses stored.', this.stores)
    counter('proxy_cache_evictions_total', 'Stored responses evicted to stay within max_size.', this.store.evictions)
    counter('proxy_cache_purged_total', 'Stored responses dropped by the admin purge.', this.purged)
  }

  /** Drops everything and stops the collapse timers. */
  close(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const f of this.flights.values()) f.release()
    this.flights.clear()
    this.store.clear()
  }
}
