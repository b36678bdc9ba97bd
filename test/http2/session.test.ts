import { describe, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { frame, FrameType, Flag, Setting, windowUpdateFrame, rstStreamFrame, goawayFrame } from '../../src/http2/frames.ts'
import { RawClient } from './support/raw-client.ts'

/** A HEADERS frame for stream 1 without END_HEADERS: a header block left unfinished. */
const c1Block = (c: RawClient) => frame(FrameType.HEADERS, Flag.END_STREAM, 1, c.get(1).subarray(9, 12))
const u32 = (p: Uint8Array, off = 0) => new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(off)
/** Reads a request body to its end; its length. */
async function bodyLength(body: ReadableStream<Uint8Array>): Promise<number> {
  const reader = body.getReader()
  let n = 0
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.byteLength
  return n
}
const settingsOf = (p: Uint8Array) => {
  const m = new Map<number, number>()
  for (let i = 0; i < p.byteLength; i += 6) m.set((p[i]! << 8) | p[i + 1]!, u32(p, i + 2))
  return m
}

describe('connection start (RFC 9113 §3.4)', () => {
  test('the server preface is SETTINGS with our limits, then a larger connection window; client SETTINGS are acked', async () => {
    const c = new RawClient({ limits: { maxConcurrentStreams: 7, streamInitialWindowBytes: 100_000, streamWindowBytes: 200_000, connectionWindowBytes: 1_000_000 } }).start()
    await c.settle()
    const [first, second] = c.frames
    expect(first!.type).toBe(FrameType.SETTINGS)
    const s = settingsOf(first!.payload)
    expect(s.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(7)
    expect(s.get(Setting.INITIAL_WINDOW_SIZE)).toBe(100_000)
    expect(s.get(Setting.ENABLE_PUSH)).toBe(0)
    expect(second!.type).toBe(FrameType.WINDOW_UPDATE)
    expect(u32(second!.payload)).toBe(1_000_000 - 65_535)
    expect(c.ofType(FrameType.SETTINGS).some((f) => f.flags & Flag.ACK)).toBe(true)
  })
  test('SETTINGS_MAX_FRAME_SIZE is 256 KiB: a 100,000-byte DATA frame within the window is read whole (httpx frames its uploads by it)', async () => {
    const c = new RawClient({ limits: { streamInitialWindowBytes: 200_000, streamWindowBytes: 200_000 } }).start()
    await c.settle()
    expect(settingsOf(c.frames[0]!.payload).get(Setting.MAX_FRAME_SIZE)).toBe(256 * 1024)
    c.send(c.get(1, '/up', [], false), c.data(1, new Uint8Array(100_000).fill(7), true))
    await c.settle()
    expect(await bodyLength(c.requests[0]!.body!)).toBe(100_000)
    expect(c.goaway()).toBeUndefined()
    // One byte over it is a FRAME_SIZE_ERROR, by its header.
    c.send(frame(FrameType.DATA, 0, 3, new Uint8Array(256 * 1024 + 1)).subarray(0, 9))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.FRAME_SIZE_ERROR)
  })
  test('a frame above 16 KiB cut by a read is judged by its header before its bytes are held', async () => {
    // DATA beyond the stream window (64 KiB here): FLOW_CONTROL_ERROR once its header is in, not after 200,000 bytes.
    const a = new RawClient().start()
    a.send(a.get(1, '/up', [], false))
    const over = a.data(1, new Uint8Array(200_000))
    a.send(over.subarray(0, 9 + 1_000))
    await a.settle()
    expect(a.goaway()?.code).toBe(H2Code.FLOW_CONTROL_ERROR)
    // Within the windows it is kept and read whole, however it is cut.
    const b = new RawClient({ limits: { streamInitialWindowBytes: 200_000, streamWindowBytes: 200_000 } }).start()
    b.send(b.get(1, '/up', [], false))
    const within = b.data(1, new Uint8Array(150_000).fill(9), true)
    for (let at = 0; at < within.byteLength; at += 40_000) b.send(within.subarray(at, at + 40_000))
    await b.settle()
    expect(await bodyLength(b.requests[0]!.body!)).toBe(150_000)
    expect(b.goaway()).toBeUndefined()
    // An unknown type is ignored (RFC 9113 §5.5): its bytes are dropped as they come, and what follows is read.
    const c = new RawClient().start()
    const unknown = frame(0xfa, 0, 0, new Uint8Array(262_143))
    for (let at = 0; at < unknown.byteLength; at += 50_000) c.send(unknown.subarray(at, at + 50_000))
    c.send(frame(FrameType.PING, 0, 0, new Uint8Array(8).fill(5)))
    await c.settle()
    expect(c.ofType(FrameType.PING).some((f) => f.flags & Flag.ACK)).toBe(true)
    expect(c.goaway()).toBeUndefined()
    // A PING (8 bytes by definition) whose header says 20,000: FRAME_SIZE_ERROR at the header.
    const d = new RawClient().start()
    d.send(frame(FrameType.PING, 0, 0, new Uint8Array(20_000)).subarray(0, 100))
    await d.settle()
    expect(d.goaway()?.code).toBe(H2Code.FRAME_SIZE_ERROR)
  })
  test('a bad preface is a PROTOCOL_ERROR', async () => {
    const c = new RawClient()
    c.send(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
    expect(c.closed).toBe(true)
  })
  test('a first frame other than SETTINGS is a PROTOCOL_ERROR', async () => {
    const c = new RawClient()
    c.send(new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FrameType.PING, 0, 0, new Uint8Array(8)))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('a SETTINGS ACK as the first frame is a PROTOCOL_ERROR: it is not the client preface\'s SETTINGS', async () => {
    const c = new RawClient()
    c.send(new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FrameType.SETTINGS, Flag.ACK, 0), c.get(1))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
    expect(c.requests).toHaveLength(0)
  })
  test('a preface split across reads is accepted', async () => {
    const c = new RawClient()
    const pre = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    c.send(pre.subarray(0, 5))
    c.send(pre.subarray(5))
    c.send(frame(FrameType.SETTINGS, 0, 0))
    c.send(c.get(1))
    await c.settle()
    expect(c.requests).toHaveLength(1)
    expect(c.goaway()).toBeUndefined()
  })
})

describe('requests (RFC 9113 §8.2, §8.3)', () => {
  test('translated for HTTP/1.1: :authority becomes host, cookies are joined with "; "', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/a?b=1', [['cookie', 'a=1'], ['accept', '*/*'], ['cookie', 'b=2']]))
    await c.settle()
    const r = c.requests[0]!.request
    expect(r).toMatchObject({ method: 'GET', scheme: 'https', authority: 'example.test', path: '/a?b=1' })
    expect(r.headers).toEqual([['host', 'example.test'], ['accept', '*/*'], ['cookie', 'a=1; b=2']])
    expect(c.requests[0]!.body).toBeNull()
  })
  const base: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'h.test'], [':path', '/']]
  test.each([
    ['connection-specific field', [...base, ['connection', 'keep-alive']]],
    ['transfer-encoding', [...base, ['transfer-encoding', 'chunked']]],
    ['upgrade', [...base, ['upgrade', 'h2c']]],
    ['TE other than trailers', [...base, ['te', 'gzip']]],
    ['uppercase name', [...base, ['X-Up', '1']]],
    ['pseudo-header after a field', [[':method', 'GET'], [':scheme', 'https'], ['accept', '*'], [':path', '/']]],
    ['missing :path', base.slice(0, 3)],
    ['empty :path', [...base.slice(0, 3), [':path', '']]],
    ['a space in :path (it would split the upstream request line)', [...base.slice(0, 3), [':path', '/a b']]],
    [':path "/x HTTP/1.0"', [...base.slice(0, 3), [':path', '/x HTTP/1.0']]],
    ['a fragment in :path', [...base.slice(0, 3), [':path', '/a#b']]],
    ['a backslash in the path of :path (a URL parser reads it as "/")', [...base.slice(0, 3), [':path', '/a\\..\\admin']]],
    ['a non-ASCII byte in :path', [...base.slice(0, 3), [':path', '/caf\u00e9']]],
    ['duplicate :method', [...base, [':method', 'GET']]],
    ['unknown pseudo-header', [...base, [':protocol', 'websocket']]],
    ['response pseudo-header', [...base, [':status', '200']]],
    ['Host differs from :authority', [...base, ['host', 'other.test']]],
    ['Host with http\'s default port where the scheme is https', [...base, ['host', 'h.test:80']]],
    ['userinfo in :authority', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'u@h.test'], [':path', '/']]],
    ['CR in a value', [...base, ['x-a', 'a\rb']]],
    ['leading space in a value', [...base, ['x-a', ' a']]],
    ['a control character in a value (the HTTP/1.1 listener refuses it too)', [...base, ['x-a', 'a\u0001b']]],
    ['DEL in a value', [...base, ['x-a', 'a\u007fb']]],
    ['ESC in a cookie', [...base, ['cookie', 'a=\u001b[31m']]],
  ] as [string, [string, string][]][])('malformed: %s -> RST_STREAM PROTOCOL_ERROR, never reaches the owner as a request; told as a refusal (400, for its log and counters)', async (_, fields) => {
    const c = new RawClient().start()
    c.send(c.headers(1, fields))
    c.send(c.get(3))
    await c.settle()
    expect(c.rstCode(1)).toBe(H2Code.PROTOCOL_ERROR)
    expect(c.requests.map((s) => s.id)).toEqual([3])
    expect(c.goaway()).toBeUndefined()
    expect(c.refused.map((r) => [r.why, r.status, r.dispatched])).toEqual([['malformed', 400, false]])
    expect(c.refused[0]!.fields).toEqual(fields)
  })
  test('a tab inside a value and bytes 0x80-0xFF (obs-text) are accepted', async () => {
    const c = new RawClient().start()
    c.send(c.headers(1, [...base, ['x-a', 'a\tb'], ['x-b', 'caf\u00e9']]))
    await c.settle()
    expect(c.requests).toHaveLength(1)
  })
  test('te: trailers and a Host equal to :authority are accepted', async () => {
    const c = new RawClient().start()
    c.send(c.headers(1, [...base, ['te', 'trailers'], ['host', 'H.test']]))
    await c.settle()
    expect(c.requests).toHaveLength(1)
  })
  test('a Host and an :authority that differ only by the scheme\'s default port name the same (RFC 9110 §4.2.3)', async () => {
    const c = new RawClient().start()
    c.send(c.headers(1, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'h.test:443'], [':path', '/'], ['host', 'h.test']]))
    c.send(c.headers(3, [[':method', 'GET'], [':scheme', 'http'], [':authority', 'h.test'], [':path', '/'], ['host', 'H.test:80']]))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1, 3])
  })
  test('a header block split over CONTINUATION frames is one request', async () => {
    const c = new RawClient().start()
    const h = c.get(1, '/split', [['x-long', 'v'.repeat(100)]])
    const block = h.subarray(9)
    c.send(frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 10)), frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 50)), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(50)))
    await c.settle()
    expect(c.requests[0]?.request.path).toBe('/split')
  })
  test('a HEADERS frame with padding and priority fields, continued, is one request; one whose priority names its own stream is reset (§5.3.1)', async () => {
    const c = new RawClient().start()
    const block = c.get(1, '/padded', [['x-long', 'v'.repeat(100)]]).subarray(9)
    // Pad length 4, then the priority fields (depends on 0, weight 17), 20 bytes of the block, the padding.
    const first = Uint8Array.from([4, 0, 0, 0, 0, 16, ...block.subarray(0, 20), 0, 0, 0, 0])
    c.send(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.PADDED | Flag.PRIORITY, 1, first), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(20)))
    const self = c.get(3, '/self').subarray(9)
    c.send(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS | Flag.PRIORITY, 3, Uint8Array.from([0, 0, 0, 3, 16, ...self])))
    await c.settle()
    expect(c.requests.map((s) => [s.request.path, s.request.headers.at(-1)])).toEqual([['/padded', ['x-long', 'v'.repeat(100)]]])
    expect(c.ofType(FrameType.RST_STREAM, 3).map((f) => u32(f.payload))).toEqual([H2Code.PROTOCOL_ERROR])
  })
  test('a frame between HEADERS and CONTINUATION is a connection PROTOCOL_ERROR', async () => {
    const c = new RawClient().start()
    const block = c.get(1).subarray(9)
    c.send(frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 3)), frame(FrameType.PING, 0, 0, new Uint8Array(8)))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('PUSH_PROMISE from a client is a PROTOCOL_ERROR', async () => {
    const c = new RawClient().start()
    c.send(frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, new Uint8Array([0, 0, 0, 2, 0x82])))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('a body longer than content-length is a stream PROTOCOL_ERROR (§8.1.1)', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [['content-length', '3']], false), c.data(1, new Uint8Array(5), true))
    await c.settle()
    expect(c.rstCode(1)).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('bytes beyond content-length never reach a reader already waiting for the body: it gets the error only (§8.1.1, H2.CL)', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [['content-length', '3']], false))
    await c.settle()
    const reader = c.requests[0]!.body!.getReader()
    // The read is pending (the owner streams the body on, as the proxy does), then one DATA frame
    // brings the declared 3 bytes and a request after them.
    const first = reader.read()
    await c.settle()
    c.send(c.data(1, new TextEncoder().encode('abcGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n'), true))
    const got: string[] = []
    let failure: unknown
    try {
      for (let i = 0, next = first; i < 5; i++, next = reader.read()) {
        const { done, value } = await next
        if (done) break
        got.push(new TextDecoder().decode(value))
      }
    } catch (err) {
      failure = err
    }
    expect(got).toEqual([])
    expect(failure).toBeInstanceOf(Error)
    expect(c.rstCode(1)).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('more streams than SETTINGS_MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM', async () => {
    const c = new RawClient({ limits: { maxConcurrentStreams: 3 } }).start()
    c.send(c.get(1), c.get(3), c.get(5), c.get(7))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1, 3, 5])
    expect(c.rstCode(7)).toBe(H2Code.REFUSED_STREAM)
  })
  test('onFirstRead (where a "100 Continue" goes, RFC 9110 §10.1.1): once, at the first read of a body none of which has come; not when some came first', async () => {
    const calls: number[] = []
    const c = new RawClient({ onRequest: (s) => (s.onFirstRead = () => calls.push(s.id)) }).start()
    c.send(c.get(1, '/waiting', [], false))
    c.send(c.get(3, '/sending', [], false))
    await c.settle()
    c.send(c.data(3, new TextEncoder().encode('abc'), true))
    const [one, three] = c.requests.map((s) => s.body!.getReader())
    const first = one!.read()
    await c.settle()
    expect(calls).toEqual([1])
    expect(new TextDecoder().decode((await three!.read()).value)).toBe('abc')
    expect((await three!.read()).done).toBe(true)
    c.send(c.data(1, new TextEncoder().encode('x')), c.data(1, new TextEncoder().encode('y'), true))
    expect(new TextDecoder().decode((await first).value)).toBe('x')
    expect(new TextDecoder().decode((await one!.read()).value)).toBe('y')
    expect(calls).toEqual([1])
  })
  test('onFirstRead: a body that began before the first read, then paused, never gets it (no "100 Continue" in the middle of a body)', async () => {
    const calls: number[] = []
    const c = new RawClient({ onRequest: (s) => (s.onFirstRead = () => calls.push(s.id)) }).start()
    c.send(c.get(1, '/upload', [], false), c.data(1, new TextEncoder().encode('first')))
    await c.settle()
    const reader = c.requests[0]!.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('first')
    const next = reader.read() // the queue is empty now: the client's next DATA has not come
    await c.settle()
    expect(calls).toEqual([])
    c.send(c.data(1, new TextEncoder().encode('rest'), true))
    expect(new TextDecoder().decode((await next).value)).toBe('rest')
    expect(calls).toEqual([])
  })
  test('a body sent in DATA frames of a few bytes is queued gathered, not one entry per frame (outside review, fourteenth round)', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [], false))
    const bytes = new Uint8Array(20_000).map((_, i) => i % 251)
    // 4,000 frames of 5 bytes, all before the body is read (within the 65,535-byte window).
    const frames: Uint8Array[] = []
    for (let i = 0; i < bytes.length; i += 5) frames.push(c.data(1, bytes.subarray(i, i + 5), i + 5 === bytes.length))
    c.send(...frames)
    await c.settle()
    const chunks: Uint8Array[] = []
    for await (const chunk of c.requests[0]!.body!) chunks.push(chunk)
    expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true)
    // Before: 4,000 chunks, a view and a queue entry each (about 30 heap bytes per body byte; 128
    // such streams took a proxy from 30 to 308 MiB, and each frame went upstream as its own chunk).
    expect(chunks.length).toBeLessThan(10)
  })
  /** What reading a request body to its end gives: 'whole N' or 'cut' (the reader errors). */
  const readAll = async (body: ReadableStream<Uint8Array>) => {
    let n = 0
    try {
      for await (const chunk of body) n += chunk.byteLength
      return `whole ${n}`
    } catch {
      return 'cut'
    }
  }
  test('trailers above the header-list cap cut the request, never a body ended without them: 431 if no answer began (§10.5.1), else RST_STREAM', async () => {
    const c = new RawClient({ limits: { maxHeaderListBytes: 1000 }, onRequest: (s) => s.request.path === '/answered' && s.respond(200) }).start()
    c.send(c.get(1, '/waiting', [], false), c.data(1, new Uint8Array(100)))
    c.send(c.get(3, '/answered', [], false), c.data(3, new Uint8Array(100)))
    await c.settle()
    const bodies = c.requests.map((s) => readAll(s.body!))
    const big: [string, string][] = [['x-checksum', 'a'], ['x-big', 'b'.repeat(2000)]]
    c.send(c.headers(1, big, true), c.headers(3, big, true))
    await c.settle()
    expect(await Promise.all(bodies)).toEqual(['cut', 'cut'])
    expect(c.requests.map((s) => s.requestTrailers)).toEqual([undefined, undefined])
    expect(c.ofType(FrameType.HEADERS, 1).map((f) => [f.headers![0]![1], f.flags & Flag.END_STREAM])).toEqual([['431', Flag.END_STREAM]])
    expect(c.rstCode(1)).toBeUndefined()
    expect(c.rstCode(3)).toBe(H2Code.PROTOCOL_ERROR)
    expect(c.goaway()).toBeUndefined()
    expect(c.session.streamCount).toBe(0)
    // Trailers within the cap are taken whole.
    c.send(c.get(5, '/waiting', [], false), c.data(5, new Uint8Array(100)), c.headers(5, [['x-checksum', 'a']], true))
    await c.settle()
    expect(await readAll(c.requests[2]!.body!)).toBe('whole 100')
    expect(c.requests[2]!.requestTrailers).toEqual([['x-checksum', 'a']])
  })
  test('a header list above the limit gets 431 and does not reach the owner', async () => {
    const c = new RawClient({ limits: { maxHeaderListBytes: 1000 } }).start()
    c.send(c.get(1, '/', [['x-big', 'b'.repeat(2000)]]), c.get(3))
    await c.settle()
    expect(c.status(1)).toBe('431')
    // The proxy's own answer, as its HTTP/1.1 431: never stored, dated (RFC 9110 §6.6.1).
    const fields = c.ofType(FrameType.HEADERS, 1)[0]!.headers!
    expect(fields).toContainEqual(['cache-control', 'no-store'])
    expect(fields.find(([n]) => n === 'date')?.[1]).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
    expect(c.requests.map((s) => s.id)).toEqual([3])
  })
})

