/**
 * What a mutation fuzz of the session's input found (eleventh session), each case as the exact
 * frames that showed it, checked at the session level with the in-memory client.
 */
import { describe, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { frame, FrameType, windowUpdateFrame } from '../../src/http2/frames.ts'
import { RawClient } from './support/raw-client.ts'

describe('idle streams (RFC 9113 §5.1, §6.4): never named by our RST_STREAM', () => {
  test('a PRIORITY frame of 4 bytes on a stream not yet opened: GOAWAY FRAME_SIZE_ERROR, no RST_STREAM', async () => {
    const c = new RawClient().start()
    c.send(c.get(1), frame(FrameType.PRIORITY, 0, 5, new Uint8Array([0, 0, 0, 1])))
    await c.settle()
    expect(c.ofType(FrameType.RST_STREAM)).toEqual([])
    expect(c.goaway()).toEqual({ lastStreamId: 1, code: H2Code.FRAME_SIZE_ERROR })
  })
  test('a PRIORITY frame on a stream not yet opened that depends on itself: GOAWAY PROTOCOL_ERROR, no RST_STREAM', async () => {
    const c = new RawClient().start()
    c.send(frame(FrameType.PRIORITY, 0, 7, new Uint8Array([0, 0, 0, 7, 15])))
    await c.settle()
    expect(c.ofType(FrameType.RST_STREAM)).toEqual([])
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('an even stream id (ours, never pushed) below the last opened is idle: DATA and WINDOW_UPDATE 0 end the connection', async () => {
    const data = new RawClient().start()
    data.send(data.get(3), data.data(2, new Uint8Array(3)))
    await data.settle()
    expect(data.ofType(FrameType.RST_STREAM)).toEqual([])
    expect(data.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
    const wu = new RawClient().start()
    wu.send(wu.get(3), windowUpdateFrame(2, 0))
    await wu.settle()
    expect(wu.ofType(FrameType.RST_STREAM)).toEqual([])
    expect(wu.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('a well-formed PRIORITY frame on an idle stream is still ignored, and the stream opens later', async () => {
    const c = new RawClient().start()
    c.send(frame(FrameType.PRIORITY, 0, 5, new Uint8Array([0, 0, 0, 3, 15])), c.get(5))
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.requests.map((s) => s.id)).toEqual([5])
  })
})
