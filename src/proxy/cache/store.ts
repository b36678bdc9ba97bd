/**
 * The in-memory store: stored responses by primary key, each key with its Vary variants,
 * bounded by bytes (not entries) with least-recently-used eviction. It knows nothing of HTTP
 * semantics beyond the variant key; policy.ts decides what goes in and what may come out.
 */
import { NO_VARY, sameVaryKey, type VaryKey } from './vary.ts'
import type { ResponseDirectives } from './policy.ts'

export interface CacheEntry {
  key: string
  vary: VaryKey
  status: number
  statusText: string
  /** Stored fields: hop-by-hop ones, Content-Length and X-Request-Id removed. */
  headers: [string, string][]
  body: Uint8Array
  requestTimeMs: number
  responseTimeMs: number
  rd: ResponseDirectives
  lifetimeMs: number
  /** Bytes charged against the store's budget (body, fields, bookkeeping). */
  bytes: number
  /** A background revalidation (stale-while-revalidate) is in flight. */
  refreshing: boolean
}

/**
 * Most variants kept for one key. Every request for the key is compared with each of them (and
 * each store with each), so with Vary on a field a client chooses (User-Agent, Cookie) an unbounded
 * list made every request for that URL cost as many comparisons as clients had sent values.
 */
export const MAX_VARIANTS_PER_KEY = 64

/** What an entry costs beyond its body and fields: the objects and maps around it. */
const ENTRY_OVERHEAD_BYTES = 256

/**
 * What an entry is charged: its body, its fields, its secondary key (the request values Vary named,
 * which a client chooses: a 16 KiB Cookie or User-Agent per variant) and the fixed overhead.
 */
export function entryBytes(key: string, headers: readonly (readonly [string, string])[], body: Uint8Array, vary: VaryKey = NO_VARY): number {
  let n = ENTRY_OVERHEAD_BYTES + key.length + body.byteLength
  for (const [k, v] of headers) n += k.length + v.length + 16
  for (let i = 0; i < vary.names.length; i++) n += vary.names[i]!.length + (vary.values[i]?.length ?? 0) + 16
  return n
}

export class CacheStore {
  private readonly byKey = new Map<string, CacheEntry[]>()
  /** Every entry, least recently used first (a Map keeps insertion order; a touch re-inserts). */
  private readonly lru = new Map<CacheEntry, true>()
  /** When each entry was last stored or used (a count), to pick a key's least used variant past MAX_VARIANTS_PER_KEY. */
  private readonly usedAt = new WeakMap<CacheEntry, number>()
  /** The keys with a "#" suffix (key.ts requestKey: a trusted proxy's other forwarded host) by the URL's key, for purge by URL. */
  private readonly suffixed = new Map<string, Set<string>>()
  private uses = 0
  bytes = 0
  evictions = 0

  constructor(readonly maxBytes: number) {}

  get objects(): number {
    return this.lru.size
  }

  /** The stored variants of a key, most recently stored first. */
  variants(key: string): readonly CacheEntry[] {
    return this.byKey.get(key) ?? []
  }

  /** Marks an entry as just used. */
  touch(entry: CacheEntry): void {
    if (!this.lru.has(entry)) return
    this.lru.delete(entry)
    this.lru.set(entry, true)
    this.usedAt.set(entry, ++this.uses)
  }

  /** Whether an entry is still stored (it may have been evicted or purged meanwhile). */
  has(entry: CacheEntry): boolean {
    return this.lru.has(entry)
  }

  /**
   * Stores an entry, replacing the variant with the same secondary key (and, past
   * MAX_VARIANTS_PER_KEY, the key's least recently used one: a variant clients keep asking for
   * is not pushed out by one-off ones), then evicts the least recently used entries until the
   * store is within its budget. False when it cannot fit at all.
   */
  put(entry: CacheEntry): boolean {
    if (entry.bytes > this.maxBytes) return false
    const list = this.byKey.get(entry.key) ?? []
    for (const old of [...list]) if (sameVaryKey(old.vary, entry.vary)) this.remove(old)
    const kept = this.byKey.get(entry.key)
    while (kept !== undefined && kept.length >= MAX_VARIANTS_PER_KEY) {
      let victim = kept[0]!
      for (const e of kept) if ((this.usedAt.get(e) ?? 0) < (this.usedAt.get(victim) ?? 0)) victim = e
      this.remove(victim)
      this.evictions++
    }
    const fresh = this.byKey.get(entry.key) ?? []
    fresh.unshift(entry)
    if (fresh.length === 1) this.indexSuffix(entry.key, true)
    this.byKey.set(entry.key, fresh)
    this.lru.set(entry, true)
    this.usedAt.set(entry, ++this.uses)
    this.bytes += entry.bytes
    for (const victim of this.lru.keys()) {
      if (this.bytes <= this.maxBytes) break
      if (victim === entry) continue
      this.remove(victim)
      this.evictions++
    }
    return true
  }

  /**
   * Replaces a stored entry by an updated copy (a 304 merged into it) in place. One that is no
   * longer stored (purged, invalidated or evicted while its revalidation was on its way) stays
   * gone: a 304 does not bring it back.
   */
  replace(old: CacheEntry, updated: CacheEntry): void {
    if (!this.has(old)) return
    const list = this.byKey.get(old.key)!
    list[list.indexOf(old)] = updated
    this.lru.delete(old)
    this.lru.set(updated, true)
    this.usedAt.set(updated, ++this.uses)
    this.bytes += updated.bytes - old.bytes
  }

  remove(entry: CacheEntry): void {
    if (!this.lru.delete(entry)) return
    this.bytes -= entry.bytes
    const list = this.byKey.get(entry.key)
    if (!list) return
    const i = list.indexOf(entry)
    if (i >= 0) list.splice(i, 1)
    if (list.length > 0) return
    this.byKey.delete(entry.key)
    this.indexSuffix(entry.key, false)
  }

  /** The stored keys that are `key` with a "#" suffix. */
  suffixedKeys(key: string): string[] {
    return [...(this.suffixed.get(key) ?? [])]
  }

  private indexSuffix(key: string, stored: boolean): void {
    const at = key.indexOf('#')
    if (at < 0) return
    const base = key.slice(0, at)
    const set = this.suffixed.get(base) ?? new Set<string>()
    if (stored) this.suffixed.set(base, set.add(key))
    else if (set.delete(key) && set.size === 0) this.suffixed.delete(base)
  }

  /** Drops every variant of a key; returns how many entries went. */
  purgeKey(key: string): number {
    const list = this.byKey.get(key)
    if (!list) return 0
    const n = list.length
    for (const e of [...list]) this.remove(e)
    return n
  }

  /** Drops every entry whose key starts with `prefix`; returns how many went. */
  purgePrefix(prefix: string): number {
    let n = 0
    for (const key of [...this.byKey.keys()]) if (key.startsWith(prefix)) n += this.purgeKey(key)
    return n
  }

  clear(): void {
    this.byKey.clear()
    this.lru.clear()
    this.bytes = 0
  }
}
