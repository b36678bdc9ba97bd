/**
 * Splits the client's byte stream into frames: checks the connection preface (RFC 9113 §3.4),
 * keeps a partial frame across reads, and refuses frames above our SETTINGS_MAX_FRAME_SIZE
 * (§4.2). What a frame means is the session's business (session.ts).
 */
import { Buffer } from 'node:buffer'
import { copyOut, putRange } from '../lib/bytes.ts'
import { connectionError, H2Code } from './errors.ts'
import { FRAME_HEADER_BYTES, PREFACE, readFrameHeader, readFrameHeaderInto, type FrameHeader } from './frames.ts'

export class FrameReader {
  /** Bytes of the preface checked so far. */
  private prefaceBytes = 0
  /**
   * A frame cut by the end of a read: its header bytes so far, and once the header is whole its
   * payload as it comes, in a buffer of at most 16 KiB to start (or what the read holds), doubled
   * as the bytes outgrow it, up to the frame's length: what a frame holds grows with the bytes the
   * client sent, not with the length its header claims (SETTINGS_MAX_FRAME_SIZE is above 16 KiB).
   * Each byte is copied at most twice in all, so a frame arriving a byte at a time costs time
   * linear in its size.
   */
  private readonly head = new Uint8Array(FRAME_HEADER_BYTES)
  private headBytes = 0
  private partialHeader: FrameHeader | undefined
  private partial: Buffer | undefined
  private partialBytes = 0
  /** The header of each whole frame of a read, read into this one object (valid during its onFrame call only). */
  private readonly current: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 }

  constructor(
    private readonly maxFrameBytes: number,
    /**
     * Judges a frame above FIRST_PART_BYTES that a read cut, by its header, before any of its
     * bytes are held: true keeps it (filled as it comes), false skips it (its bytes dropped as
     * they come, then onFrame with an empty payload); it may throw a connection error. Without
     * it every frame is kept.
     */
    private readonly admit?: (h: FrameHeader) => boolean,
  ) {}

  /**
   * Calls `onFrame` for every whole frame in what has arrived, until it returns false. Payloads
   * are copies of small frames and of frames that spanned reads, and views of larger ones: all
   * stay valid as long as the caller keeps them (a read is never written again). The header
   * object is valid during the call only: the next frame's is read into the same one.
   * Throws a connection error for a bad preface or an oversized frame.
   */
  push(chunk: Uint8Array, onFrame: (h: FrameHeader, payload: Uint8Array) => boolean): void {
    let off = 0
    if (this.prefaceBytes < PREFACE.byteLength) {
      off = this.preface(chunk)
      if (this.prefaceBytes < PREFACE.byteLength) return
    }
    if (this.headBytes > 0) {
      off = this.fill(chunk, off, onFrame)
      if (off < 0) return
    }
    while (chunk.byteLength - off >= FRAME_HEADER_BYTES) {
      const h = readFrameHeaderInto(this.current, chunk, off)
      if (h.length > this.maxFrameBytes) throw tooLarge(h)
      if (chunk.byteLength - off < FRAME_HEADER_BYTES + h.length) break
      const start = off + FRAME_HEADER_BYTES
      const payload = h.length <= COPY_PAYLOAD_MAX_BYTES ? copyOut(chunk, start, start + h.length) : chunk.subarray(start, start + h.length)
      off += FRAME_HEADER_BYTES + h.length
      if (!onFrame(h, payload)) return
    }
    // The start of a frame the read ends in: kept (fill() never completes it here).
    if (off < chunk.byteLength) this.fill(chunk, off, onFrame)
  }

  /** Checks what of the preface is in `chunk`; returns the offset after it. */
  private preface(chunk: Uint8Array): number {
    const at = this.prefaceBytes
    const n = Math.min(chunk.byteLength, PREFACE.byteLength - at)
    for (let i = 0; i < n; i++) {
      if (chunk[i] !== PREFACE[at + i]) throw connectionError(H2Code.PROTOCOL_ERROR, 'not an HTTP/2 client preface (RFC 9113 §3.4)')
    }
    this.prefaceBytes = at + n
    return n
  }

  /** Starts or continues the kept frame from `chunk` at `off`; returns the offset after it, or -1 when onFrame said stop. */
  private fill(chunk: Uint8Array, off: number, onFrame: (h: FrameHeader, payload: Uint8Array) => boolean): number {
    const end = chunk.byteLength
    if (this.partialHeader === undefined) {
      const take = Math.min(FRAME_HEADER_BYTES - this.headBytes, end - off)
      this.headBytes = putRange(this.head, this.headBytes, chunk, off, off + take)
      off += take
      if (this.headBytes < FRAME_HEADER_BYTES) return end
      const h = readFrameHeader(this.head, 0)
      if (h.length > this.maxFrameBytes) throw tooLarge(h)
      this.partialHeader = h
      // A large frame cut by a read is kept only if admitted; a skipped one has no buffer (its bytes are counted, not kept).
      const kept = h.length <= FIRST_PART_BYTES || this.admit === undefined || this.admit(h)
      this.partial = kept ? Buffer.allocUnsafe(Math.min(h.length, Math.max(FIRST_PART_BYTES, end - off))) : undefined
      this.partialBytes = 0
    }
    const length = this.partialHeader.length
    const take = Math.min(length - this.partialBytes, end - off)
    let payload = this.partial
    if (payload === undefined) this.partialBytes += take
    else {
      if (this.partialBytes + take > payload.byteLength) {
        const grown = Buffer.allocUnsafe(Math.min(length, Math.max(2 * payload.byteLength, this.partialBytes + take)))
        payload.copy(grown, 0, 0, this.partialBytes)
        payload = this.partial = grown
      }
      this.partialBytes = putRange(payload, this.partialBytes, chunk, off, off + take)
    }
    off += take
    if (this.partialBytes < length) return end
    const h = this.partialHeader
    this.partialHeader = undefined
    this.partial = undefined
    this.headBytes = 0
    return onFrame(h, payload ?? NO_BYTES) ? off : -1
  }
}

function tooLarge(h: FrameHeader): Error {
  return connectionError(H2Code.FRAME_SIZE_ERROR, `frame of ${h.length} bytes above our SETTINGS_MAX_FRAME_SIZE`)
}

const NO_BYTES = new Uint8Array(0)

/** A frame cut by a read starts in a buffer this large at most (the smallest SETTINGS_MAX_FRAME_SIZE), or as large as the read's part of it. */
const FIRST_PART_BYTES = 16_384

/** Payloads up to this size (HEADERS, control frames, small DATA) are copied out of the read rather than viewed (lib/bytes.ts copyOut). */
const COPY_PAYLOAD_MAX_BYTES = 1024

/**
 * Whether the first bytes of a cleartext connection are the HTTP/2 preface (prior knowledge,
 * RFC 9113 §3.3): true or false once `bytes` says, undefined while it is a prefix of the preface.
 * Lets an HTTP/1.1 listener hand such a connection to a session.
 */
export function isPreface(bytes: Uint8Array): boolean | undefined {
  const n = Math.min(bytes.byteLength, PREFACE.byteLength)
  for (let i = 0; i < n; i++) if (bytes[i] !== PREFACE[i]) return false
  return n === PREFACE.byteLength ? true : undefined
}
