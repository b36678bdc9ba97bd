/**
 * HPACK header block encoding (RFC 7541): integers (§5.1), string literals (§5.2), and the
 * field representations of §6 in an encoder (static and dynamic indexing, Huffman where shorter,
 * never-indexed literals for credentials, §7.1.3), which codes a list of fields or a head that
 * codes itself (HeadSource: an upstream's answer from its bytes, matched against the last value
 * indexed per common name).
 * The decoder is in hpack-decoder.ts, the tables in hpack-table.ts, the Huffman code in
 * huffman.ts; what the fields mean for a request is request.ts's business.
 */
import { latin1Equals } from '../lib/bytes.ts'
import { COMMON_RESPONSE_NAMES, DynamicTable, entrySize, STATIC_NAME_INDEX, STATIC_PAIR_INDEX, type HeaderField } from './hpack-table.ts'
import { latin1 } from './hpack-decoder.ts'
import { huffmanEncodeBytes, huffmanLengthOf, latin1Scratch } from './huffman.ts'

export type { HeaderField } from './hpack-table.ts'

/**
 * A header block that codes itself into an encoder (ForwardedReply: from an upstream's bytes):
 * begin(), its fields in order (status, common, add), then end(), whose block it returns. It must
 * code exactly what encode() would code for the same fields.
 */
export interface HeadSource {
  encodeWith(encoder: HpackEncoder, headroom: number): Uint8Array
}

/** Writes `value` with an N-bit prefix, OR-ing `flags` into the first byte (§5.1); returns the end offset. */
export function encodeInt(out: Uint8Array, off: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1
  if (value < max) {
    out[off++] = flags | value
    return off
  }
  out[off++] = flags | max
  value -= max
  while (value >= 128) {
    out[off++] = (value % 128) | 0x80
    value = Math.floor(value / 128)
  }
  out[off++] = value
  return off
}

export { decodeInt, HpackDecoder, type DecodedBlock } from './hpack-decoder.ts'

/** Where encode() codes a block before copying it out (one block at a time: encode() never waits). */
const encodeScratch = new Uint8Array(4096)
/** What end() returns for a block left in place (encodeInPlace). */
const NO_BLOCK = new Uint8Array(0)

/** Names whose values are credentials: sent as never-indexed literals (RFC 7541 §7.1.3). */
const NEVER_INDEX = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie'])
/**
 * Values that change with nearly every response: indexing them only churns the table (and pushes
 * out the entries that do repeat). X-Request-Id is new on every response the proxy sends.
 */
const NO_INDEX = new Set(['content-length', 'etag', 'last-modified', 'age', 'content-range', ':path', 'x-request-id'])
const MAX_INDEXED_VALUE = 256

/** Static index of ":status" 200 + i (the static table has 200, 204, 206, 304, 400, 404, 500), 0 where none. */
const STATIC_STATUS = Array.from({ length: 301 }, (_, i) => STATIC_PAIR_INDEX.get(':status')!.get(String(200 + i)) ?? 0)
const COMMON_PLACE = new Map(COMMON_RESPONSE_NAMES.map((name, place) => [name, place]))
/**
 * Per COMMON_RESPONSE_NAMES place, for a name that field() never indexes and whose static name it
 * always uses (no value of it is in the static table): the literal's flags << 8 | the name's
 * static index; 0 for the others.
 */
const COMMON_LITERAL = COMMON_RESPONSE_NAMES.map((name) => {
  const index = STATIC_NAME_INDEX.get(name) ?? 0
  if (index === 0 || STATIC_PAIR_INDEX.has(name)) return 0
  return NEVER_INDEX.has(name) ? (0x10 << 8) | index : NO_INDEX.has(name) ? index : 0
})

