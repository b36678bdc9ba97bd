/**
 * The HTTP/2 frame layer (RFC 9113 §4 and §6): the 9-byte frame header, the payload of every frame
 * type parsed and serialized, padding removal, and the per-type size checks of §6. What a frame
 * means for a stream or for flow control is the session's business (session.ts); header blocks are
 * HPACK's (hpack.ts).
 */
import { connectionError, H2Code, streamError } from './errors.ts'

/** The client connection preface (§3.4). */
export const PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

export const FRAME_HEADER_BYTES = 9

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const

/** SETTINGS parameters (§6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const

/** Smallest legal SETTINGS_MAX_FRAME_SIZE, and the initial value (§6.5.2). */
export const MIN_MAX_FRAME_SIZE = 16_384
export const MAX_MAX_FRAME_SIZE = 16_777_215
/** Largest flow-control window (§6.9.1). */
export const MAX_WINDOW = 2 ** 31 - 1
/** The largest stream id (§5.1.1); as a GOAWAY's last stream id, "every stream so far and to come" (§6.8). */
export const MAX_STREAM_ID = 2 ** 31 - 1
export const DEFAULT_WINDOW = 65_535

export interface FrameHeader {
  length: number
  type: number
  flags: number
  streamId: number
}

/** Reads a frame header at `off`; the caller has checked that 9 bytes are there. */
export function readFrameHeader(buf: Uint8Array, off: number): FrameHeader {
  return readFrameHeaderInto({ length: 0, type: 0, flags: 0, streamId: 0 }, buf, off)
}

/** readFrameHeader into an object of the caller's (FrameReader reuses one); returns it. */
export function readFrameHeaderInto(h: FrameHeader, buf: Uint8Array, off: number): FrameHeader {
  h.length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!
  h.type = buf[off + 3]!
  h.flags = buf[off + 4]!
  // The reserved high bit is ignored on receipt (§4.1).
  h.streamId = readU31(buf, off + 5)
  return h
}

function readU31(buf: Uint8Array, off: number): number {
  return ((buf[off]! & 0x7f) * 0x1000000) + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!)
}

function readU32(buf: Uint8Array, off: number): number {
  return buf[off]! * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!)
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 0xff
  buf[off + 1] = (v >>> 16) & 0xff
  buf[off + 2] = (v >>> 8) & 0xff
  buf[off + 3] = v & 0xff
}

/** Writes a frame header into `out` at `off`. */
export function writeFrameHeader(out: Uint8Array, off: number, length: number, type: number, flags: number, streamId: number): void {
  out[off] = (length >>> 16) & 0xff
  out[off + 1] = (length >>> 8) & 0xff
  out[off + 2] = length & 0xff
  out[off + 3] = type
  out[off + 4] = flags
  writeU32(out, off + 5, streamId & 0x7fffffff)
}

/** One whole frame: header and payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  writeFrameHeader(out, 0, payload.byteLength, type, flags, streamId)
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

const EMPTY = new Uint8Array(0)

// ---- padding (§6.1, §6.2) ----

/** The payload of a DATA or HEADERS frame without its padding; a pad longer than the payload is a PROTOCOL_ERROR. */
export function stripPadding(h: FrameHeader, payload: Uint8Array): Uint8Array {
  if ((h.flags & Flag.PADDED) === 0) return payload
  if (payload.byteLength < 1) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'padded frame without a pad length')
  const pad = payload[0]!
  if (pad >= payload.byteLength) throw connectionError(H2Code.PROTOCOL_ERROR, `pad length ${pad} not less than the payload (RFC 9113 §6.1)`)
  return payload.subarray(1, payload.byteLength - pad)
}

// ---- HEADERS (§6.2) and PRIORITY (§6.3) ----

export interface PriorityFields {
  exclusive: boolean
  dependsOn: number
  weight: number
}

function readPriority(p: Uint8Array, off: number): PriorityFields {
  return { exclusive: (p[off]! & 0x80) !== 0, dependsOn: readU31(p, off), weight: p[off + 4]! + 1 }
}

