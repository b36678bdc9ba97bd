/**
 * One header block being received: a HEADERS frame and its CONTINUATION frames (RFC 9113 §6.10),
 * with the caps that stop a CONTINUATION flood (CVE-2024-27316) before anything is decoded: total
 * compressed bytes and number of frames. Decoding is hpack.ts's job; the session owns the block.
 */
import { enhanceYourCalm } from './errors.ts'

export class HeaderBlock {
  private parts: Uint8Array[] = []
  private bytes = 0
  private continuations = 0

  constructor(
    readonly streamId: number,
    readonly endStream: boolean,
    /** The deprecated priority fields named the stream itself (§5.3.1). */
    readonly selfDependent: boolean,
    private readonly maxBytes: number,
    private readonly maxContinuations: number,
  ) {}

  /** Adds the fragment of the HEADERS frame (continuation false) or of a CONTINUATION frame. */
  add(fragment: Uint8Array, continuation: boolean): void {
    if (continuation && ++this.continuations > this.maxContinuations) throw enhanceYourCalm('too many CONTINUATION frames')
    this.bytes += fragment.byteLength
    if (this.bytes > this.maxBytes) throw enhanceYourCalm(`header block above ${this.maxBytes} bytes`)
    if (fragment.byteLength > 0) this.parts.push(fragment)
  }

  /** The whole block, in one buffer. */
  joined(): Uint8Array {
    if (this.parts.length === 1) return this.parts[0]!
    const out = new Uint8Array(this.bytes)
    let off = 0
    for (const p of this.parts) {
      out.set(p, off)
      off += p.byteLength
    }
    return out
  }
}
