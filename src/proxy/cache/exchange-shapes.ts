/**
 * The shapes the edge cache (cache.ts) and one request's passage through it (exchange.ts) share:
 * what lookup is told, a flight that concurrent misses wait for, a response kept while it
 * arrives, and what an exchange may ask of the cache (CacheInternals). Types only.
 */
import type { ProxyReply, ProxyRequest } from '../message.ts'
import type { CacheEntry, CacheStore } from './store.ts'
import type { BodyTee, FillBudget } from './tee.ts'

/** How a request's answer was produced, for the access log and proxy_cache_requests_total. */
export type CacheResult = 'hit' | 'stale' | 'revalidated' | 'collapsed' | 'miss' | 'bypass' | 'refresh'

export interface LookupContext {
  /** The primary key: the absolute target URI (key.ts). */
  key: string
  /** false on a [[route]] with cache = false. */
  enabled: boolean
  /** Written into answers the cache makes itself. */
  requestId: string
  /** Handed back to the forwarder when this request triggers a background refresh. */
  client: unknown
  /** Longest time a collapsed request waits for the leader's response head before it goes upstream itself. */
  maxWaitMs: number
  /** The listener sends a streamed body with its Content-Length (the own listener); otherwise a shared stream goes without one. */
  streamKeepsLength?: boolean
  /** A GET with a body: the key does not cover it and an origin may read it (form fields): not stored nor shared (unkeyed()). */
  hasContent?: boolean
  /** What the cache asks of the request late: its flight, nothing made per request (a ninth field here cost each hit 40 bytes). */
  state?: RequestState
}

export interface RequestState {
  /** The request's client has left: a waiter that finds it so neither waits more nor leads. */
  readonly left: boolean
  /**
   * The Host the origin is sent, when the client's (undefined with host_header). Spelled otherwise than
   * in the key (upper case, a final dot, the default port), an origin may answer it otherwise: unkeyed().
   */
  readonly hostSent: string | undefined
}

/** A response still arriving that other requests may share (collapsed forwarding). */
export interface Fill {
  entry: CacheEntry
  tee: BodyTee
  contentLength: number | undefined
  /** Set by a purge or invalidation while it arrives: it is then not stored. */
  discarded: boolean
}

/** One upstream request that concurrent misses of a key wait for. */
export interface Flight {
  /** The key it is kept under (cache.ts: the URL's, or one of its variants'). */
  key: string
  /** Resolves once the leader's answer head has been handled. */
  headed: Promise<void>
  release: () => void
  fill: Fill | undefined
  /** The leader's answer head was handled (settle): the flight no longer makes anyone wait. */
  settled: boolean
  /** The leader's upstream failed (no answer, or a 500/502/503/504): its waiters may fall back on stale-if-error. */
  failed: boolean
  /** Monotonic time (the cache's now()) past which an unsettled flight is taken as lost: it is dropped, and nobody waits for it. */
  deadlineMs: number
}

export interface CacheInternals {
  readonly store: CacheStore
  readonly maxObjectBytes: number
  readonly staleIfErrorMs: number
  /** Bytes of bodies being kept for the store while they arrive, across all requests. */
  readonly fillBudget: FillBudget
  /** The monotonic clock (ages, residence, deadlines), and the wall clock (dates). */
  now(): number
  wallNow(): number
  count(result: CacheResult): void
  /** Ends a flight: waiters look again. With a fill, the flight stays for later arrivals until the fill ends. */
  settle(key: string, flight: Flight, fill?: Fill, failed?: boolean): void
  /** Stores a response whose whole body is in. */
  commit(entry: CacheEntry, body: Uint8Array): void
  /** A body is kept while it arrives (until endFill): a purge or an invalidation discards it. */
  fillStarted(fill: Fill): void
  endFill(key: string, fill: Fill): void
  invalidate(key: string): void
  markUncollapsible(key: string): void
  /** Sends the request again without the cache's validators; undefined when no forwarder is installed. */
  refetch(req: ProxyRequest, client: unknown): Promise<ProxyReply> | undefined
}
