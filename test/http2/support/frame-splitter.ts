/**
 * The client's side of frame splitting for tests that read a server's HTTP/2 bytes from a real
 * socket: keeps a partial frame across reads and hands over each whole one. No preface to check
 * and no size limit (the server's FrameReader, src/http2/reader.ts, does both for what clients send).
 */
import { FRAME_HEADER_BYTES, readFrameHeader, type FrameHeader } from '../../../src/http2/frames.ts'
import { concatBytes } from '../../../src/lib/bytes.ts'

export class FrameSplitter {
  private rest = new Uint8Array(0)

  /** Calls `onFrame` for each whole frame now in hand; `payload` is a copy the caller may keep. */
  push(chunk: Uint8Array, onFrame: (h: FrameHeader, payload: Uint8Array) => void): void {
    const buf = this.rest.byteLength > 0 ? concatBytes([this.rest, chunk]) : chunk
    let off = 0
    while (buf.byteLength - off >= FRAME_HEADER_BYTES) {
      const h = readFrameHeader(buf, off)
      if (buf.byteLength - off < FRAME_HEADER_BYTES + h.length) break
      onFrame(h, buf.slice(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + h.length))
      off += FRAME_HEADER_BYTES + h.length
    }
    this.rest = buf.slice(off)
  }
}
