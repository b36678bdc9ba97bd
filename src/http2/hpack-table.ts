/**
 * HPACK's indexing tables (RFC 7541 §2.3): the static table of Appendix A and the dynamic table
 * with its size accounting and eviction (§4). Coding header blocks with them is hpack.ts's job.
 */

/** A header field as HPACK codes it: name (lower case) and value. */
export type HeaderField = [name: string, value: string]

/** RFC 7541 Appendix A; index 1 is the first entry. */
// prettier-ignore
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
]

export const STATIC_COUNT = STATIC_TABLE.length

/** Static index of the first entry with a name, and of each exact name + value pair (for the encoder). */
export const STATIC_NAME_INDEX = new Map<string, number>()
/** By name, then value (nested, so a lookup builds no key string). */
export const STATIC_PAIR_INDEX = new Map<string, Map<string, number>>()
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1)
  if (value === '') return
  let byValue = STATIC_PAIR_INDEX.get(name)
  if (!byValue) STATIC_PAIR_INDEX.set(name, (byValue = new Map()))
  byValue.set(value, i + 1)
})

/**
 * Response field names upstreams usually send, by place in this list: an answer made from an
 * upstream's bytes names its fields by place (ForwardedReply), and the encoder keeps per place the
 * last value it indexed (HpackEncoder.common).
 */
// prettier-ignore
export const COMMON_RESPONSE_NAMES: readonly string[] = [
  'server', 'date', 'content-type', 'content-length', 'content-encoding', 'content-language', 'last-modified', 'etag',
  'cache-control', 'expires', 'accept-ranges', 'vary', 'set-cookie', 'location', 'age', 'via', 'link', 'alt-svc',
  'strict-transport-security', 'access-control-allow-origin', 'x-content-type-options', 'x-frame-options',
]

/** An entry's size counts its name and value octets plus 32 (§4.1). */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32
}

/**
 * The dynamic table (§2.3.2): newest entry first in index order. Entries are kept oldest-first in
 * an array with a moving start, so inserting and evicting are O(1) amortised.
 */
export class DynamicTable {
  private entries: Array<readonly [string, string]> = []
  private start = 0
  /** Entries ever inserted; gives each entry a stable absolute number (for the encoder's index map). */
  inserted = 0
  size = 0

  constructor(public maxSize: number) {}

  get length(): number {
    return this.entries.length - this.start
  }

  /** Entry at HPACK index `index` (1-based over static + dynamic), or undefined. */
  get(index: number): readonly [string, string] | undefined {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]
    const k = index - STATIC_COUNT
    if (k > this.length) return undefined
    return this.entries[this.entries.length - k]
  }

  /** Inserts (§4.4): evicts first; an entry larger than the whole table empties it and is not added. */
  add(name: string, value: string): void {
    const size = entrySize(name, value)
    this.inserted++
    this.evictTo(this.maxSize - size)
    if (size > this.maxSize) return
    this.entries.push([name, value])
    this.size += size
  }

  /** Applies a new maximum size (§4.3). */
  resize(maxSize: number): void {
    this.maxSize = maxSize
    this.evictTo(maxSize)
  }

  /** The absolute number of the entry at dynamic position k (1 = newest); used by the encoder. */
  absoluteOf(k: number): number {
    return this.inserted - k
  }

  /** The HPACK index of an entry by absolute number, or 0 if it was evicted. */
  indexOfAbsolute(abs: number): number {
    const k = this.inserted - abs
    return k >= 1 && k <= this.length ? STATIC_COUNT + k : 0
  }

  private evictTo(limit: number): void {
    while (this.size > Math.max(limit, 0) && this.length > 0) {
      const [name, value] = this.entries[this.start]!
      this.size -= entrySize(name, value)
      this.start++
    }
    if (this.length === 0) this.size = 0
    if (this.start > 64 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start)
      this.start = 0
    }
  }
}
