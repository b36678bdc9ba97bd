/**
 * HPACK decoding (RFC 7541): integers (§5.1), string literals (§5.2) and the field representations
 * of §6, with dynamic table size updates (§4.2, §6.3), into a list of names and values; the cap on
 * the decoded list stops a small block from expanding into a large one (an "HPACK bomb", §7.3 of
 * RFC 7541 and RFC 9113 §10.5.1). Encoding is hpack.ts's, the tables hpack-table.ts's.
 */
import { Buffer } from 'node:buffer'
import { connectionError, H2Code } from './errors.ts'
import { DynamicTable, entrySize, type HeaderField } from './hpack-table.ts'
import { huffmanDecodeInto } from './huffman.ts'

const MAX_INT = 2 ** 31 - 1

function compressionError(message: string): Error {
  return connectionError(H2Code.COMPRESSION_ERROR, `HPACK: ${message}`)
}

/** Reads an integer with an N-bit prefix at `pos` (§5.1); returns [value, next position]. */
export function decodeInt(buf: Uint8Array, pos: number, prefixBits: number): [number, number] {
  const value = readInt(buf, pos, prefixBits)
  return [value, readEnd]
}

/** Where the last readInt or readString ended (the decoder reads one field at a time, never re-entered). */
let readEnd = 0

/** decodeInt without the pair: the value, with its end in `readEnd`. */
function readInt(buf: Uint8Array, pos: number, prefixBits: number): number {
  if (pos >= buf.byteLength) throw compressionError('integer truncated')
  const max = (1 << prefixBits) - 1
  let value = buf[pos++]! & max
  if (value < max) {
    readEnd = pos
    return value
  }
  let shift = 0
  for (;;) {
    if (pos >= buf.byteLength) throw compressionError('integer truncated')
    // Five continuation bytes carry 35 bits, past 2^31-1; a longer encoding (zero bytes that add
    // nothing) is refused by its length (RFC 7541 §5.1), before 2 ** shift could reach Infinity
    // and make the value NaN, which no comparison would catch.
    if (shift > 28) throw compressionError('integer encoding longer than 2^31-1 needs')
    const b = buf[pos++]!
    value += (b & 0x7f) * 2 ** shift
    shift += 7
    if (!(value <= MAX_INT)) throw compressionError('integer above 2^31-1')
    if ((b & 0x80) === 0) {
      readEnd = pos
      return value
    }
  }
}


/** Where Huffman strings of up to 1 KiB decoded are written (one at a time). */
const decoded = Buffer.allocUnsafe(1024)

/** A string literal at `pos` (§5.2), with its end in `readEnd`. */
function readString(buf: Uint8Array, pos: number): string {
  if (pos >= buf.byteLength) throw compressionError('string truncated')
  const huffman = (buf[pos]! & 0x80) !== 0
  const len = readInt(buf, pos, 7)
  const start = readEnd
  const end = start + len
  if (end > buf.byteLength) throw compressionError('string longer than the block')
  readEnd = end
  if (!huffman) return latin1(buf, start, end)
  // Every code is at least 5 bits, so at most 8/5 symbols per byte.
  const most = Math.ceil((len * 8) / 5)
  // A rare long string gets a buffer of its own: the shared one stays small.
  const into = most <= decoded.byteLength ? decoded : Buffer.allocUnsafe(most)
  const n = huffmanDecodeInto(buf, start, end, into)
  if (n < 0) throw compressionError('invalid Huffman string (RFC 7541 §5.2)')
  return into.toString('latin1', 0, n)
}

/** bytes[from, to) as a latin1 string. */
export function latin1(bytes: Uint8Array, from: number, to: number): string {
  return (bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('latin1', from, to)
}

export interface DecodedBlock {
  fields: HeaderField[]
  /** Size of the whole list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2), even past the cap. */
  listBytes: number
  /** The list exceeded the cap: `fields` stops there, but the table was kept in step. */
  tooLarge: boolean
}

/**
 * Decodes header blocks of one connection, in order. Errors are connection errors
 * (COMPRESSION_ERROR, RFC 9113 §4.3): after one, the table state is unknown.
 */
export class HpackDecoder {
  readonly table: DynamicTable
  /**
   * The last list decodeList() decoded, as names and values: these arrays are the decoder's own,
   * filled again by each call (no pair made per field; the caller copies what it keeps).
   */
  readonly names: string[] = []
  readonly values: string[] = []
  /** Its size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2), even past the cap. */
  listBytes = 0
  /** The list exceeded the cap: `names` and `values` stop there, but the table was kept in step. */
  tooLarge = false

  /** `maxTableBytes` is what we announce as SETTINGS_HEADER_TABLE_SIZE; `maxListBytes` caps a decoded list. */
  constructor(private readonly maxTableBytes: number, private readonly maxListBytes: number) {
    this.table = new DynamicTable(maxTableBytes)
  }

  decode(block: Uint8Array): DecodedBlock {
    this.decodeList(block)
    return { fields: this.fields(), listBytes: this.listBytes, tooLarge: this.tooLarge }
  }

  /** The last list decoded, as pairs (made on each call). */
  fields(): HeaderField[] {
    const names = this.names
    const values = this.values
    const fields: HeaderField[] = []
    for (let i = 0; i < names.length; i++) fields.push([names[i]!, values[i]!])
    return fields
  }

  /** Decodes a block into `names`, `values`, `listBytes` and `tooLarge`. */
  decodeList(block: Uint8Array): void {
    const names = this.names
    const values = this.values
    names.length = 0
    values.length = 0
    this.listBytes = 0
    this.tooLarge = false
    let listBytes = 0
    let tooLarge = false
    let pos = 0
    let sawField = false
    const maxListBytes = this.maxListBytes
    while (pos < block.byteLength) {
      const b = block[pos]!
      let name: string
      let value: string
      if (b & 0x80) {
        // Indexed field (§6.1).
        const index = readInt(block, pos, 7)
        pos = readEnd
        const entry = index === 0 ? undefined : this.table.get(index)
        if (!entry) throw compressionError(`index ${index} not in the table`)
        name = entry[0]
        value = entry[1]
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
        if (sawField) throw compressionError('table size update after a field (RFC 7541 §4.2)')
        const size = readInt(block, pos, 5)
        pos = readEnd
        if (size > this.maxTableBytes) throw compressionError(`table size ${size} above the ${this.maxTableBytes} we allowed`)
        this.table.resize(size)
        continue
      } else {
        // Literal: with incremental indexing (01), without indexing (0000), never indexed (0001) (§6.2).
        const indexing = (b & 0xc0) === 0x40
        const nameIndex = readInt(block, pos, indexing ? 6 : 4)
        pos = readEnd
        if (nameIndex === 0) {
          name = readString(block, pos)
          pos = readEnd
        } else {
          const entry = this.table.get(nameIndex)
          if (!entry) throw compressionError(`name index ${nameIndex} not in the table`)
          name = entry[0]
        }
        value = readString(block, pos)
        pos = readEnd
        if (indexing) this.table.add(name, value)
      }
      sawField = true
      listBytes += entrySize(name, value)
      if (listBytes > maxListBytes) tooLarge = true
      if (!tooLarge) {
        names.push(name)
        values.push(value)
      }
    }
    this.listBytes = listBytes
    this.tooLarge = tooLarge
  }
}
