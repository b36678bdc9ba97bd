/** prepareBody: small bodies are read whole (declared or chunked), larger ones stream in order, a failing body is reported. */
import { expect, test } from 'bun:test'
import { prepareBody, REPLAYABLE_BODY_BYTES } from '../../src/proxy/request-body.ts'
import { SocketBodyStream } from '../../src/http1/body-stream.ts'

/** A body made of these chunks; `failAfter` makes the stream error once that many were read. */
function bodyOf(chunks: Uint8Array[], failAfter?: number): ReadableStream<Uint8Array> & { pulled: () => number } {
  let i = 0
  const s = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (failAfter !== undefined && i === failAfter) return c.error(new Error('connection closed'))
        if (i < chunks.length) c.enqueue(chunks[i++]!)
        else c.close()
      },
    },
    { highWaterMark: 0 },
  )
  return Object.assign(s, { pulled: () => i })
}

const filled = (n: number, byte: number) => new Uint8Array(n).fill(byte)

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer())
}

test('a small chunked body (no declared length) is read whole and joined in order', async () => {
  const p = await prepareBody(bodyOf([filled(10, 1), filled(20, 2), filled(5, 3)]), undefined)
  expect(p.kind).toBe('buffered')
  const bytes = (p as { bytes: Uint8Array }).bytes
  expect(bytes.byteLength).toBe(35)
  expect([bytes[0], bytes[10], bytes[30], bytes[34]]).toEqual([1, 2, 3, 3])
})

test('a declared length of 0 is an empty buffered body; no body at all is none', async () => {
  expect(await prepareBody(null, 0)).toEqual({ kind: 'buffered', bytes: new Uint8Array(0) })
  expect(await prepareBody(null, undefined)).toEqual({ kind: 'none' })
})

test('a declared length of 0 with a body stream (an HTTP/2 stream not ended yet) is read to its end: bytes there fail it, none make it empty', async () => {
  // The session resets a stream whose DATA goes past content-length: its reader sees an error.
  expect((await prepareBody(bodyOf([filled(3, 1)], 0), 0)).kind).toBe('failed')
  const empty = bodyOf([])
  expect(await prepareBody(empty, 0)).toEqual({ kind: 'buffered', bytes: new Uint8Array(0) })
})

test('a chunked body longer than the read-ahead streams every byte, in order, reading no more than one chunk past the limit first', async () => {
  const chunk = 16 * 1024
  const n = REPLAYABLE_BODY_BYTES / chunk + 4
  const body = bodyOf(Array.from({ length: n }, (_, i) => filled(chunk, i + 1)))
  const p = await prepareBody(body, undefined)
  expect(p.kind).toBe('stream')
  expect(body.pulled()).toBe(REPLAYABLE_BODY_BYTES / chunk + 1)
  const all = await drain((p as { stream: ReadableStream<Uint8Array> }).stream)
  expect(all.byteLength).toBe(n * chunk)
  for (let i = 0; i < n; i++) expect(all[i * chunk]).toBe(i + 1)
})

test('a declared length above the limit is read ahead as far as the limit before it streams: a dribbled upload holds no upstream connection meanwhile (outside sweep, twentieth session)', async () => {
  const chunk = 16 * 1024
  const n = 8
  const body = bodyOf(Array.from({ length: n }, (_, i) => filled(chunk, i + 1)))
  const p = await prepareBody(body, n * chunk)
  expect(p.kind).toBe('stream')
  // Before: handed over at once, nothing pulled (the upstream asked for before a byte came).
  expect(body.pulled()).toBe(REPLAYABLE_BODY_BYTES / chunk + 1)
  const all = await drain((p as { stream: ReadableStream<Uint8Array> }).stream)
  expect(all.byteLength).toBe(n * chunk)
  for (let i = 0; i < n; i++) expect(all[i * chunk]).toBe(i + 1)
})

test('a declared large body whose client stops before the limit never reaches the upstream: the read-ahead ends in CLIENT_BODY_TIMEOUT', async () => {
  const dribble = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(1))
    },
  })
  const prepared = await prepareBody(dribble, 1_000_000, 100)
  expect(prepared).toEqual({ kind: 'failed', code: 'CLIENT_BODY_TIMEOUT', detail: expect.stringMatching(/^no request body bytes for \d+ms$/), ownTimer: true })
})

test('a body that fails while read ahead is reported as failed', async () => {
  expect((await prepareBody(bodyOf([filled(10, 1), filled(10, 2)], 1), undefined)).kind).toBe('failed')
  // The listener's own stall (it answered and counted the 408): not the read-ahead's timer.
  const listenerStall = new ReadableStream<Uint8Array>({ pull: (c) => c.error(Object.assign(new Error('no request body bytes for client_body_timeout (1000 ms)'), { code: 'CLIENT_BODY_TIMEOUT' })) })
  expect(await prepareBody(listenerStall, 10, 5000)).toEqual({ kind: 'failed', code: 'CLIENT_BODY_TIMEOUT', detail: 'no request body bytes for client_body_timeout (1000 ms)', ownTimer: false })
})

test('a body that stops while read ahead fails with CLIENT_BODY_TIMEOUT after the stall time, and is cancelled', async () => {
  let cancelled = false
  const stalled = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(3))
    },
    cancel() {
      cancelled = true
    },
  })
  const prepared = await prepareBody(stalled, 10, 100)
  expect(prepared).toEqual({ kind: 'failed', code: 'CLIENT_BODY_TIMEOUT', detail: expect.stringMatching(/^no request body bytes for \d+ms$/), ownTimer: true })
  expect(cancelled).toBe(true)
  // A body that keeps coming, each piece within the stall time, is read whole.
  let sent = 0
  const steady = new ReadableStream<Uint8Array>({
    async pull(c) {
      await Bun.sleep(30)
      if (sent++ === 5) c.close()
      else c.enqueue(new Uint8Array(2))
    },
  })
  const whole = await prepareBody(steady, undefined, 100)
  expect(whole.kind).toBe('buffered')
  expect((whole as { bytes: Uint8Array }).bytes.byteLength).toBe(10)
})

test('a body streamed past the read-ahead still names its client socket: the pump\'s writes reach the socket\'s read sizing', async () => {
  // Until the thirty-fourth session the stream that carries on after the read-ahead hid the
  // socket, so an HTTP/1.1 upload's reads were never widened however fast the upstream took it.
  const told: number[] = []
  const socket = new SocketBodyStream({ pause() {}, resume() {}, wrote: (_whole, bytes) => void told.push(bytes) }, () => {})
  const p = await Promise.all([prepareBody(socket.stream, 3 * 65_536), (async () => {
    for (let i = 0; i < 3; i++) socket.push(filled(65_536, i))
    socket.close()
  })()]).then(([prepared]) => prepared)
  expect(p.kind).toBe('stream')
  const stream = (p as { stream: ReadableStream<Uint8Array> }).stream
  const carried = SocketBodyStream.of(stream)
  expect(carried).toBe(socket)
  carried!.wrote(true, 1234)
  expect(told).toEqual([1234])
  expect((await drain(stream)).byteLength).toBe(3 * 65_536)
})