/** A HEADERS payload: the header block fragment, and the deprecated priority fields if flagged. */
export function parseHeaders(h: FrameHeader, payload: Uint8Array): { fragment: Uint8Array; priority: PriorityFields | undefined } {
  // Padding that reaches into the priority fields exceeds what is left for the fragment: a
  // PROTOCOL_ERROR (§6.2), as a pad beyond the payload is (stripPadding).
  const both = Flag.PADDED | Flag.PRIORITY
  if ((h.flags & both) === both && payload.byteLength >= 6 && payload[0]! > payload.byteLength - 6) throw connectionError(H2Code.PROTOCOL_ERROR, `pad length ${payload[0]} runs into the priority fields (RFC 9113 §6.2)`)
  let p = stripPadding(h, payload)
  let priority: PriorityFields | undefined
  if (h.flags & Flag.PRIORITY) {
    if (p.byteLength < 5) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'HEADERS priority fields truncated')
    priority = readPriority(p, 0)
    p = p.subarray(5)
  }
  return { fragment: p, priority }
}

export function parsePriority(h: FrameHeader, payload: Uint8Array): PriorityFields {
  if (payload.byteLength !== 5) throw streamError(h.streamId, H2Code.FRAME_SIZE_ERROR, 'PRIORITY payload must be 5 bytes (RFC 9113 §6.3)')
  return readPriority(payload, 0)
}

// ---- RST_STREAM (§6.4) ----

export function parseRstStream(payload: Uint8Array): number {
  if (payload.byteLength !== 4) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'RST_STREAM payload must be 4 bytes (RFC 9113 §6.4)')
  return readU32(payload, 0)
}

export function rstStreamFrame(streamId: number, code: number): Uint8Array {
  const p = new Uint8Array(4)
  writeU32(p, 0, code)
  return frame(FrameType.RST_STREAM, 0, streamId, p)
}

// ---- SETTINGS (§6.5) ----

export type SettingsList = Array<[id: number, value: number]>

