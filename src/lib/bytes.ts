/**
 * Byte arrays: joining parts into one (Buffer.concat's job, for code that also runs where only
 * Uint8Array is wanted), writing latin1 text and field lines into them, and copying pieces of
 * socket reads without a view of the read (copyOut, putRange).
 */
import { Buffer } from 'node:buffer'

/**
 * A new array of `n` bytes that the caller fills whole: from 4 KiB up not zeroed first
 * (Buffer.allocUnsafe, which below 4 KiB hands out views of a shared pool on Node and Deno): a
 * 64 KiB `new Uint8Array` spent 2.1 µs zeroing what was then overwritten, against 0.5 µs (Bun; the
 * memset was 9 % of the proxy's samples under chunked uploads).
 */
export function bytesToFill(n: number): Uint8Array {
  return n >= 4096 ? Buffer.allocUnsafe(n) : new Uint8Array(n)
}

/** One array holding `parts` in order; `total` is their summed length when the caller knows it. */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array {
  if (total === undefined) {
    total = 0
    for (const p of parts) total += p.byteLength
  }
  const out = bytesToFill(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  if (at < total) out.fill(0, at) // a total above the parts' never shows old memory
  return out
}

/**
 * Writes `s` as latin1 (one byte per character, its low 8 bits, as Buffer's 'latin1' does) into
 * `out` at `at`; returns the offset after it. A loop in JIT code: for message heads it costs less
 * than a Buffer.from of a joined string, which flattens the string and makes an ArrayBuffer.
 */
export function putLatin1(out: Uint8Array, at: number, s: string): number {
  const n = s.length
  for (let i = 0; i < n; i++) out[at + i] = s.charCodeAt(i)
  return at + n
}

/** One HTTP field line, `name: value` CRLF, as latin1 at `at`; returns the offset after it. */
export function putFieldLine(out: Uint8Array, at: number, name: string, value: string): number {
  at = putLatin1(out, at, name)
  out[at++] = 0x3a
  out[at++] = 0x20
  at = putLatin1(out, at, value)
  out[at++] = 0x0d
  out[at++] = 0x0a
  return at
}

/**
 * bytes[from, to) as a Buffer of its own. For pieces of socket reads: the first view made of a
 * read (subarray, .buffer) makes JSC move the whole read into a backing store of its own (0.3-0.7
 * us for a read of a few hundred bytes, measured in a Bun data callback), where copying 200 bytes
 * out with Buffer's copy() takes 0.04. Something not a Buffer is copied through a view.
 */
export function copyOut(bytes: Uint8Array, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from)
  if (bytes instanceof Buffer) bytes.copy(out, 0, from, to)
  else out.set(bytes.subarray(from, to))
  return out
}

/**
 * bytes[from, to) into `out` at `at`, without a view of `bytes` (copyOut): a short range by hand,
 * a longer one with Buffer's copy(); returns the offset after it.
 */
export function putRange(out: Uint8Array, at: number, bytes: Uint8Array, from: number, to: number): number {
  const n = to - from
  if (n <= 64) for (let i = 0; i < n; i++) out[at + i] = bytes[from + i]!
  else if (bytes instanceof Buffer) bytes.copy(out, at, from, to)
  else out.set(bytes.subarray(from, to), at)
  return at + n
}

/** Whether bytes[from, to) are the characters of `s` as latin1 (a string made of them would equal it). */
export function latin1Equals(bytes: Uint8Array, from: number, to: number, s: string): boolean {
  if (to - from !== s.length) return false
  for (let i = 0; i < s.length; i++) if (bytes[from + i] !== s.charCodeAt(i)) return false
  return true
}

/**
 * Latin1 strings of byte ranges for one connection's heads: a range whose bytes are the string
 * the same slot made last time gives that string back, so a value that repeats from request to
 * request (Host, often the target) is not made again. In a socket's data callback a Buffer's
 * toString took ~0.15 µs a call and comparing 15 bytes ~0.03 (measured in Bun). Strings over 256
 * characters are not kept.
 */
export class RepeatedStrings {
  private readonly last: (string | undefined)[] = []

  latin1(b: Buffer, from: number, to: number, slot: number): string {
    const n = to - from
    const prev = this.last[slot]
    if (prev !== undefined && latin1Equals(b, from, to, prev)) return prev
    const s = b.toString('latin1', from, to)
    this.last[slot] = n <= 256 ? s : undefined
    return s
  }
}
