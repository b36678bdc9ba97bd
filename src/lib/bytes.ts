/**
 * Byte arrays: joining parts into one (Buffer.concat's job, for code that also runs where only
 * Uint8Array is wanted), and a message head's text with a small body in one allocation.
 */
import { Buffer } from 'node:buffer'

/** One array holding `parts` in order; `total` is their summed length when the caller knows it. */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array {
  if (total === undefined) {
    total = 0
    for (const p of parts) total += p.byteLength
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/**
 * `text` as latin1 (one byte per character, as heads are read and written) followed by `body`,
 * in one allocation and one copy of each: a head and a small body go out in one write without
 * encoding the head into a buffer of its own and then joining the two.
 */
export function latin1With(text: string, body: Uint8Array | undefined): Buffer {
  const headBytes = text.length
  const out = Buffer.allocUnsafe(headBytes + (body === undefined ? 0 : body.byteLength))
  out.write(text, 0, headBytes, 'latin1')
  if (body !== undefined && body.byteLength > 0) out.set(body, headBytes)
  return out
}
