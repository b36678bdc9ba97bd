/**
 * End to end on a real socket: a client that grants no window credit holds the response source
 * (what would be the upstream) after at most its window plus the stream's queue.
 */
import { afterEach, expect, test } from 'bun:test'
import { frame, FrameType, Flag, PREFACE, settingsFrame } from '../../src/http2/frames.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { FrameSplitter } from './support/frame-splitter.ts'
import { startServer, type TestH2Server } from './support/h2-server.ts'

let server: TestH2Server | undefined
afterEach(() => {
  server?.close()
  server = undefined
})

test('a reader that sends no WINDOW_UPDATE gets 65535 bytes, and the source is paused near that', async () => {
  server = startServer({ tls: false })
  const frames = new FrameSplitter()
  let dataBytes = 0
  const sock = await Bun.connect({
    hostname: '127.0.0.1',
    port: server.port,
    socket: {
      data(_, d) {
        frames.push(d, (h) => {
          if (h.type === FrameType.DATA) dataBytes += h.length
        })
      },
    },
  })
  try {
    const block = new HpackEncoder().encode([[':method', 'GET'], [':scheme', 'http'], [':authority', 'a'], [':path', '/big?bytes=100000000']])
    sock.write(Buffer.concat([PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block)]))
    for (let i = 0; i < 200 && dataBytes < 65_535; i++) await Bun.sleep(10)
    expect(dataBytes).toBe(65_535)
    await Bun.sleep(200) // room for a source that is not held back to run on
    expect(dataBytes).toBe(65_535)
    // Window (64 KiB) + the stream's queue high-water mark (64 KiB) + one source chunk (64 KiB) + one in the pipe.
    expect(server.bigProduced).toBeLessThanOrEqual(65_535 + 3 * 64 * 1024)
  } finally {
    sock.end()
  }
})
