/**
 * What the proxy knows of one upstream address: its counters, its pooled connections, and its
 * health (passive ejection with exponential backoff and a half-open probe; the active checker's
 * verdict). The rules for ejecting and recovering live here as plain functions; the pool (pool.ts)
 * applies them, the picker (picker.ts) and the health checker (health.ts) read and set them.
 * Its times are monotonic (lib/clock.ts): a step of the wall clock neither lengthens an ejection
 * nor ends it early.
 */
import type { Address } from '../../lib/net.ts'
import { hostPort } from '../../lib/net.ts'
import type { Http1Connection } from './connection.ts'

export interface AddressState {
  readonly address: string
  /** "ip:port" ("[ip]:port" for IPv6), as logged in upstream_addr. */
  readonly label: string
  readonly family: 4 | 6
  readonly firstSeenMonoMs: number
  inFlight: number
  /** Open connections (busy or idle). */
  open: number
  idle: Http1Connection[]
  requests: number
  failures: number
  consecutiveFailures: number
  /** Monotonic ms until which the address gets no traffic; 0 when healthy. */
  ejectedUntilMonoMs: number
  ejections: number
  /** After an ejection expires: only one request at a time until one succeeds. */
  halfOpen: boolean
  /** Set by the active health checker; true unless a check failed. */
  activeHealthy: boolean
  /** Gone from DNS: no new requests; kept until its in-flight requests finish. */
  removed: boolean
  connectsOpened: number
  /**
   * Requests waiting at max_conns_per_address, first come first served: each is woken with the
   * connection a finished exchange handed over to it, or with none when a slot opened (a
   * connection closed: it may dial).
   */
  waiters: ((handed: Http1Connection | undefined) => void)[]
}

/** The ejection settings of an upstream (fail_threshold, eject_base, eject_max). */
export interface EjectionPolicy {
  readonly failThreshold: number
  readonly ejectBaseMs: number
  readonly ejectMaxMs: number
}

/** Upstream connections open in this process, every address of every pool (a reload's old ones too). */
let connectionsOpen = 0
/** The addresses that have any open (the open field keeps it: an address joins at its first, leaves at its last). */
const withConnections = new Set<AddressState>()

/** What the client listener counts beside its own connections against the open-files limit (runtime/open-files.ts). */
export function upstreamConnectionsOpen(): number {
  return connectionsOpen
}

/**
 * Closes `wanted` idle upstream connections, the longest idle of each address first: for a client
 * the open-files budget would refuse (a pooled connection is only kept for reuse; a client refused
 * for one is a request lost), all or none (`allOrNone`): closing some would admit no one, and the
 * pool would dial them again (a review: under HTTP/2 load at the budget, 592 connections opened
 * where 160 were enough); for a table nearly full, as many as there are. Returns how many closed.
 * Closed as the pool's sweep closes them: out of the idle list first (the connection's close then
 * finds nothing to count), then the count down; a removed address has no idle ones.
 */
export function closeIdleUpstream(wanted: number, allOrNone = true): number {
  let idle = 0
  for (const s of withConnections) idle += s.idle.length
  if (allOrNone && idle < wanted) return 0
  let closed = 0
  for (const s of withConnections) {
    while (closed < wanted && s.idle.length > 0) {
      s.idle.shift()!.destroy()
      s.open--
      closed++
    }
    if (closed >= wanted) break
  }
  return closed
}

export function newAddressState(a: Address, port: number, nowMonoMs: number): AddressState {
  let open = 0
  return {
    address: a.address,
    label: hostPort(a.address, port),
    family: a.family,
    firstSeenMonoMs: nowMonoMs,
    inFlight: 0,
    // Kept with the process's total in step: the pool counts each open and close here once.
    get open() {
      return open
    },
    set open(n: number) {
      connectionsOpen += n - open
      if (open === 0 && n > 0) withConnections.add(this)
      else if (n === 0 && open > 0) withConnections.delete(this)
      open = n
    },
    idle: [],
    requests: 0,
    failures: 0,
    consecutiveFailures: 0,
    ejectedUntilMonoMs: 0,
    ejections: 0,
    halfOpen: false,
    activeHealthy: true,
    removed: false,
    connectsOpened: 0,
    waiters: [],
  }
}

/** Takes traffic now: known, not ejected, and passing its active checks. */
export function isHealthy(s: AddressState, nowMonoMs: number): boolean {
  return !s.removed && s.activeHealthy && s.ejectedUntilMonoMs <= nowMonoMs
}

/** A request succeeded on `s`. True when that ended an ejection episode (worth a log line). */
export function recordSuccess(s: AddressState): boolean {
  s.consecutiveFailures = 0
  if (!s.halfOpen && s.ejectedUntilMonoMs === 0) return false
  s.halfOpen = false
  s.ejectedUntilMonoMs = 0
  s.ejections = 0
  return true
}

/**
 * A connect-level failure of `s`. Ejects it when the failures in a row reach the threshold, or
 * when its half-open probe failed, for a backoff that doubles once per episode: failures of
 * requests that were already in flight when it was ejected do not extend the ejection (sixteen
 * concurrent refusals are one episode, not sixteen). Returns the backoff when it ejected.
 */
export function recordFailure(s: AddressState, policy: EjectionPolicy, nowMonoMs: number): number | undefined {
  s.failures++
  s.consecutiveFailures++
  if (s.ejectedUntilMonoMs > nowMonoMs && !s.halfOpen) return undefined
  if (!s.halfOpen && s.consecutiveFailures < policy.failThreshold) return undefined
  const backoffMs = Math.min(policy.ejectMaxMs, policy.ejectBaseMs * 2 ** s.ejections)
  s.ejections++
  s.halfOpen = false
  s.ejectedUntilMonoMs = nowMonoMs + backoffMs
  return backoffMs
}

/** One address as /status and /metrics show it: first_seen as the wall-clock time of now less the time since. */
export function addressStats(s: AddressState, nowMonoMs: number, nowWallMs: number) {
  return {
    address: s.address,
    family: s.family,
    first_seen: new Date(nowWallMs - (nowMonoMs - s.firstSeenMonoMs)).toISOString(),
    healthy: isHealthy(s, nowMonoMs),
    ejected_for_ms: Math.max(0, s.ejectedUntilMonoMs - nowMonoMs),
    removed: s.removed,
    in_flight: s.inFlight,
    open: s.open,
    idle: s.idle.length,
    requests: s.requests,
    failures: s.failures,
    connections_opened: s.connectsOpened,
  }
}

export type AddressStats = ReturnType<typeof addressStats>
