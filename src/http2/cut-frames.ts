/**
 * What the session does with a frame above 16 KiB that a read cut, judged by its header before
 * any of its bytes are held (reader.ts: the reader keeps or skips it). SETTINGS_MAX_FRAME_SIZE is
 * 256 KiB so that clients that frame uploads by it (httpx) send fewer frames; what a connection
 * holds for such a frame must still be what flow control lets the client send, not what a header
 * claims: a DATA frame is kept only within the connection's and its stream's windows (beyond
 * them, FLOW_CONTROL_ERROR, which RFC 9113 §6.9.1 allows for a frame the receiver cannot take),
 * a header block's only within its cap, an unknown type's bytes are dropped as they come (it is
 * ignored, §5.5), and the other types, whose payloads are a few bytes (or a GOAWAY's debug data,
 * or SETTINGS with thousands of entries), are refused.
 */
import { connectionError, enhanceYourCalm, H2Code } from './errors.ts'
import { FrameType, type FrameHeader } from './frames.ts'
import type { ReceiveFlow } from './flow.ts'
import type { StreamTable } from './streams.ts'

/** True: keep the frame; false: skip its bytes (an unknown type). Throws the connection error otherwise. */
export function admitCutFrame(h: FrameHeader, flow: ReceiveFlow, streams: StreamTable, maxHeaderBlockBytes: number): boolean {
  switch (h.type) {
    case FrameType.DATA:
      if (flow.fits(h.length) && streams.mayTake(h.streamId, h.length)) return true
      throw connectionError(H2Code.FLOW_CONTROL_ERROR, `DATA frame of ${h.length} bytes on stream ${h.streamId} beyond what flow control lets it send (RFC 9113 §6.9.1)`)
    case FrameType.HEADERS:
    case FrameType.CONTINUATION:
      if (h.length <= maxHeaderBlockBytes) return true
      throw enhanceYourCalm(`header block above ${maxHeaderBlockBytes} bytes`)
    case FrameType.PRIORITY:
    case FrameType.RST_STREAM:
    case FrameType.SETTINGS:
    case FrameType.PUSH_PROMISE:
    case FrameType.PING:
    case FrameType.GOAWAY:
    case FrameType.WINDOW_UPDATE:
      throw connectionError(H2Code.FRAME_SIZE_ERROR, `frame of type ${h.type} and ${h.length} bytes: only DATA and header blocks are read above 16 KiB`)
    default:
      return false
  }
}
