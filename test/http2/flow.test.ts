/**
 * ReceiveFlow alone (http2/flow.ts): the connection credit it sends, frame by frame, as DATA is
 * charged and bytes are read, past the unread cap. The session-level cases are in session.test.ts.
 */
import { expect, test } from 'bun:test'
import { ReceiveFlow, type StreamWindow } from '../../src/http2/flow.ts'

/** The increments of the connection WINDOW_UPDATE frames pushed (type 0x8, stream 0). */
function connectionCredits(frames: Uint8Array[]): number[] {
  const v = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset, f.byteLength)
  return frames.filter((f) => f[3] === 0x8 && v(f).getUint32(5) === 0).map((f) => v(f).getUint32(9) & 0x7fffffff)
}

test('past the unread cap, credit freed by reading goes out at once while the client\'s window is low, not held in the batch', () => {
  const frames: Uint8Array[] = []
  const W = 65_535
  const flow = new ReceiveFlow({ connectionWindowBytes: W, connectionUnreadBytes: 32_768, streamInitialWindowBytes: W, streamWindowBytes: W, streamWindowBudgetBytes: 0 }, (f) => void frames.push(f))
  flow.start()
  const stream = (id: number): StreamWindow => ({ id, recvWindow: W, recvUnacked: 0, recvTarget: W })
  const data = (s: StreamWindow, bytes: number) => {
    flow.chargeConnection(bytes)
    flow.chargeStream(s, bytes)
  }
  const [s1, s2, s3] = [stream(1), stream(3), stream(5)]
  data(s1, 16_384)
  data(s1, 16_384) // 32,768 unread, at the cap: credited as it came, the batch (half the window) sent
  expect(connectionCredits(frames)).toEqual([32_768])
  data(s2, 16_384) // past the cap: held back
  data(s3, 16_384)
  data(s3, 16_384)
  data(s3, 16_383) // the client's window is 0 now
  expect(connectionCredits(frames)).toEqual([32_768])
  // 16 KiB of stream 1 read: that much of the held-back credit is due, and the client has none.
  flow.consumed(s1, 16_384, true, true)
  expect(connectionCredits(frames)).toEqual([32_768, 16_384])
  // Nothing more is due while nothing more is read.
  expect(() => flow.chargeConnection(16_385)).toThrow('connection window')
})
