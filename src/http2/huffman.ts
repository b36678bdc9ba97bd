/**
 * The HPACK Huffman code (RFC 7541 §5.2 and Appendix B): encoding and strict decoding of string
 * literals. The code in Appendix B is canonical (codes of one length are consecutive, in symbol
 * order, shorter codes first), so the table below holds only each symbol's code length, copied from
 * Appendix B; the codes themselves are rebuilt from the lengths. Literal framing (the H bit, the
 * length prefix) belongs to hpack.ts.
 */

/** Code length in bits of symbols 0..255 and EOS (256), RFC 7541 Appendix B. */
// prettier-ignore
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //          32 ' '
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //               48 '0'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                 64 '@'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //              80 'P'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                 96 '`'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //            112 'p'
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240
  30, //                                                              256 EOS
]

export const EOS = 256
const MAX_BITS = 30
const FAST_BITS = 9

/** Code of each symbol, rebuilt canonically from LENGTHS. */
export const CODES: readonly number[] = buildCodes()
/** Per code length: the first code, how many codes, and where their symbols start in SORTED. */
const FIRST_CODE = new Array<number>(MAX_BITS + 1).fill(0)
const COUNT = new Array<number>(MAX_BITS + 1).fill(0)
const FIRST_INDEX = new Array<number>(MAX_BITS + 1).fill(0)
const SORTED: number[] = []
/** Symbols whose code fits in FAST_BITS, looked up by the next FAST_BITS bits: (symbol << 5) | length, or -1. */
const FAST = new Int32Array(1 << FAST_BITS).fill(-1)
const POW2 = Array.from({ length: 64 }, (_, i) => 2 ** i)

function buildCodes(): number[] {
  const order = LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym)
  const codes = new Array<number>(LENGTHS.length).fill(0)
  let code = 0
  let prevLen = order[0]!.len
  for (const { len, sym } of order) {
    code *= 2 ** (len - prevLen)
    prevLen = len
    codes[sym] = code
    code++
  }
  return codes
}

{
  const order = LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym)
  order.forEach(({ len, sym }, i) => {
    if (COUNT[len] === 0) {
      FIRST_CODE[len] = CODES[sym]!
      FIRST_INDEX[len] = i
    }
    COUNT[len]!++
    SORTED.push(sym)
    if (len <= FAST_BITS) {
      const base = CODES[sym]! << (FAST_BITS - len)
      for (let k = 0; k < 1 << (FAST_BITS - len); k++) FAST[base + k] = (sym << 5) | len
    }
  })
}

/** Bits of a symbol's code, for tests against Appendix B. */
export function codeLength(sym: number): number {
  return LENGTHS[sym]!
}

/** Bytes the Huffman form of `s` (latin1 characters) takes. */
export function huffmanLength(s: string): number {
  let bits = 0
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff]!
  return Math.ceil(bits / 8)
}

/** Writes the Huffman form of `s` into `out` at `off`, padded with the EOS prefix (§5.2); returns the end offset. */
export function huffmanEncode(s: string, out: Uint8Array, off: number): number {
  let acc = 0
  let bits = 0
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff
    const len = LENGTHS[sym]!
    acc = acc * POW2[len]! + CODES[sym]!
    bits += len
    while (bits >= 8) {
      bits -= 8
      const byte = Math.floor(acc / POW2[bits]!)
      out[off++] = byte
      acc -= byte * POW2[bits]!
    }
  }
  if (bits > 0) out[off++] = ((acc << (8 - bits)) | (0xff >> bits)) & 0xff
  return off
}

/**
 * Decodes a Huffman string to bytes. Returns undefined when it is invalid per §5.2: it contains EOS,
 * its padding is longer than 7 bits, or the padding is not the most significant bits of EOS.
 */
export function huffmanDecode(src: Uint8Array): Uint8Array | undefined {
  // Every code is at least 5 bits, so at most 8/5 symbols per byte.
  const out = new Uint8Array(Math.ceil((src.byteLength * 8) / 5))
  let n = 0
  let acc = 0
  let bits = 0
  let i = 0
  for (;;) {
    while (bits < MAX_BITS && i < src.byteLength) {
      acc = acc * 256 + src[i++]!
      bits += 8
    }
    if (bits === 0) break
    let sym = -1
    let len = 0
    if (bits >= FAST_BITS) {
      const hit = FAST[Math.floor(acc / POW2[bits - FAST_BITS]!)]!
      if (hit >= 0) {
        sym = hit >> 5
        len = hit & 31
      }
    }
    if (sym < 0) {
      for (let l = 5; l <= Math.min(bits, MAX_BITS); l++) {
        const code = Math.floor(acc / POW2[bits - l]!)
        const k = code - FIRST_CODE[l]!
        if (COUNT[l]! > 0 && k >= 0 && k < COUNT[l]!) {
          sym = SORTED[FIRST_INDEX[l]! + k]!
          len = l
          break
        }
      }
    }
    if (sym < 0) {
      // Out of input: what is left must be padding, at most 7 bits, all ones (§5.2).
      if (i < src.byteLength || bits > 7 || acc !== POW2[bits]! - 1) return undefined
      break
    }
    if (sym === EOS) return undefined
    out[n++] = sym
    bits -= len
    acc %= POW2[bits]!
  }
  return out.subarray(0, n)
}