describe('responses', () => {
  test('HEADERS then DATA with END_STREAM; connection-specific fields are dropped; trailers end the stream', async () => {
    const c = new RawClient({
      onRequest: (s) => {
        s.respond(200, [['Content-Type', 'text/plain'], ['Connection', 'close, x-hop'], ['x-hop', '1'], ['keep-alive', 'x'], ['transfer-encoding', 'chunked']])
        s.write(new TextEncoder().encode('hel'))
        s.end(new TextEncoder().encode('lo'), [['X-Checksum', 'abc'], ['connection', 'close'], [':status', '500']])
      },
    }).start()
    c.send(c.get(1))
    await c.settle()
    expect(c.ofType(FrameType.HEADERS, 1)[0]!.headers).toEqual([[':status', '200'], ['content-type', 'text/plain']])
    expect(c.bodyOf(1)).toBe('hello')
    const trailer = c.ofType(FrameType.HEADERS, 1)[1]!
    expect(trailer.headers).toEqual([['x-checksum', 'abc']])
    expect(trailer.flags & Flag.END_STREAM).toBe(Flag.END_STREAM)
    expect(c.session.streamCount).toBe(0)
  })
  test('informational 1xx heads may precede the final one; 101 cannot be sent over HTTP/2 (§8.6)', async () => {
    let err: unknown
    const c = new RawClient({
      onRequest: (s) => {
        s.respond(103, [['link', '</a.css>; rel=preload']])
        try {
          s.respond(101)
        } catch (e) {
          err = e
        }
        s.respond(200, [], true)
      },
    }).start()
    c.send(c.get(1))
    await c.settle()
    expect(c.ofType(FrameType.HEADERS, 1).map((f) => [f.headers![0]![1], f.flags & Flag.END_STREAM])).toEqual([['103', 0], ['200', Flag.END_STREAM]])
    expect(err).toBeDefined()
  })
  test('each early answer\'s reset waits its own moment: a second answer does not take its reset along with the first one\'s (second opinion, twentieth round)', async () => {
    const c = new RawClient({ onRequest: (s) => s.respond(401, [], true) }).start()
    c.send(c.get(1, '/a', [], false))
    await Bun.sleep(6)
    c.send(c.get(3, '/b', [], false))
    await c.settle()
    for (let i = 0; i < 200 && c.rstCode(3) === undefined; i++) await Bun.sleep(2)
    const answer3 = c.ofType(FrameType.HEADERS, 3)[0]!
    const rst3 = c.ofType(FrameType.RST_STREAM, 3)[0]!
    expect(c.rstCode(1)).toBe(H2Code.NO_ERROR)
    // Never sooner than its own 10 ms (it went with stream 1's, about 4 ms after its answer).
    expect(rst3.at! - answer3.at!).toBeGreaterThanOrEqual(9)
  })
  test('a client that ends its upload before the held reset goes gets none: the stream is closed both ways (§5.1)', async () => {
    const c = new RawClient({ onRequest: (s) => s.respond(413, [], true) }).start()
    c.send(c.get(1, '/up', [], false))
    await c.settle()
    expect(c.status(1)).toBe('413')
    c.send(c.data(1, new Uint8Array(10), true))
    c.send(c.get(3, '/up2', [], false))
    await c.settle()
    c.send(c.headers(3, [['x-trailer', '1']], true)) // trailers end stream 3 the same way
    c.send(c.get(5, '/up3', [], false))
    await c.settle()
    c.send(rstStreamFrame(5, H2Code.CANCEL)) // and the client's own reset closes stream 5
    for (let i = 0; i < 10; i++) await Bun.sleep(5)
    expect(c.ofType(FrameType.RST_STREAM)).toHaveLength(0)
    expect(c.goaway()).toBeUndefined()
  })
  test('a response finished before the request body ends is followed by RST_STREAM NO_ERROR (§8.1), in a later write', async () => {
    const c = new RawClient({ onRequest: (s) => s.respond(413, [], true) }).start()
    c.send(c.get(1, '/up', [], false))
    await c.settle()
    expect(c.status(1)).toBe('413')
    // Not with the answer: curl 7.88 reads a reset in the same read as the answer's end and drops the answer.
    expect(c.ofType(FrameType.RST_STREAM)).toHaveLength(0)
    for (let i = 0; i < 100 && c.rstCode(1) === undefined; i++) await Bun.sleep(5)
    expect(c.rstCode(1)).toBe(H2Code.NO_ERROR)
    expect(c.ofType(FrameType.RST_STREAM, 1)[0]!.write!).toBeGreaterThan(c.ofType(FrameType.HEADERS, 1)[0]!.write!)
    c.send(c.data(1, new Uint8Array(100), true)) // late data on the closed stream is dropped, not an error
    await c.settle()
    expect(c.goaway()).toBeUndefined()
  })
})

