/**
 * The header block being received: a HEADERS frame and its CONTINUATION frames (RFC 9113 §6.10),
 * with the caps that stop a CONTINUATION flood (CVE-2024-27316) before anything is decoded: total
 * compressed bytes and number of frames. One per session, begun again for each block (a
 * connection receives one block at a time, §6.10), so a stream costs no object here. Decoding is
 * hpack.ts's job; the session owns the block.
 */
import { enhanceYourCalm } from './errors.ts'
import { Flag, parseHeaders, type FrameHeader } from './frames.ts'

const EMPTY = new Uint8Array(0)

export class HeaderBlock {
  /** A block is begun and its END_HEADERS not yet seen. */
  open = false
  streamId = 0
  endStream = false
  /** The deprecated priority fields named the stream itself (§5.3.1). */
  selfDependent = false
  /** The first fragment, and any after it (CONTINUATION: rare, so no list unless there is one). */
  private first: Uint8Array | undefined
  private rest: Uint8Array[] | undefined
  private bytes = 0
  private continuations = 0

  constructor(
    private readonly maxBytes: number,
    private readonly maxContinuations: number,
  ) {}

  /** A HEADERS frame begins a block: its fragment, without padding and priority fields (§6.2). */
  begin(h: FrameHeader, payload: Uint8Array): void {
    let fragment = payload
    let selfDependent = false
    if ((h.flags & (Flag.PADDED | Flag.PRIORITY)) !== 0) {
      const parsed = parseHeaders(h, payload)
      fragment = parsed.fragment
      selfDependent = parsed.priority?.dependsOn === h.streamId
    }
    this.open = true
    this.streamId = h.streamId
    this.endStream = (h.flags & Flag.END_STREAM) !== 0
    this.selfDependent = selfDependent
    this.first = undefined
    this.rest = undefined
    this.bytes = 0
    this.continuations = 0
    this.add(fragment, false)
  }

  /** Adds the fragment of the HEADERS frame (continuation false) or of a CONTINUATION frame. */
  add(fragment: Uint8Array, continuation: boolean): void {
    if (continuation && ++this.continuations > this.maxContinuations) throw enhanceYourCalm('too many CONTINUATION frames')
    this.bytes += fragment.byteLength
    if (this.bytes > this.maxBytes) throw enhanceYourCalm(`header block above ${this.maxBytes} bytes`)
    if (fragment.byteLength === 0) return
    if (this.first === undefined) this.first = fragment
    else (this.rest ??= []).push(fragment)
  }

  /** Ends the block (END_HEADERS): the whole of it, in one buffer. streamId, endStream and selfDependent stay until the next begin(). */
  finish(): Uint8Array {
    this.open = false
    const first = this.first
    const rest = this.rest
    this.first = undefined
    this.rest = undefined
    if (first === undefined) return EMPTY
    if (rest === undefined) return first
    const out = new Uint8Array(this.bytes)
    out.set(first, 0)
    let off = first.byteLength
    for (const p of rest) {
      out.set(p, off)
      off += p.byteLength
    }
    return out
  }
}
