/**
 * The contract between address discovery and the pool: a synchronous snapshot, change events,
 * and a way to ask for a refresh. The DNS-backed implementation is resolver.ts; `staticSource`
 * serves IP literals and tests.
 */

import type { Address } from '../../lib/net.ts'

export type { Address }

export interface AddressSnapshot {
  addresses: readonly Address[]
  /** Bumps on every change of the set. */
  version: number
  /** True while DNS fails and these are the last good addresses. */
  stale: boolean
  /** True once any answer has arrived. */
  ready: boolean
  /** The last lookup's failure; atMonoMs is when, on the monotonic clock (lib/clock.ts). */
  lastError?: { code: string; message: string; atMonoMs: number }
}

export interface AddressChange {
  added: readonly Address[]
  removed: readonly Address[]
  snapshot: AddressSnapshot
}

export interface AddressSource {
  start(): void
  snapshot(): AddressSnapshot
  onChange(listener: (change: AddressChange) => void): () => void
  /** Ask for a re-resolve now (after a connect failure). Single-flight, rate-limited, never throws. */
  refreshNow(reason: string): void
  /**
   * The refresh in flight, or one due within `withinMs`, as a promise that settles when it is
   * done; undefined when none is coming (static sources never refresh).
   */
  nextRefresh?(withinMs: number): Promise<void> | undefined
  /** Plain JSON-able state for /status (optional: static sources have none). */
  status?(): Record<string, unknown>
  /** Numbers for /metrics (optional). */
  metrics?(): { answerAgeMs: number | undefined; refreshes: Record<string, number> }
  /**
   * Takes over from the source it replaces at a reload: its counts (a counter never goes down)
   * and, for the same name resolved another way (its servers, TTL bounds, grace), its addresses,
   * which serve as they were (stale or not) until this one's first answer replaces them, so that
   * a DNS outage at the reload keeps them.
   */
  takeOver?(prev: AddressSource): void
  close(): void
}

/** A fixed set of addresses; `set()` changes it (tests use this to simulate DNS changes). */
export function staticSource(initial: readonly Address[]): AddressSource & { set(addresses: readonly Address[]): void; refreshes: number } {
  let snap: AddressSnapshot = { addresses: initial, version: 1, stale: false, ready: initial.length > 0 }
  const listeners = new Set<(c: AddressChange) => void>()
  const src = {
    refreshes: 0,
    start() {},
    snapshot: () => snap,
    onChange(l: (c: AddressChange) => void) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    refreshNow() {
      src.refreshes++
    },
    close() {
      listeners.clear()
    },
    set(addresses: readonly Address[]) {
      const before = new Set(snap.addresses.map((a) => a.address))
      const after = new Set(addresses.map((a) => a.address))
      const added = addresses.filter((a) => !before.has(a.address))
      const removed = snap.addresses.filter((a) => !after.has(a.address))
      snap = { addresses, version: snap.version + 1, stale: false, ready: true }
      if (added.length || removed.length) for (const l of listeners) l({ added, removed, snapshot: snap })
    },
  }
  return src
}
