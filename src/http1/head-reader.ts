/**
 * Gathers the bytes of a message head up to the blank line (CRLFCRLF), for requests and
 * responses alike. A head that arrives in one read is kept as a view of that read; one that
 * dribbles in is copied into a buffer that doubles as it fills, and only newly arrived bytes are
 * scanned, so a peer sending a byte at a time costs linear, not quadratic, work. Empty lines
 * before a request head are dropped (findRequestEnd). The size cap is the caller's to apply
 * (`size`), since what to answer beyond it differs.
 */
import { Buffer } from 'node:buffer'
import { copyOut } from '../lib/bytes.ts'

const CRLFCRLF = Buffer.from('\r\n\r\n')
/** What follows a head is copied out up to this size (consume), and viewed beyond it. */
const COPY_REST_MAX_BYTES = 4096

export class HeadReader {
  private acc: Buffer | null = null
  private accLen = 0
  private owned = false
  /** Leading bytes known to hold no CRLFCRLF. */
  private scanned = 0
  /** Leading bytes known to hold no line ended by a bare LF before the empty line (bareLfEnd). */
  private lfScanned = 0
  /** Leading bytes known to hold no CRLF (newFirstLineEnd); -1 once the first line's end was told. */
  private lineScanned = 0

  /** Bytes held, not yet consumed. */
  get size(): number {
    return this.accLen
  }

  /** The bytes held, as a view (valid until the next append or consume). */
  get bytes(): Buffer {
    return this.acc ? this.acc.subarray(0, this.accLen) : EMPTY
  }

  append(chunk: Buffer): void {
    if (this.accLen === 0) {
      this.acc = chunk
      this.accLen = chunk.length
      this.owned = false
      this.scanned = 0
      this.lfScanned = 0
      this.lineScanned = 0
      return
    }
    const need = this.accLen + chunk.length
    if (!this.owned || need > this.acc!.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.accLen, 1024))
      this.acc!.copy(grown, 0, 0, this.accLen)
      this.acc = grown
      this.owned = true
    }
    chunk.copy(this.acc!, this.accLen)
    this.accLen = need
  }

  /** Where the head ends (the offset of its CRLFCRLF), or -1 while it is not complete. */
  findEnd(): number {
    if (this.accLen === 0) return -1
    // A read is searched in place (no view made of it: see lib/bytes.ts copyOut); a grown buffer
    // through a view of its held bytes, so that its unused tail is not searched each time.
    const held = this.owned ? this.acc!.subarray(0, this.accLen) : this.acc!
    let end = held.indexOf(CRLFCRLF, Math.max(0, this.scanned - 3))
    if (end + 4 > this.accLen) end = -1
    this.scanned = end < 0 ? this.accLen : 0
    return end
  }

  /**
   * findEnd for a request head: empty lines (CRLF) before it are dropped first, which a server
   * SHOULD ignore (RFC 9112 §2.2); else "\r\n\r\nGET ..." would end at its first byte, an empty head.
   */
  findRequestEnd(): number {
    const b = this.acc
    if (b !== null && b[0] === 0x0d) {
      let n = 0
      while (n + 1 < this.accLen && b[n] === 0x0d && b[n + 1] === 0x0a) n += 2
      if (n > 0) this.consume(n)
    }
    return this.findEnd()
  }

  /**
   * Whether the held bytes have a line ended by a bare LF and then the empty line (LF LF, or LF
   * CR LF): a head whose sender ends lines with LF alone, which a CRLFCRLF will never end. Only
   * the bytes that arrived since the last call are scanned.
   */
  bareLfEnd(): boolean {
    const b = this.acc
    if (b === null) return false
    for (let i = Math.max(1, this.lfScanned); i < this.accLen; i++) {
      if (b[i] !== 0x0a) continue
      const p = b[i - 1]
      if (p === 0x0a || (p === 0x0d && i >= 2 && b[i - 2] === 0x0a && (i < 3 || b[i - 3] !== 0x0d))) return true
    }
    this.lfScanned = this.accLen
    return false
  }

  /**
   * Where the first line's CRLF is, the first time it is held; -1 before, and after it was told
   * once: a caller looks at a request line as soon as it is whole, once, not when the head is.
   * Only the bytes that arrived since the last call are scanned.
   */
  newFirstLineEnd(): number {
    const b = this.acc
    if (this.lineScanned < 0 || b === null) return -1
    for (let i = Math.max(1, this.lineScanned); i < this.accLen; i++) {
      if (b[i] === 0x0a && b[i - 1] === 0x0d) {
        this.lineScanned = -1
        return i - 1
      }
    }
    this.lineScanned = this.accLen
    return -1
  }

  /** The buffer whose first `size` bytes are the ones held (no view made), for a parser that reads in place. */
  get buffer(): Buffer {
    return this.acc ?? EMPTY
  }

  /** The first `end` bytes as latin1 text (the head, for the parsers). */
  text(end: number): string {
    return this.acc!.toString('latin1', 0, end)
  }

  /**
   * The held bytes, for a parser that keeps a view of the head's first `end` bytes: the read
   * itself, or a copy of the head when the read is large (the rest of it, a body, moves on, and a
   * kept head would pin all of it).
   */
  headBytes(end: number): Buffer {
    const acc = this.acc!
    const most = 4 * end + 4096
    // A read arrives as a buffer of its own size (at offset 0), so its length says how large it
    // is; acc.buffer is not asked for it (JSC makes an ArrayBuffer object for a read on first
    // asking). A view left by keep() or consume() (a pipelined head after a body, a head after a
    // 1xx) starts further in, and its read may be far larger than it: that is asked.
    const large = acc.byteLength > most || (acc.byteOffset !== 0 && acc.buffer.byteLength > most)
    return large ? Buffer.from(acc.subarray(0, end)) : acc
  }

  /**
   * Drops the first `n` bytes; what follows stays held: a copy when it is small (a body that came
   * with its head, a pipelined request: lib/bytes.ts copyOut says why), a view when it is not.
   */
  consume(n: number): Buffer | null {
    const length = this.accLen - n
    const rest = length <= 0 ? null : length <= COPY_REST_MAX_BYTES ? copyOut(this.acc!, n, this.accLen) : this.acc!.subarray(n, this.accLen)
    this.keep(rest)
    return rest
  }

  /** Holds exactly `rest` (or nothing). */
  keep(rest: Buffer | null): void {
    this.acc = rest && rest.length > 0 ? rest : null
    this.accLen = this.acc ? this.acc.length : 0
    this.owned = false
    this.scanned = 0
    this.lfScanned = 0
    this.lineScanned = 0
  }

  clear(): void {
    this.keep(null)
  }
}

const EMPTY = Buffer.alloc(0)