/** The parameters of a SETTINGS frame, checked per §6.5.2 (unknown ids are kept; the caller ignores them). */
export function parseSettings(h: FrameHeader, payload: Uint8Array): SettingsList {
  if (h.streamId !== 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'SETTINGS on a stream (RFC 9113 §6.5)')
  if (h.flags & Flag.ACK) {
    if (payload.byteLength !== 0) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload (RFC 9113 §6.5)')
    return []
  }
  if (payload.byteLength % 6 !== 0) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'SETTINGS payload not a multiple of 6 (RFC 9113 §6.5)')
  const list: SettingsList = []
  for (let off = 0; off < payload.byteLength; off += 6) {
    const id = (payload[off]! << 8) | payload[off + 1]!
    const value = readU32(payload, off + 2)
    if (id === Setting.ENABLE_PUSH && value > 1) throw connectionError(H2Code.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH must be 0 or 1')
    if (id === Setting.INITIAL_WINDOW_SIZE && value > MAX_WINDOW) throw connectionError(H2Code.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1')
    if (id === Setting.MAX_FRAME_SIZE && (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE)) {
      throw connectionError(H2Code.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} outside 16384..16777215`)
    }
    list.push([id, value])
  }
  return list
}

export function settingsFrame(list: SettingsList): Uint8Array {
  const p = new Uint8Array(list.length * 6)
  list.forEach(([id, value], i) => {
    p[i * 6] = id >>> 8
    p[i * 6 + 1] = id & 0xff
    writeU32(p, i * 6 + 2, value)
  })
  return frame(FrameType.SETTINGS, 0, 0, p)
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0)

// ---- PUSH_PROMISE (§6.6): a server never receives one; a client sending it is a PROTOCOL_ERROR (§8.4) ----

// ---- PING (§6.7) ----

export function parsePing(h: FrameHeader, payload: Uint8Array): Uint8Array {
  if (h.streamId !== 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'PING on a stream (RFC 9113 §6.7)')
  if (payload.byteLength !== 8) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'PING payload must be 8 bytes (RFC 9113 §6.7)')
  return payload
}

export function pingFrame(data: Uint8Array, ack: boolean): Uint8Array {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data)
}

// ---- GOAWAY (§6.8) ----

export interface Goaway {
  lastStreamId: number
  code: number
  debug: Uint8Array
}

export function parseGoaway(h: FrameHeader, payload: Uint8Array): Goaway {
  if (h.streamId !== 0) throw connectionError(H2Code.PROTOCOL_ERROR, 'GOAWAY on a stream (RFC 9113 §6.8)')
  if (payload.byteLength < 8) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'GOAWAY payload shorter than 8 bytes')
  return { lastStreamId: readU31(payload, 0), code: readU32(payload, 4), debug: payload.subarray(8) }
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Uint8Array {
  const d = new TextEncoder().encode(debug)
  const p = new Uint8Array(8 + d.byteLength)
  writeU32(p, 0, lastStreamId & 0x7fffffff)
  writeU32(p, 4, code)
  p.set(d, 8)
  return frame(FrameType.GOAWAY, 0, 0, p)
}

// ---- WINDOW_UPDATE (§6.9) ----

/** The increment; 0 is a PROTOCOL_ERROR, a stream error on a stream and a connection error on stream 0. */
export function parseWindowUpdate(h: FrameHeader, payload: Uint8Array): number {
  if (payload.byteLength !== 4) throw connectionError(H2Code.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload must be 4 bytes (RFC 9113 §6.9)')
  const inc = readU31(payload, 0)
  if (inc === 0) {
    const msg = 'WINDOW_UPDATE with an increment of 0 (RFC 9113 §6.9)'
    throw h.streamId === 0 ? connectionError(H2Code.PROTOCOL_ERROR, msg) : streamError(h.streamId, H2Code.PROTOCOL_ERROR, msg)
  }
  return inc
}

export function windowUpdateFrame(streamId: number, increment: number): Uint8Array {
  const p = new Uint8Array(4)
  writeU32(p, 0, increment & 0x7fffffff)
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, p)
}

// ---- HEADERS + CONTINUATION out (§6.2, §6.10), DATA out (§6.1) ----

/** A header block as one HEADERS frame and as many CONTINUATION frames as `maxFrameBytes` needs, in one buffer. */
export function headerFrames(streamId: number, block: Uint8Array, endStream: boolean, maxFrameBytes: number): Uint8Array {
  if (block.byteLength <= maxFrameBytes) {
    const out = new Uint8Array(FRAME_HEADER_BYTES + block.byteLength)
    writeFrameHeader(out, 0, block.byteLength, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId)
    out.set(block, FRAME_HEADER_BYTES)
    return out
  }
  const count = Math.max(1, Math.ceil(block.byteLength / maxFrameBytes))
  const out = new Uint8Array(count * FRAME_HEADER_BYTES + block.byteLength)
  let src = 0
  let dst = 0
  for (let i = 0; i < count; i++) {
    const n = Math.min(maxFrameBytes, block.byteLength - src)
    const last = i === count - 1
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION
    const flags = (last ? Flag.END_HEADERS : 0) | (i === 0 && endStream ? Flag.END_STREAM : 0)
    writeFrameHeader(out, dst, n, type, flags, streamId)
    out.set(block.subarray(src, src + n), dst + FRAME_HEADER_BYTES)
    src += n
    dst += FRAME_HEADER_BYTES + n
  }
  return out
}

/**
 * headerFrames for a block encoded after FRAME_HEADER_BYTES of headroom (HpackEncoder.encode):
 * a block that fits one frame gets its HEADERS frame header written in front of it, in place,
 * with no second array and copy; a larger one is split as headerFrames splits it.
 */
export function headersFrame(streamId: number, framed: Uint8Array, endStream: boolean, maxFrameBytes: number): Uint8Array {
  const length = framed.byteLength - FRAME_HEADER_BYTES
  if (length > maxFrameBytes) return headerFrames(streamId, framed.subarray(FRAME_HEADER_BYTES), endStream, maxFrameBytes)
  writeFrameHeader(framed, 0, length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId)
  return framed
}
