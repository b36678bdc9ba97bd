/**
 * HTTP/2 error codes (RFC 9113 §7) and the one error type the codec and session throw. A
 * connection error ends the whole connection with GOAWAY (§5.4.1); a stream error resets one
 * stream with RST_STREAM (§5.4.2). Which of the two applies is decided where the error is raised;
 * sending the frames is the session's job (session.ts).
 */

/** RFC 9113 §7. */
export const H2Code = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const

export type H2CodeName = keyof typeof H2Code

const NAMES = new Map<number, H2CodeName>(Object.entries(H2Code).map(([k, v]) => [v, k as H2CodeName]))

/** The name of an error code; unknown codes are legal on the wire and read as INTERNAL_ERROR (§7). */
export function h2CodeName(code: number): H2CodeName | `UNKNOWN_${number}` {
  return NAMES.get(code) ?? `UNKNOWN_${code}`
}

/**
 * A protocol violation. `streamId` 0 means a connection error (GOAWAY and close); otherwise the
 * stream is reset and the connection goes on. `code` is the stable string form for logs and tests.
 */
export class Http2Error extends Error {
  readonly h2Code: number
  readonly code: string
  readonly streamId: number
  constructor(h2Code: number, streamId: number, message: string) {
    super(message)
    this.h2Code = h2Code
    this.code = `E_H2_${h2CodeName(h2Code)}`
    this.streamId = streamId
    this.name = 'Http2Error'
  }
}

/** A connection error (§5.4.1). */
export function connectionError(h2Code: number, message: string): Http2Error {
  return new Http2Error(h2Code, 0, message)
}

/** A stream error (§5.4.2). */
export function streamError(streamId: number, h2Code: number, message: string): Http2Error {
  return new Http2Error(h2Code, streamId, message)
}

/** A peer that makes us work without progress (RFC 9113 §10.5): ENHANCE_YOUR_CALM, and the connection ends. */
export function enhanceYourCalm(what: string): Http2Error {
  return connectionError(H2Code.ENHANCE_YOUR_CALM, `${what}; closing the connection (RFC 9113 §10.5)`)
}
