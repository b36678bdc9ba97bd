/**
 * Splits the client's byte stream into frames: checks the connection preface (RFC 9113 §3.4),
 * keeps a partial frame across reads, and refuses frames above our SETTINGS_MAX_FRAME_SIZE
 * (§4.2). What a frame means is the session's business (session.ts).
 */
import { copyOut } from '../lib/bytes.ts'
import { connectionError, H2Code } from './errors.ts'
import { FRAME_HEADER_BYTES, PREFACE, readFrameHeader, type FrameHeader } from './frames.ts'

export class FrameReader {
  private rest: Uint8Array = new Uint8Array(0)
  private prefaceSeen = false

  constructor(private readonly maxFrameBytes: number) {}

  /**
   * Calls `onFrame` for every whole frame in what has arrived, until it returns false. Payloads
   * are copies of small frames and views of larger ones: both stay valid as long as the caller
   * keeps them (a read is never written again).
   * Throws a connection error for a bad preface or an oversized frame.
   */
  push(chunk: Uint8Array, onFrame: (h: FrameHeader, payload: Uint8Array) => boolean): void {
    let buf = chunk
    if (this.rest.byteLength > 0) {
      buf = new Uint8Array(this.rest.byteLength + chunk.byteLength)
      buf.set(this.rest)
      buf.set(chunk, this.rest.byteLength)
    }
    let off = 0
    if (!this.prefaceSeen) {
      const n = Math.min(buf.byteLength, PREFACE.byteLength)
      for (let i = 0; i < n; i++) {
        if (buf[i] !== PREFACE[i]) throw connectionError(H2Code.PROTOCOL_ERROR, 'not an HTTP/2 client preface (RFC 9113 §3.4)')
      }
      if (n < PREFACE.byteLength) {
        this.rest = buf.slice()
        return
      }
      this.prefaceSeen = true
      off = n
    }
    while (buf.byteLength - off >= FRAME_HEADER_BYTES) {
      const h = readFrameHeader(buf, off)
      if (h.length > this.maxFrameBytes) throw connectionError(H2Code.FRAME_SIZE_ERROR, `frame of ${h.length} bytes above our SETTINGS_MAX_FRAME_SIZE`)
      if (buf.byteLength - off < FRAME_HEADER_BYTES + h.length) break
      const start = off + FRAME_HEADER_BYTES
      const payload = h.length <= COPY_PAYLOAD_MAX_BYTES ? copyOut(buf, start, start + h.length) : buf.subarray(start, start + h.length)
      off += FRAME_HEADER_BYTES + h.length
      if (!onFrame(h, payload)) return
    }
    // A partial frame waits for the next read; copied, as it is at most one frame.
    this.rest = off < buf.byteLength ? buf.slice(off) : new Uint8Array(0)
  }
}

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
