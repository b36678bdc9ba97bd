/**
 * WebSocket frames (RFC 6455 §5.2): an incremental reader that turns bytes into frames, and the
 * encoder of one frame, masked as a client must mask (§5.3). Used where the client side of a
 * WebSocket is message-level (Deno.serve's upgradeWebSocket) and the upstream side is bytes.
 * Pure: no I/O; what to do with a frame (relay, answer a ping, close) is the caller's.
 */

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

export interface Frame {
  fin: boolean
  opcode: number
  /** Unmasked payload. */
  payload: Uint8Array
}

export class FrameError extends Error {
  override name = 'FrameError'
  /** The close code to send (RFC 6455 §7.4.1): 1002 protocol error, 1009 too big. */
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Reads frames from a byte stream; a frame larger than `maxPayloadBytes` is an error, never
 * buffered. The reads of a large frame are kept apart until it is whole and joined once: joined at
 * each read, a 16 MiB frame in 64 KiB reads made 2 GB of copies and took the Deno proxy's
 * anonymous memory from 27 to 429 MB.
 */
export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0)
  /** Reads after `buf` not joined yet, their bytes, and how many the frame at the head of `buf` needs in all (0: not known yet). */
  private later: Uint8Array[] = []
  private laterBytes = 0
  private frameBytes = 0

  constructor(private readonly maxPayloadBytes: number) {}

  /** Appends `bytes` and returns every frame now complete, in order. */
  push(bytes: Uint8Array): Frame[] {
    if (this.frameBytes > 0 && this.buf.byteLength + this.laterBytes + bytes.byteLength < this.frameBytes) {
      this.later.push(bytes)
      this.laterBytes += bytes.byteLength
      return []
    }
    if (this.buf.byteLength === 0 && this.later.length === 0) this.buf = bytes
    else {
      const joined = new Uint8Array(this.buf.byteLength + this.laterBytes + bytes.byteLength)
      joined.set(this.buf)
      let at = this.buf.byteLength
      for (const b of this.later) {
        joined.set(b, at)
        at += b.byteLength
      }
      joined.set(bytes, at)
      this.buf = joined
      this.later = []
      this.laterBytes = 0
    }
    this.frameBytes = 0
    const frames: Frame[] = []
    // Bounded: each pass consumes one whole frame, or stops.
    for (;;) {
      const f = this.next()
      if (!f) break
      frames.push(f)
    }
    return frames
  }

  private next(): Frame | undefined {
    const b = this.buf
    if (b.byteLength < 2) return undefined
    const fin = (b[0]! & 0x80) !== 0
    if ((b[0]! & 0x70) !== 0) throw new FrameError(1002, 'reserved bits set without a negotiated extension')
    const opcode = b[0]! & 0x0f
    const masked = (b[1]! & 0x80) !== 0
    let length = b[1]! & 0x7f
    let at = 2
    if (length === 126) {
      if (b.byteLength < 4) return undefined
      length = (b[2]! << 8) | b[3]!
      at = 4
    } else if (length === 127) {
      if (b.byteLength < 10) return undefined
      const high = ((b[2]! << 24) >>> 0) + ((b[3]! << 16) | (b[4]! << 8) | b[5]!)
      length = high * 2 ** 32 + ((b[6]! << 24) >>> 0) + ((b[7]! << 16) | (b[8]! << 8) | b[9]!)
      at = 10
    }
    if (opcode >= 0x8 && (length > 125 || !fin)) throw new FrameError(1002, 'control frames are at most 125 bytes and not fragmented')
    if (length > this.maxPayloadBytes) throw new FrameError(1009, `frame of ${length} bytes is over the ${this.maxPayloadBytes}-byte limit`)
    const maskAt = at
    if (masked) at += 4
    if (b.byteLength < at + length) {
      this.frameBytes = at + length
      return undefined
    }
    const payload = b.slice(at, at + length)
    if (masked) for (let i = 0; i < payload.byteLength; i++) payload[i]! ^= b[maskAt + (i & 3)]!
    this.buf = b.subarray(at + length)
    return { fin, opcode, payload }
  }
}

/** One final frame with `payload`, masked with a fresh random key (RFC 6455 §5.3: client to server). */
export function encodeMaskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.byteLength
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8
  const out = new Uint8Array(2 + lengthBytes + 4 + n)
  out[0] = 0x80 | opcode
  if (lengthBytes === 0) out[1] = 0x80 | n
  else if (lengthBytes === 2) {
    out[1] = 0x80 | 126
    out[2] = n >>> 8
    out[3] = n & 0xff
  } else {
    out[1] = 0x80 | 127
    const high = Math.floor(n / 2 ** 32)
    for (let i = 0; i < 4; i++) out[2 + i] = (high >>> (24 - 8 * i)) & 0xff
    for (let i = 0; i < 4; i++) out[6 + i] = (n >>> (24 - 8 * i)) & 0xff
  }
  const maskAt = 2 + lengthBytes
  const mask = crypto.getRandomValues(new Uint8Array(4))
  out.set(mask, maskAt)
  for (let i = 0; i < n; i++) out[maskAt + 4 + i] = payload[i]! ^ mask[i & 3]!
  return out
}

/** A close frame's payload: the code (2 bytes, big-endian) and a UTF-8 reason (RFC 6455 §5.5.1). */
export function closePayload(code: number | undefined, reason: string): Uint8Array {
  if (code === undefined) return new Uint8Array(0)
  const text = new TextEncoder().encode(reason).subarray(0, 123)
  const out = new Uint8Array(2 + text.byteLength)
  out[0] = code >>> 8
  out[1] = code & 0xff
  out.set(text, 2)
  return out
}
