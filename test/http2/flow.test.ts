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
  const stream = (id: number): StreamWindow => ({ id, recvWindow: W, recvUnacked: 0, recvTarget: W, recvCreditedAtMs: 0, recvLagged: false, recvQueuedBytes: 0 })
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

/** The increments of one stream's WINDOW_UPDATE frames pushed. */
function streamCredits(frames: Uint8Array[], id: number): number[] {
  const v = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset, f.byteLength)
  return frames.filter((f) => f[3] === 0x8 && v(f).getUint32(5) === id).map((f) => v(f).getUint32(9) & 0x7fffffff)
}

/**
 * One stream whose reader takes half a window every `stepMs` (a fake clock), `rounds` times, on a
 * flow with a 100 ms round trip (a far client) or none: the stream credits it sent.
 */
function paced(roundTripMs: number, stepMs: number, rounds: number): number[] {
  const frames: Uint8Array[] = []
  let nowMs = 1_000
  const windows = { connectionWindowBytes: 8 << 20, connectionUnreadBytes: 16 << 20, streamInitialWindowBytes: 65_536, streamWindowBytes: 4 << 20, streamWindowBudgetBytes: 8 << 20 }
  const flow = new ReceiveFlow(windows, (f) => void frames.push(f), roundTripMs, () => nowMs)
  flow.start()
  const s: StreamWindow = { id: 1, recvWindow: 65_536, recvUnacked: 0, recvTarget: 65_536, recvCreditedAtMs: 0, recvLagged: false, recvQueuedBytes: 0 }
  flow.opened(s)
  for (let i = 0; i < rounds; i++) {
    nowMs += stepMs
    const half = s.recvTarget / 2
    flow.chargeConnection(half)
    flow.chargeStream(s, half)
    flow.consumed(s, half, true, true)
  }
  return streamCredits(frames, 1)
}

test('a far stream whose reader takes each half window within two round trips grows its window (doubling) up to the far maximum', () => {
  // 100 ms round trip, half a window read every 60 ms: credit is the half read plus the growth
  // (64 KiB doubled five times to 4 MiB), then the half read.
  expect(paced(100, 60, 9)).toEqual([98_304, 196_608, 393_216, 786_432, 1_572_864, 3_145_728, 2_097_152, 2_097_152, 2_097_152])
})

test('a far stream whose reader is slower than that (a slow upstream) keeps its window, or gives growth back: the client waits on the reader, not on the link', () => {
  // Half a window every 250 ms, more than two round trips: credit for what was read only.
  expect(paced(100, 250, 5)).toEqual([32_768, 32_768, 32_768, 32_768, 32_768])
  // A reader that slows down after growing (bytes wait for it) stops the growth...
  const credits = (steps: [number, number][], id: number) => {
    const frames: Uint8Array[] = []
    let nowMs = 0
    const flow = new ReceiveFlow({ connectionWindowBytes: 8 << 20, connectionUnreadBytes: 16 << 20, streamInitialWindowBytes: 65_536, streamWindowBytes: 4 << 20, streamWindowBudgetBytes: 8 << 20 }, (f) => void frames.push(f), 100, () => nowMs)
    flow.start()
    const s = { id, recvWindow: 65_536, recvUnacked: 0, recvTarget: 65_536, recvCreditedAtMs: 0, recvLagged: false, recvQueuedBytes: 0 }
    flow.opened(s)
    for (const [stepMs, queued] of steps) {
      nowMs += stepMs
      s.recvQueuedBytes = queued
      const half = s.recvTarget / 2
      flow.chargeConnection(half)
      flow.chargeStream(s, half)
      flow.consumed(s, half, true, true)
    }
    return { sent: streamCredits(frames, id), target: s.recvTarget }
  }
  // ...and its window shrinks again, by half of each credit, toward the initial one; reads that
  // come fast after that (a burst once the upstream's socket drained) do not grow it again.
  expect(credits([[50, 0], [50, 0], [500, 65_536], [500, 65_536], [10, 0], [10, 0]], 3)).toEqual({ sent: [98_304, 196_608, 65_536, 49_152, 73_728, 73_728], target: 147_456 })
  // A slow first half window with nothing waiting for the reader is the client's pace (TCP slow
  // start on a new connection), not the reader's: no shrink, and the window grows once it is fast.
  expect(credits([[400, 0], [50, 0], [50, 0]], 5)).toEqual({ sent: [32_768, 98_304, 196_608], target: 262_144 })
})

test('a near stream (no round trip given) grows whatever the time between reads, up to its maximum', () => {
  expect(paced(0, 10_000, 9)).toEqual([98_304, 196_608, 393_216, 786_432, 1_572_864, 3_145_728, 2_097_152, 2_097_152, 2_097_152])
})