/** Encodes header blocks of one connection, in the order they are sent. */
export class HpackEncoder {
  readonly table: DynamicTable
  /** Absolute entry numbers by name + value and by name, possibly stale (checked on use). */
  private pairs = new Map<string, Map<string, number>>()
  private pairCount = 0
  private names = new Map<string, number>()
  /** Smallest table size set since the last block, and the current one: both signalled (§4.2). */
  private pendingMin: number | undefined

  constructor(maxTableBytes = 4096, private readonly ourCapBytes = 4096) {
    this.table = new DynamicTable(Math.min(maxTableBytes, ourCapBytes))
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed; we use at most our own cap. */
  setPeerTableSize(bytes: number): void {
    const size = Math.min(bytes, this.ourCapBytes)
    if (size === this.table.maxSize) return
    this.pendingMin = Math.min(this.pendingMin ?? size, size)
    this.table.resize(size)
  }

  /**
   * One header block, as a new array of its exact size (after `headroom` bytes left for the caller). The fields are coded into a buffer shared
   * by all encoders and then copied out: a view of a new small array would cost more than the copy
   * (JSC gives such an array a separate backing store the first time a view of it is made).
   */
  encode(fields: Iterable<HeaderField> | HeadSource, headroom = 0): Uint8Array {
    if ('encodeWith' in fields) return fields.encodeWith(this, headroom)
    const list = Array.isArray(fields) ? (fields as HeaderField[]) : [...fields]
    let worst = 0
    for (const [n, v] of list) worst += n.length + v.length + 12
    this.begin(worst, headroom)
    let off = this.at
    for (const [name, value] of list) off = this.field(this.out, off, name, value)
    this.at = off
    return this.end()
  }

  /**
   * encode(), the block left where it was coded instead of copied out: `lastBlock` [0, the
   * returned end), valid until the next block (output.ts copies it into its buffer at once).
   */
  encodeInPlace(fields: Iterable<HeaderField> | HeadSource, headroom: number): number {
    this.inPlace = true
    try {
      this.encode(fields, headroom)
    } finally {
      this.inPlace = false
    }
    return this.at
  }

  /** Where the last block was coded (encodeInPlace). */
  get lastBlock(): Uint8Array {
    return this.out
  }

  // ---- one block at a time (encode, or a HeadSource): begin, fields, end ----
  private out = encodeScratch
  private at = 0
  private inPlace = false
  /** Per COMMON_RESPONSE_NAMES place: the value last indexed under that name, and its entry's absolute number. */
  private readonly recentValues: (string | undefined)[] = COMMON_RESPONSE_NAMES.map(() => undefined)
  private readonly recentEntries: number[] = COMMON_RESPONSE_NAMES.map(() => 0)

  /** Starts a block whose fields take at most `fieldBytes` coded (each name and value's length + 12), after `headroom` bytes. */
  begin(fieldBytes: number, headroom: number): void {
    const worst = 12 + headroom + fieldBytes
    // A block larger than the shared buffer (rare: a response head of kilobytes) gets its own.
    const out = (this.out = worst <= encodeScratch.byteLength ? encodeScratch : new Uint8Array(worst))
    // `headroom` bytes before the block are the caller's to fill (a frame header: frames.ts headersFrame).
    let off = headroom
    if (this.pendingMin !== undefined) {
      if (this.pendingMin < this.table.maxSize) off = encodeInt(out, off, this.pendingMin, 5, 0x20)
      off = encodeInt(out, off, this.table.maxSize, 5, 0x20)
      this.pendingMin = undefined
    }
    this.at = off
  }

  /** The block begun, as a new array of its exact size (headroom included). */
  end(): Uint8Array {
    if (this.inPlace) return NO_BLOCK
    const block = this.out.slice(0, this.at)
    this.out = encodeScratch
    return block
  }

  /** A field, as encode() codes each. */
  add(name: string, value: string): void {
    this.at = this.field(this.out, this.at, name, value)
  }

  /** ":status", from the static table where it is there (as encode() finds it). */
  status(code: number): void {
    const index = STATIC_STATUS[code - 200] ?? 0
    if (index !== 0) this.out[this.at++] = 0x80 | index
    else this.add(':status', String(code))
  }

  /**
   * The field COMMON_RESPONSE_NAMES[place] with the value bytes[from, to), coded as add() would:
   * a name never indexed with its value (Set-Cookie; Content-Length, ETag, Last-Modified, Age,
   * whose static name the value always goes with) straight from the bytes; the value this name
   * last had indexed, while its bytes are the same and its entry is in the table, as that entry.
   */
  common(place: number, bytes: Uint8Array, from: number, to: number): void {
    const literal = COMMON_LITERAL[place]!
    if (literal !== 0) {
      const out = this.out
      this.at = encodeBytes(out, encodeInt(out, this.at, literal & 0xff, 4, literal >> 8), bytes, from, to)
      return
    }
    const recent = this.recentValues[place]
    if (recent !== undefined && latin1Equals(bytes, from, to, recent)) {
      const index = this.table.indexOfAbsolute(this.recentEntries[place]!)
      if (index !== 0) {
        this.at = encodeInt(this.out, this.at, index, 7, 0x80)
        return
      }
    }
    this.add(COMMON_RESPONSE_NAMES[place]!, latin1(bytes, from, to))
  }

  private field(out: Uint8Array, off: number, name: string, value: string): number {
    const exact = STATIC_PAIR_INDEX.get(name)?.get(value) ?? this.dynamicIndex(this.pairs.get(name)?.get(value))
    if (exact) return encodeInt(out, off, exact, 7, 0x80)
    const nameIndex = STATIC_NAME_INDEX.get(name) ?? this.dynamicIndex(this.names.get(name))
    const size = entrySize(name, value)
    if (NEVER_INDEX.has(name)) off = encodeInt(out, off, nameIndex, 4, 0x10)
    // A value that changes every time is indexed only while its name is in no table: the ones
    // after it then refer to the name.
    else if ((!NO_INDEX.has(name) || nameIndex === 0) && value.length <= MAX_INDEXED_VALUE && size * 2 <= this.table.maxSize) {
      off = encodeInt(out, off, nameIndex, 6, 0x40)
      this.remember(name, value)
    } else off = encodeInt(out, off, nameIndex, 4, 0x00)
    if (nameIndex === 0) off = encodeString(out, off, name)
    return encodeString(out, off, value)
  }

  private dynamicIndex(abs: number | undefined): number {
    return abs === undefined ? 0 : this.table.indexOfAbsolute(abs)
  }

  private remember(name: string, value: string): void {
    const abs = this.table.inserted
    this.table.add(name, value)
    let byValue = this.pairs.get(name)
    if (!byValue) this.pairs.set(name, (byValue = new Map()))
    if (!byValue.has(value)) this.pairCount++
    byValue.set(value, abs)
    this.names.set(name, abs)
    const place = COMMON_PLACE.get(name)
    if (place !== undefined) {
      this.recentValues[place] = value
      this.recentEntries[place] = abs
    }
    // Stale numbers are harmless but would pile up; drop them all once the maps outgrow the table.
    if (this.pairCount > 4 * this.table.length + 64) {
      this.pairs.clear()
      this.names.clear()
      this.recentValues.fill(undefined)
      this.pairCount = 0
    }
  }

}

function encodeString(out: Uint8Array, off: number, s: string): number {
  return encodeBytes(out, off, latin1Scratch(s), 0, s.length)
}

/** A string literal (§5.2) of the latin1 characters bytes[from, to): Huffman-coded where shorter. */
function encodeBytes(out: Uint8Array, off: number, bytes: Uint8Array, from: number, to: number): number {
  const h = huffmanLengthOf(bytes, from, to)
  if (h < to - from) return huffmanEncodeBytes(bytes, from, to, out, encodeInt(out, off, h, 7, 0x80))
  off = encodeInt(out, off, to - from, 7, 0)
  for (let i = from; i < to; i++) out[off++] = bytes[i]!
  return off
}