describe('flow control (RFC 9113 §6.9)', () => {
  test('a slow reader pauses the response: no more than its window is sent, the producer is held at the high-water mark, WINDOW_UPDATE resumes it', async () => {
    let produced = 0
    const c = new RawClient({
      limits: { streamHighWaterBytes: 32 * 1024 },
      onRequest: (s) => {
        s.respond(200)
        // A producer like a proxied upstream: writes until told to wait, goes on at each drain.
        const pump = () => {
          while (produced < 1_000_000) {
            produced += 16 * 1024
            if (!s.write(new Uint8Array(16 * 1024))) return
          }
          s.end()
        }
        s.onDrain = pump
        pump()
      },
    }).start()
    c.send(c.get(1))
    await c.settle()
    const sent = () => c.ofType(FrameType.DATA, 1).reduce((n, f) => n + f.payload.byteLength, 0)
    expect(sent()).toBe(65_535) // the default stream and connection window
    // Produced: what was sent plus at most the high-water mark and one chunk.
    expect(produced).toBeLessThanOrEqual(65_535 + 32 * 1024 + 16 * 1024)
    const held = produced
    await c.settle()
    expect(produced).toBe(held)
    c.send(windowUpdateFrame(0, 100_000), windowUpdateFrame(1, 100_000))
    await c.settle()
    expect(sent()).toBe(165_535)
    expect(produced).toBeGreaterThan(held)
    expect(produced).toBeLessThanOrEqual(165_535 + 32 * 1024 + 16 * 1024)
  })
  test('bodies of several streams in small and large chunks, with a control frame among them, arrive byte for byte', async () => {
    // Chunks up to 1 KiB are copied into the output's buffer, larger ones kept aside (output.ts): both, in one flush and in several.
    const chunks: Record<number, number[]> = { 1: [100, 3000, 7], 3: [2000, 50, 17_000], 5: [900], 7: [1025, 1024, 1, 4096] }
    const pattern = (id: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (id * 31 + i * 7 + (i >> 8)) & 0xff)
    const c = new RawClient({
      onRequest: (s) => {
        s.respond(200)
        for (const n of chunks[s.id]!) s.write(pattern(s.id + n, n))
        s.end()
      },
    }).start()
    c.send(c.get(1), c.get(3), frame(FrameType.PING, 0, 0, new Uint8Array(8).fill(9)), c.get(5), c.get(7))
    await c.settle()
    for (const [id, sizes] of Object.entries(chunks)) {
      const got = Buffer.concat(c.ofType(FrameType.DATA, Number(id)).map((f) => f.payload))
      expect(got.equals(Buffer.concat(sizes.map((n) => pattern(Number(id) + n, n))))).toBe(true)
      expect(c.ofType(FrameType.DATA, Number(id)).at(-1)!.flags & Flag.END_STREAM).toBe(Flag.END_STREAM)
    }
    expect(c.ofType(FrameType.PING).map((f) => [f.flags, f.payload[0]])).toEqual([[Flag.ACK, 9]])
  })
  test('the client may raise the stream windows with SETTINGS_INITIAL_WINDOW_SIZE', async () => {
    const c = new RawClient({ onRequest: (s) => { s.respond(200); s.end(new Uint8Array(100_000)) } })
    c.start([[Setting.INITIAL_WINDOW_SIZE, 200_000]])
    c.send(windowUpdateFrame(0, 100_000))
    c.send(c.get(1))
    await c.settle()
    expect(c.ofType(FrameType.DATA, 1).reduce((n, f) => n + f.payload.byteLength, 0)).toBe(100_000)
  })
  test('a transport that does not take bytes stops DATA until drained()', async () => {
    const c = new RawClient({ onRequest: (s) => { s.respond(200); s.end(new Uint8Array(60_000)) } }).start()
    await c.settle()
    c.writable = false
    c.send(c.get(1)) // HEADERS and the first DATA go in one write, then the transport says "full"
    await c.settle()
    const before = c.ofType(FrameType.DATA, 1).length
    c.send(c.get(3))
    await c.settle()
    expect(c.ofType(FrameType.HEADERS, 3)).toHaveLength(0)
    c.writable = true
    c.session.drained()
    await c.settle()
    expect(c.ofType(FrameType.HEADERS, 3)).toHaveLength(1)
    expect(c.ofType(FrameType.DATA).length).toBeGreaterThan(before)
  })
  test('request body credit returns only as the owner reads it; sending past the window is a FLOW_CONTROL_ERROR', async () => {
    const c = new RawClient({ limits: { streamWindowBytes: 65_535 } }).start()
    c.send(c.get(1, '/up', [], false), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)))
    await c.settle()
    expect(c.ofType(FrameType.WINDOW_UPDATE, 1)).toHaveLength(0) // nothing read yet: no credit
    const reader = c.requests[0]!.body!.getReader()
    for (let i = 0; i < 3; i++) expect((await reader.read()).value?.byteLength).toBe(16_384)
    await c.settle()
    // Credit goes back in batches of at least half the window.
    expect(c.ofType(FrameType.WINDOW_UPDATE, 1).map((f) => u32(f.payload))).toEqual([32_768])
    // The window left is 65535 - 49152 + 32768 = 49151: 49152 more bytes break it.
    c.send(c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)))
    await c.settle()
    expect(c.rstCode(1)).toBe(H2Code.FLOW_CONTROL_ERROR)
    await expect(reader.read()).rejects.toBeDefined()
  })
  test('a stream whose reader takes nothing stops only itself: the connection window is credited as DATA arrives, so another stream\'s body gets through (§5.2.1)', async () => {
    const c = new RawClient({ limits: { connectionWindowBytes: 65_535, streamInitialWindowBytes: 65_535, streamWindowBytes: 65_535 } }).start()
    c.send(c.get(1, '/stalled', [], false), c.get(3, '/form', [], false))
    // Stream 1's whole window, never read (its upstream does not read): it had held the whole connection window.
    c.send(c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_383)))
    await c.settle()
    expect(c.ofType(FrameType.WINDOW_UPDATE, 0).map((f) => u32(f.payload)).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(32_768)
    expect(c.ofType(FrameType.WINDOW_UPDATE, 1)).toHaveLength(0) // stream 1 stays stopped by its own window
    c.send(c.data(3, new Uint8Array(16_384)), c.data(3, new Uint8Array(3_616), true))
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    const reader = c.requests[1]!.body!.getReader()
    let got = 0
    for (let r = await reader.read(); !r.done; r = await reader.read()) got += r.value.byteLength
    expect(got).toBe(20_000)
    // Stream 1 past its own window is still its error, and only its.
    c.send(c.data(1, new Uint8Array(1)))
    await c.settle()
    expect([c.rstCode(1), c.goaway()]).toEqual([H2Code.FLOW_CONTROL_ERROR, undefined])
  })
  test('past connectionUnreadBytes unread on the connection, its window is credited only as bytes are read: the bound whatever the stream count', async () => {
    const c = new RawClient({ limits: { connectionWindowBytes: 65_535, connectionUnreadBytes: 65_535, streamInitialWindowBytes: 65_535, streamWindowBytes: 65_535 } }).start()
    const connCredit = () => c.ofType(FrameType.WINDOW_UPDATE, 0).map((f) => u32(f.payload)).reduce((a, b) => a + b, 0)
    c.send(c.get(1, '/a', [], false), c.get(3, '/b', [], false))
    c.send(c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_384)), c.data(1, new Uint8Array(16_383)))
    await c.settle()
    expect(connCredit()).toBe(32_768) // within the cap: credited as it came
    c.send(c.data(3, new Uint8Array(16_384)), c.data(3, new Uint8Array(16_384)))
    await c.settle()
    expect(connCredit()).toBe(32_768) // past it: held back while nothing is read
    const reader = c.requests[0]!.body!.getReader()
    for (let got = 0; got < 65_535; ) got += (await reader.read()).value!.byteLength
    await c.settle()
    expect(connCredit()).toBeGreaterThanOrEqual(32_768 + 32_767) // read: what was held back goes (in batches of half the window)
    expect(c.goaway()).toBeUndefined()
  })
  test('padding and a discarded body give a stream its credit back but never grow its window', async () => {
    const K = 64 * 1024
    const c = new RawClient({ limits: { streamInitialWindowBytes: K, streamWindowBytes: 4 * K } }).start()
    c.send(c.get(1, '/pad', [], false))
    // 200 frames of one byte and 250 of padding: 50 KiB of window used, one byte of body.
    const padded = new Uint8Array(1 + 250 + 1)
    padded[0] = 250
    for (let i = 0; i < 200; i++) c.send(frame(FrameType.DATA, Flag.PADDED, 1, padded))
    await c.settle()
    const credits = c.ofType(FrameType.WINDOW_UPDATE, 1).map((f) => u32(f.payload))
    expect(credits.length).toBeGreaterThan(0)
    expect(credits.every((n) => n < K / 2 + 1000)).toBe(true) // credit for what came, no doubling
    expect(c.goaway()).toBeUndefined()
  })
  test('a stream whose reader keeps up doubles its window up to the largest, within a budget its connection\'s streams share; a closed stream gives its growth back', async () => {
    const K = 64 * 1024
    const c = new RawClient({ limits: { streamInitialWindowBytes: K, streamWindowBytes: 4 * K, streamWindowBudgetBytes: 3 * K } }).start()
    const credits = (id: number) => c.ofType(FrameType.WINDOW_UPDATE, id).map((f) => u32(f.payload))
    const readers = new Map<number, { read(): Promise<{ value?: Uint8Array }> }>()
    /** Sends half the stream's window and reads it: the credit back is due. */
    const half = async (id: number, bytes: number) => {
      for (let sent = 0; sent < bytes; sent += 16_384) c.send(c.data(id, new Uint8Array(Math.min(16_384, bytes - sent))))
      await c.settle()
      const s = c.requests.find((r) => r.id === id)!
      if (!readers.has(id)) readers.set(id, s.body!.getReader())
      let got = 0
      while (got < bytes) got += (await readers.get(id)!.read()).value!.byteLength
      await c.settle()
    }
    c.send(c.get(1, '/1', [], false), c.get(3, '/3', [], false), c.get(5, '/5', [], false), c.get(7, '/7', [], false))
    await c.settle()
    await half(1, K / 2)
    expect(credits(1)).toEqual([K / 2 + K]) // 64 KiB -> 128 KiB
    await half(1, K)
    expect(credits(1)).toEqual([K / 2 + K, K + 2 * K]) // 128 KiB -> 256 KiB, the largest: the 192 KiB budget is spent
    await half(3, K / 2)
    expect(credits(3)).toEqual([K / 2]) // nothing left to grow by
    c.requests[0]!.respond(204, [], true) // stream 1 ends (reset: its body was not done), its 192 KiB of growth go back
    await c.settle()
    await half(3, K / 2)
    expect(credits(3)).toEqual([K / 2, K / 2 + K])
    await half(5, K / 2)
    expect(credits(5)).toEqual([K / 2 + K])
    await half(7, K / 2)
    expect(credits(7)).toEqual([K / 2 + K]) // 3, 5 and 7 grew by 64 KiB each: the budget is spent again
    await half(3, K)
    expect(credits(3)).toEqual([K / 2, K / 2 + K, K]) // half of its 128 KiB read: credit, no growth
    expect(c.goaway()).toBeUndefined()
  })
  test('a WINDOW_UPDATE of 0 on an idle stream is a connection PROTOCOL_ERROR, never an RST_STREAM on the idle stream (§5.1, §6.4)', async () => {
    const c = new RawClient().start()
    c.send(frame(FrameType.WINDOW_UPDATE, 0, 3, new Uint8Array(4)))
    await c.settle()
    expect(c.ofType(FrameType.RST_STREAM)).toEqual([])
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('a WINDOW_UPDATE of 0 is a PROTOCOL_ERROR; overflowing 2^31-1 is a FLOW_CONTROL_ERROR', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [], false), frame(FrameType.WINDOW_UPDATE, 0, 1, new Uint8Array(4)))
    await c.settle()
    expect(c.rstCode(1)).toBe(H2Code.PROTOCOL_ERROR)
    c.send(windowUpdateFrame(0, 2 ** 31 - 1))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.FLOW_CONTROL_ERROR)
  })
})

