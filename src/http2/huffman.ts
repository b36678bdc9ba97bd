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

/** Code of each symbol, rebuilt canonically from LENGTHS (at most 30 bits: fits a 32-bit integer). */
export const CODES: readonly number[] = buildCodes()

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

/*
 * Decoding walks the code's binary tree four bits at a time. STEP holds, for each inner node and
 * each nibble, the node reached (bits 0-8), the symbol completed on the way plus one (bits 9-17;
 * no code is shorter than 5 bits, so a nibble completes at most one) and whether EOS was met
 * (bit 18). A string may end only on the root or on the all-ones path within 7 bits of it: its
 * padding is then at most 7 bits and the most significant bits of EOS (§5.2).
 */
const NODE_MASK = 0x1ff
const SYMBOL_SHIFT = 9
const EOS_MET = 1 << 18
const { STEP, ACCEPTS } = buildStepTable()

function buildStepTable(): { STEP: Int32Array; ACCEPTS: Uint8Array } {
  // children[2 * node + bit]: an inner node's number (> 0), a leaf as -(symbol + 1), or 0 (none yet).
  const children: number[] = [0, 0]
  for (let sym = 0; sym <= EOS; sym++) {
    const code = CODES[sym]!
    let node = 0
    for (let b = LENGTHS[sym]! - 1; b >= 0; b--) {
      const slot = 2 * node + ((code >>> b) & 1)
      if (b === 0) children[slot] = -(sym + 1)
      else {
        if (children[slot] === 0) {
          children[slot] = children.length / 2
          children.push(0, 0)
        }
        node = children[slot]!
      }
    }
  }
  const nodes = children.length / 2
  const accepts = new Uint8Array(nodes)
  for (let node = 0, depth = 0; depth <= 7; depth++) {
    accepts[node] = 1
    node = children[2 * node + 1]!
  }
  const step = new Int32Array(nodes * 16)
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state
      let entry = 0
      for (let b = 3; b >= 0; b--) {
        const next = children[2 * node + ((nibble >> b) & 1)]!
        if (next >= 0) {
          node = next
          continue
        }
        const sym = -next - 1
        if (sym === EOS) entry |= EOS_MET
        else entry |= (sym + 1) << SYMBOL_SHIFT
        node = 0
      }
      step[state * 16 + nibble] = entry | node
    }
  }
  return { STEP: step, ACCEPTS: accepts }
}

/** Bits of a symbol's code, for tests against Appendix B. */
export function codeLength(sym: number): number {
  return LENGTHS[sym]!
}

/** A string's latin1 bytes, for the byte coders below: one buffer, grown as needed (one string at a time). */
let scratch = new Uint8Array(256)
export function latin1Scratch(s: string): Uint8Array {
  if (scratch.length < s.length) scratch = new Uint8Array(s.length * 2)
  const b = scratch
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i)
  return b
}

/** Bytes the Huffman form of `s` (latin1 characters) takes. */
export function huffmanLength(s: string): number {
  return huffmanLengthOf(latin1Scratch(s), 0, s.length)
}

/** huffmanLength of the latin1 characters bytes[from, to). */
export function huffmanLengthOf(b: Uint8Array, from: number, to: number): number {
  let bits = 0
  for (let i = from; i < to; i++) bits += LENGTHS[b[i]!]!
  return Math.ceil(bits / 8)
}

/** huffmanEncode of the latin1 characters bytes[from, to), without a string of them. */
export function huffmanEncodeBytes(b: Uint8Array, from: number, to: number, out: Uint8Array, off: number): number {
  // acc holds the bits not yet written (fewer than 8), then a code of at most 24 bits: within 31 bits.
  let acc = 0
  let bits = 0
  for (let i = from; i < to; i++) {
    const sym = b[i]!
    let len = LENGTHS[sym]!
    let code = CODES[sym]!
    if (len > 24) {
      // The rare long codes: their top bits first.
      const top = len - 16
      acc = (acc << top) | (code >>> 16)
      bits += top
      while (bits >= 8) {
        bits -= 8
        out[off++] = (acc >>> bits) & 0xff
      }
      acc &= (1 << bits) - 1
      code &= 0xffff
      len = 16
    }
    acc = (acc << len) | code
    bits += len
    while (bits >= 8) {
      bits -= 8
      out[off++] = (acc >>> bits) & 0xff
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out[off++] = ((acc << (8 - bits)) | (0xff >> bits)) & 0xff
  return off
}

/** Writes the Huffman form of `s` (latin1 characters) into `out` at `off`, padded with the EOS prefix (§5.2); returns the end offset. */
export function huffmanEncode(s: string, out: Uint8Array, off: number): number {
  return huffmanEncodeBytes(latin1Scratch(s), 0, s.length, out, off)
}

/**
 * Decodes a Huffman string to bytes. Returns undefined when it is invalid per §5.2: it contains EOS,
 * its padding is longer than 7 bits, or the padding is not the most significant bits of EOS.
 */
export function huffmanDecode(src: Uint8Array): Uint8Array | undefined {
  // Every code is at least 5 bits, so at most 8/5 symbols per byte.
  const out = new Uint8Array(Math.ceil((src.byteLength * 8) / 5))
  const n = huffmanDecodeInto(src, 0, src.byteLength, out)
  return n < 0 ? undefined : out.subarray(0, n)
}

/**
 * Decodes src[from, to) into `out` (at least ceil((to - from) * 8 / 5) bytes); returns the number
 * of bytes written, or -1 when the string is invalid (as huffmanDecode).
 */
export function huffmanDecodeInto(src: Uint8Array, from: number, to: number, out: Uint8Array): number {
  let n = 0
  let state = 0
  for (let i = from; i < to; i++) {
    const byte = src[i]!
    let e = STEP[(state << 4) | (byte >> 4)]!
    if ((e & EOS_MET) !== 0) return -1
    if (e >> SYMBOL_SHIFT !== 0) out[n++] = (e >> SYMBOL_SHIFT) - 1
    state = e & NODE_MASK
    e = STEP[(state << 4) | (byte & 15)]!
    if ((e & EOS_MET) !== 0) return -1
    if (e >> SYMBOL_SHIFT !== 0) out[n++] = (e >> SYMBOL_SHIFT) - 1
    state = e & NODE_MASK
  }
  return ACCEPTS[state] === 1 ? n : -1
}
