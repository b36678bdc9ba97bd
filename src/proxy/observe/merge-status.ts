/**
 * The totals of the supervisor's /status over its workers, as a pure function of each worker's
 * own /status JSON (admin.ts): per upstream, the address counters and gauges summed over
 * addresses and workers; the cache's numbers summed (each worker has its own cache). Scraping
 * the workers lives in workers-admin.ts.
 */

/** Per-address fields of a worker's /status that add up across addresses and workers. */
const ADDRESS_SUMS = ['requests', 'failures', 'in_flight', 'open', 'idle'] as const

export interface StatusTotals {
  workers: number
  workers_up: number
  upstreams: Record<string, Record<string, number>>
  cache?: Record<string, number>
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

/** `statuses` holds one entry per worker: its parsed /status, or undefined when it did not answer. */
export function statusTotals(statuses: (Record<string, unknown> | undefined)[]): StatusTotals {
  const totals: StatusTotals = { workers: statuses.length, workers_up: 0, upstreams: {} }
  for (const st of statuses) {
    if (!st) continue
    totals.workers_up++
    const upstreams = (st.upstreams ?? {}) as Record<string, { connections_opened?: unknown; addresses?: unknown }>
    for (const [name, u] of Object.entries(upstreams)) {
      const t = (totals.upstreams[name] ??= { connections_opened: 0, ...Object.fromEntries(ADDRESS_SUMS.map((k) => [k, 0])) })
      t.connections_opened! += num(u.connections_opened)
      for (const a of Array.isArray(u.addresses) ? (u.addresses as Record<string, unknown>[]) : []) for (const k of ADDRESS_SUMS) t[k]! += num(a[k])
    }
    if (st.cache && typeof st.cache === 'object') {
      totals.cache ??= {}
      for (const [k, v] of Object.entries(st.cache as Record<string, unknown>)) totals.cache[k] = (totals.cache[k] ?? 0) + num(v)
    }
  }
  return totals
}