describe('stream states and GOAWAY', () => {
  test('a client RST_STREAM ends the stream and errors its body', async () => {
    let closedWith: number | undefined = -1
    const c = new RawClient({ onRequest: (s) => (s.onClose = (code) => (closedWith = code)) }).start()
    c.send(c.get(1, '/up', [], false))
    const body = c.requests[0]!.body!
    c.send(rstStreamFrame(1, H2Code.CANCEL))
    await c.settle()
    expect(closedWith).toBe(H2Code.CANCEL)
    await expect(body.getReader().read()).rejects.toBeDefined()
    expect(c.session.streamCount).toBe(0)
  })
  test('HEADERS on a lower stream id never opened (skipped) is a connection PROTOCOL_ERROR (§5.1.1)', async () => {
    const c = new RawClient().start()
    c.send(c.get(5), c.get(3))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  // How stream 1 came to be no longer open, before a HEADERS (trailers) or DATA frame arrives on it.
  const closings: Record<string, (c: RawClient) => Uint8Array[]> = {
    'half-closed (remote): the client ended its side, no answer yet': (c) => [c.get(1, '/hold')],
    'closed: END_STREAM both ways': (c) => [c.get(1, '/answer')],
    'closed: reset by the client': (c) => [c.get(1, '/hold', [], false), rstStreamFrame(1, H2Code.CANCEL)],
    'closed: reset by us': (c) => [c.get(1, '/reset', [], false)],
    'closed: skipped, never opened (stream 3 opened first, §5.1.1)': (c) => [c.get(3, '/answer')],
  }
  type Outcome = ['goaway' | 'rst', number] | ['ignored']
  test.each([
    // HEADERS: a stream error in half-closed (remote) (§5.1); on a closed stream §5.1 names a connection error STREAM_CLOSED
    // (no frame of the client's can be in flight once it ended or reset the stream itself); frames in flight on a stream we
    // reset are discarded (§5.1); a lower id never opened is a new stream going backwards, PROTOCOL_ERROR (§5.1.1).
    ['HEADERS', 'half-closed (remote): the client ended its side, no answer yet', ['rst', H2Code.STREAM_CLOSED]],
    ['HEADERS', 'closed: END_STREAM both ways', ['goaway', H2Code.STREAM_CLOSED]],
    ['HEADERS', 'closed: reset by the client', ['goaway', H2Code.STREAM_CLOSED]],
    ['HEADERS', 'closed: reset by us', ['ignored']],
    ['HEADERS', 'closed: skipped, never opened (stream 3 opened first, §5.1.1)', ['goaway', H2Code.PROTOCOL_ERROR]],
    // DATA: §6.1 names a stream error STREAM_CLOSED on any stream not open, but for one we reset (discarded, §5.1).
    ['DATA', 'half-closed (remote): the client ended its side, no answer yet', ['rst', H2Code.STREAM_CLOSED]],
    ['DATA', 'closed: END_STREAM both ways', ['rst', H2Code.STREAM_CLOSED]],
    ['DATA', 'closed: reset by the client', ['rst', H2Code.STREAM_CLOSED]],
    ['DATA', 'closed: reset by us', ['ignored']],
    ['DATA', 'closed: skipped, never opened (stream 3 opened first, §5.1.1)', ['rst', H2Code.STREAM_CLOSED]],
  ] as [string, string, Outcome][])('%s on a stream %s -> %p (RFC 9113 §5.1, §5.1.1, §6.1)', async (type, closing, outcome) => {
    const c = new RawClient({
      onRequest: (s) => (s.request.path === '/answer' ? s.respond(204, [], true) : s.request.path === '/reset' ? s.reset(H2Code.CANCEL) : undefined),
    }).start()
    for (const f of closings[closing]!(c)) c.send(f) // each in its own read, as a client sends them a round trip apart
    await c.settle()
    const rstsBefore = c.ofType(FrameType.RST_STREAM, 1).length
    c.send(type === 'HEADERS' ? c.headers(1, [['x-trailer', '1']], true) : c.data(1, new Uint8Array(10), true))
    await c.settle()
    const rsts = c.ofType(FrameType.RST_STREAM, 1).slice(rstsBefore).map((f) => new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0))
    if (outcome[0] === 'goaway') {
      expect(c.goaway()?.code).toBe(outcome[1])
      expect(rsts).toEqual([])
      return
    }
    expect(c.goaway()).toBeUndefined()
    expect(rsts).toEqual(outcome[0] === 'rst' ? [outcome[1]] : [])
    c.send(c.get(5, '/answer')) // the connection goes on, the HPACK state in step
    await c.settle()
    expect(c.status(5)).toBe('204')
  })
  test('HEADERS below the last stream: STREAM_CLOSED for an id that was opened, PROTOCOL_ERROR for one skipped, among runs of both', async () => {
    const opened = [1, 5, 7, 13, 15, 17, 25]
    for (const id of [1, 3, 5, 7, 9, 11, 13, 17, 19, 23, 25]) {
      const c = new RawClient({ onRequest: (s) => s.respond(204, [], true) }).start()
      for (const o of opened) c.send(c.get(o))
      await c.settle()
      c.send(c.get(id))
      await c.settle()
      expect([id, c.goaway()?.code]).toEqual([id, opened.includes(id) ? H2Code.STREAM_CLOSED : H2Code.PROTOCOL_ERROR])
    }
  })
  test('frames in flight on a stream we reset are ignored; DATA on a stream closed cleanly is STREAM_CLOSED', async () => {
    const c = new RawClient({ onRequest: (s) => (s.request.path === '/reset' ? s.reset(H2Code.CANCEL) : s.respond(204, [], true)) }).start()
    c.send(c.get(1, '/reset', [], false), c.get(3, '/done'))
    await c.settle()
    c.send(c.data(1, new Uint8Array(10)), c.headers(1, [['x-trailer', '1']], true))
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.ofType(FrameType.RST_STREAM, 1)).toHaveLength(1)
    c.send(c.data(3, new Uint8Array(10)))
    await c.settle()
    expect(c.rstCode(3)).toBe(H2Code.STREAM_CLOSED)
  })
  test('content-length on a request without a body is a stream PROTOCOL_ERROR (§8.1.1)', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/', [['content-length', '5']]))
    await c.settle()
    expect(c.rstCode(1)).toBe(H2Code.PROTOCOL_ERROR)
    expect(c.requests).toHaveLength(0)
  })
  test('frames on idle streams are connection errors', async () => {
    const c = new RawClient().start()
    c.send(c.data(5, new Uint8Array(1)))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.PROTOCOL_ERROR)
  })
  test('shutdown(): GOAWAY with the last stream id, open streams finish, later streams are ignored, then close', async () => {
    const c = new RawClient().start()
    c.send(c.get(1), c.get(3))
    await c.settle()
    c.session.shutdown()
    await c.settle()
    expect(c.goaway()).toEqual({ lastStreamId: 3, code: H2Code.NO_ERROR })
    c.send(c.get(5))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1, 3])
    expect(c.closed).toBe(false)
    for (const s of c.requests) s.respond(204, [], true)
    await c.settle()
    expect(c.status(3)).toBe('204')
    expect(c.closed).toBe(true)
  })
  test('shutdown notice (RFC 9113 §6.8): GOAWAY of 2^31-1 first, a stream already on its way is still served, then the last stream id', async () => {
    const c = new RawClient().start()
    c.send(c.get(1))
    await c.settle()
    c.session.shutdown(H2Code.NO_ERROR, 'shutting down', true)
    await c.settle()
    expect(c.goaway()).toEqual({ lastStreamId: 2 ** 31 - 1, code: H2Code.NO_ERROR })
    // Sent before the client read the notice: taken, not refused.
    c.send(c.get(3))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1, 3])
    c.requests[0]!.respond(204, [], true)
    await c.settle()
    expect(c.closed).toBe(false)
    // A round trip later: the GOAWAY naming the last stream; one opened after it is not processed.
    c.session.shutdown()
    c.send(c.get(5))
    await c.settle()
    expect(c.ofType(FrameType.GOAWAY).map((f) => u32(f.payload))).toEqual([2 ** 31 - 1, 3])
    expect(c.requests.map((s) => s.id)).toEqual([1, 3])
    c.requests[1]!.respond(204, [], true)
    await c.settle()
    expect(c.status(3)).toBe('204')
    expect(c.closed).toBe(true)
  })
  test('after our GOAWAY, the body and trailers of streams opened past its last id are discarded (§6.8), up to a stream window each', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [], false))
    await c.settle()
    c.session.shutdown()
    // On their way before the client read the GOAWAY: two uploads, each with a body and trailers.
    c.send(c.get(3, '/late', [], false), c.get(5, '/late', [], false))
    for (const id of [3, 5]) c.send(c.data(id, new Uint8Array(16_384)), c.data(id, new Uint8Array(100)), c.headers(id, [['x-trailer', '1']], true))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1])
    expect(c.goaway()).toEqual({ lastStreamId: 1, code: H2Code.NO_ERROR })
    expect(c.ofType(FrameType.GOAWAY)).toHaveLength(1)
    expect(c.ofType(FrameType.RST_STREAM)).toEqual([])
    // Stream 1 is still served.
    c.send(c.data(1, new TextEncoder().encode('ok'), true))
    c.requests[0]!.respond(204, [], true)
    await c.settle()
    expect(c.status(1)).toBe('204')
    expect(c.closed).toBe(true)
  })
  test('after our GOAWAY, DATA beyond the window of a stream past its last id is a flood', async () => {
    const c = new RawClient({ limits: { streamWindowBytes: 65_535, connectionWindowBytes: 1 << 20 } }).start()
    c.send(c.get(1, '/up', [], false))
    c.session.shutdown()
    c.send(c.get(3, '/late', [], false))
    for (let i = 0; i < 100 && c.goaway()?.code !== H2Code.ENHANCE_YOUR_CALM; i++) c.send(c.data(3, new Uint8Array(16_384)))
    await c.settle()
    expect(c.ofType(FrameType.GOAWAY).map((f) => u32(f.payload, 4))).toEqual([H2Code.NO_ERROR, H2Code.ENHANCE_YOUR_CALM])
    // The second never names a higher stream than the first (§6.8: MUST NOT increase): stream 3 was not processed.
    expect(c.ofType(FrameType.GOAWAY).map((f) => u32(f.payload))).toEqual([1, 1])
  })
  test('a connection error after our GOAWAY repeats its last stream id, never one opened after it (§6.8)', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/slow'))
    await c.settle()
    c.session.shutdown()
    c.send(c.get(3, '/late'))
    await c.settle()
    c.send(frame(FrameType.PING, 0, 1, new Uint8Array(8))) // PING on a stream: a connection error
    await c.settle()
    expect(c.ofType(FrameType.GOAWAY).map((f) => [u32(f.payload), u32(f.payload, 4)])).toEqual([[1, H2Code.NO_ERROR], [1, H2Code.PROTOCOL_ERROR]])
    expect(c.requests.map((s) => s.id)).toEqual([1])
  })
  test('a client GOAWAY closes the session once its streams are done', async () => {
    const c = new RawClient().start()
    c.send(c.get(1), goawayFrame(1, 0))
    await c.settle()
    expect(c.closed).toBe(false)
    c.requests[0]!.respond(200, [], true)
    await c.settle()
    expect(c.closed).toBe(true)
  })
  test('a client GOAWAY gets ours, naming the last stream processed: a request opened after it is known not to be (RFC 9113 §6.8, §8.7)', async () => {
    const c = new RawClient().start()
    // Stream 1 stays open (no END_STREAM), the client says GOAWAY, then opens stream 3.
    c.send(c.get(1, '/p1', [], false), goawayFrame(0, 0), c.get(3))
    await c.settle()
    expect(c.goaway()).toEqual({ lastStreamId: 1, code: H2Code.NO_ERROR })
    expect(c.requests.map((s) => s.id)).toEqual([1])
    expect(c.closed).toBe(false)
    c.requests[0]!.respond(200, [], true)
    await c.settle()
    expect(c.closed).toBe(true)
  })
  test('head timeout: no request within headTimeoutMs of the connection, or a header block left unfinished, ends it with GOAWAY', async () => {
    // The owner is told each time (its counters: the HTTP/1.1 listener counts a head that never came whole too).
    let told = 0
    const onHeadTimeout = () => void told++
    const quiet = new RawClient({ limits: { headTimeoutMs: 1000 }, onHeadTimeout }).start()
    quiet.now = 999
    quiet.session.sweep()
    expect(quiet.closed).toBe(false)
    expect(told).toBe(0)
    quiet.now = 1000
    quiet.session.sweep()
    await quiet.settle()
    expect(quiet.goaway()?.code).toBe(H2Code.NO_ERROR)
    expect(quiet.closed).toBe(true)
    expect(told).toBe(1)
    // A HEADERS frame without END_HEADERS, and no CONTINUATION: the block's own deadline.
    const half = new RawClient({ limits: { headTimeoutMs: 1000 }, onHeadTimeout }).start()
    half.send(c1Block(half))
    half.now = 5000
    half.session.sweep()
    half.session.sweep()
    await half.settle()
    expect(half.closed).toBe(true)
    expect(half.requests).toHaveLength(0)
    expect(told).toBe(2)
  })
  test('head timeout: once a request came whole, an idle connection is the idle timeout\'s (keepalive), not the head timeout\'s', async () => {
    const c = new RawClient({ limits: { headTimeoutMs: 1000, idleTimeoutMs: 60_000 } }).start()
    c.send(c.get(1))
    await c.settle()
    c.requests[0]!.respond(204, [], true)
    await c.settle()
    c.now = 30_000
    c.session.sweep()
    expect(c.closed).toBe(false)
  })
  test('idle timeout: sweep() closes a session without streams after idleTimeoutMs, with GOAWAY', async () => {
    const c = new RawClient({ limits: { idleTimeoutMs: 1000 } }).start()
    c.send(c.get(1))
    c.now = 5000
    c.session.sweep()
    expect(c.closed).toBe(false) // a stream is open
    c.requests[0]!.respond(200, [], true)
    await c.settle()
    c.now = 5999
    c.session.sweep()
    expect(c.closed).toBe(false)
    c.now = 6001
    c.session.sweep()
    await c.settle()
    expect(c.closed).toBe(true)
    expect(c.goaway()?.code).toBe(H2Code.NO_ERROR)
  })
})

test('an owner callback that throws is reported and does not break the connection', async () => {
  const errors: unknown[] = []
  const c = new RawClient({
    onRequest: (s) => {
      if (s.request.path === '/throw') throw new Error('owner bug')
      s.onClose = () => {
        throw new Error('owner bug in onClose')
      }
      s.respond(204, [], true)
    },
    onError: (e) => errors.push(e),
  })
  c.start()
  c.send(c.get(1, '/throw'), c.get(3, '/ok'))
  await c.settle()
  expect(c.rstCode(1)).toBe(H2Code.INTERNAL_ERROR)
  expect(c.status(3)).toBe('204')
  expect(errors.map((e) => (e as Error).message)).toEqual(['owner bug', 'owner bug in onClose'])
  expect(c.goaway()).toBeUndefined()
})
