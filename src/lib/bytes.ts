/** Byte arrays: joining parts into one (Buffer.concat's job, for code that also runs where only Uint8Array is wanted). */

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
