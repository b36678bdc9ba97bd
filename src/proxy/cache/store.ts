/**
 * The in-memory store: stored responses by primary key, each key with its Vary variants,
 * bounded by bytes (not entries) with least-recently-used eviction. It knows nothing of HTTP
 * semantics beyond the variant key; policy.ts decides what goes in and what may come out.
 *
 * A stored body that cache hits stream over time (hit-body.ts) is pinned while they read it: once
 * evicted, replaced or purged, it stays charged to the budget (pinnedBytes) until its last reader
 * ends, so that slow readers of bodies no longer stored cannot hold memory beyond max_size. The
 * store evicts more to make room for them, and stores nothing when they hold all of it.
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
  responseWallMs: number
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

/**
 * What an entry costs beyond its body, fields and key, as measured in the JavaScript heap (Bun
 * 1.4.5, bun:jsc heapStats after 20,000 responses stored through the proxy, each with 4 fields
 * and a 20-byte body): 1,977 bytes an entry in all, of which about 1,530 are the entry itself
 * (its object, the parsed Cache-Control map, the key's and the LRU's map entries, the Uint8Array,
 * the list of variants). It was 256, and a 32 MiB cache of small objects held 62,000 of them in
 * 373-420 MB of RSS, at rest (an outside leak hunt; the collector's headroom comes on top).
 */
const ENTRY_OVERHEAD_BYTES = 1536
/** Each field line beyond its name and value: its [name, value] array and two strings (4 fields more cost 106 bytes each, measured as above). */
const FIELD_OVERHEAD_BYTES = 96
/** Each name and value Vary named, beyond their lengths: two strings in two arrays (two names cost about 97 bytes, measured as above). */
const VARY_OVERHEAD_BYTES = 48

/**
 * What an entry is charged: its body, its fields, its secondary key (the request values Vary named,
 * which a client chooses: a 16 KiB Cookie or User-Agent per variant) and what the objects around
 * them cost, measured (above): what max_size bounds is then the heap the stored responses take.
 */
export function entryBytes(key: string, headers: readonly (readonly [string, string])[], body: Uint8Array, vary: VaryKey = NO_VARY): number {
  let n = ENTRY_OVERHEAD_BYTES + key.length + body.byteLength
  for (const [k, v] of headers) n += k.length + v.length + FIELD_OVERHEAD_BYTES
  for (let i = 0; i < vary.names.length; i++) n += vary.names[i]!.length + (vary.values[i]?.length ?? 0) + VARY_OVERHEAD_BYTES
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
  /** Readers now streaming each pinned body (pin/unpin), by the body. */
  private readonly readers = new Map<Uint8Array, number>()
  /** What each body no longer stored but still read is charged (its entry's bytes when it left), by the body. */
  private readonly pinnedCharge = new Map<Uint8Array, number>()
  private uses = 0
  bytes = 0
  /** Bytes of bodies no longer stored that readers still stream: counted against maxBytes with `bytes`. */
  pinnedBytes = 0
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
    if (entry.bytes + this.pinnedBytes > this.maxBytes) return false
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
    this.evictToFit(entry)
    if (this.bytes + this.pinnedBytes <= this.maxBytes) return true
    // What it replaced is still being read: no room is left beside the pinned bodies.
    this.remove(entry)
    return false
  }

  /**
   * Evicts the least recently used entries until the store and the pinned bodies fit the budget;
   * not `keep`, nor one being read (it would stay charged, pinned: evicting it frees nothing).
   */
  private evictToFit(keep?: CacheEntry): void {
    for (const victim of this.lru.keys()) {
      if (this.bytes + this.pinnedBytes <= this.maxBytes) break
      if (victim === keep || this.readers.has(victim.body)) continue
      this.remove(victim)
      this.evictions++
    }
  }

  /**
   * A hit starts streaming `entry`'s body: while it reads, the body stays charged to the budget
   * even once no longer stored. Every pin is matched by exactly one unpin (hit-body.ts).
   */
  pin(entry: CacheEntry): void {
    const body = entry.body
    this.readers.set(body, (this.readers.get(body) ?? 0) + 1)
    // Evicted between the answer and its first read: charged from now. Not when a 304 replaced
    // the entry (replace): the updated one holds the same body, still stored and charged as such.
    if (!this.lru.has(entry) && !this.stillStored(entry)) {
      this.charge(body, entry.bytes)
      this.evictToFit()
    }
  }

  /** Whether an entry stored under `entry`'s key holds its body (the one a 304 refreshed it into). */
  private stillStored(entry: CacheEntry): boolean {
    const list = this.byKey.get(entry.key)
    return list !== undefined && list.some((e) => e.body === entry.body && this.lru.has(e))
  }

  /** A hit of `entry`'s body ended (finished, cut, timed out): its last reader frees a body no longer stored. */
  unpin(entry: CacheEntry): void {
    const body = entry.body
    const n = (this.readers.get(body) ?? 0) - 1
    if (n > 0) return void this.readers.set(body, n)
    this.readers.delete(body)
    const charged = this.pinnedCharge.get(body)
    if (charged === undefined) return
    this.pinnedCharge.delete(body)
    this.pinnedBytes -= charged
  }

  /** A body still read leaves the store (or was read after it left): charged as pinned, once (the sum with `bytes` is unchanged on leaving). */
  private charge(body: Uint8Array, bytes: number): void {
    if (this.pinnedCharge.has(body)) return
    this.pinnedCharge.set(body, bytes)
    this.pinnedBytes += bytes
  }

  /**
   * Replaces a stored entry by an updated copy (a 304 merged into it) in place. One that is no
   * longer stored (purged, invalidated or evicted while its revalidation was on its way) stays
   * gone: a 304 does not bring it back. A 304 that adds fields grows the entry: the least recently
   * used others are evicted to make room, as for put; when that is not enough (the rest is being
   * read), the updated entry is dropped too, unless it is read itself (that would free nothing).
   * False when it is not stored.
   */
  replace(old: CacheEntry, updated: CacheEntry): boolean {
    if (!this.has(old)) return false
    const list = this.byKey.get(old.key)!
    list[list.indexOf(old)] = updated
    this.lru.delete(old)
    this.lru.set(updated, true)
    this.usedAt.set(updated, ++this.uses)
    this.bytes += updated.bytes - old.bytes
    this.evictToFit(updated)
    if (this.bytes + this.pinnedBytes <= this.maxBytes || this.readers.has(updated.body)) return true
    this.remove(updated)
    this.evictions++
    return false
  }

  remove(entry: CacheEntry): void {
    if (!this.lru.delete(entry)) return
    this.bytes -= entry.bytes
    if (this.readers.has(entry.body)) this.charge(entry.body, entry.bytes)
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

  /** Drops every entry; bodies still read stay pinned until their readers end. */
  clear(): void {
    for (const e of [...this.lru.keys()]) this.remove(e)
  }
}
