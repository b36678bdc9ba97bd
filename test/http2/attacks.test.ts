/**
 * Attack defences (RFC 9113 §10.5): each attack is sent, and the test asserts that the attacking
 * connection is closed with GOAWAY (or the request refused), that only a bounded number of its
 * streams reached the owner (the upstream is not flooded), and that other streams and clients
 * are still served.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { frame, FrameType, Flag, goawayFrame, PREFACE, rstStreamFrame, settingsFrame, windowUpdateFrame } from '../../src/http2/frames.ts'
import { encodeInt, HpackEncoder } from '../../src/http2/hpack.ts'
import { FrameSplitter } from './support/frame-splitter.ts'
import type { ServerStream } from '../../src/http2/stream.ts'
import { RawClient } from './support/raw-client.ts'
import { run, startServer, type TestH2Server } from './support/h2-server.ts'

const ping = (i: number) => frame(FrameType.PING, 0, 0, new Uint8Array(8).fill(i & 0xff))

describe('session level: each flood ends the connection with ENHANCE_YOUR_CALM, within its budget', () => {
  test('rapid reset (CVE-2023-44487): streams opened and cancelled one by one reach the owner at most the budget', async () => {
    const c = new RawClient({ limits: { maxResetsPerWindow: 50 } }).start()
    for (let i = 0; i < 1000 && !c.closed; i++) {
      const id = 1 + 2 * i
      c.send(c.get(id, '/slow')) // each in its own read, so the session hands it to the owner...
      c.send(rstStreamFrame(id, H2Code.CANCEL)) // ...before the reset arrives
    }
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.requests.length).toBeLessThanOrEqual(51)
    expect(c.closed).toBe(true)
  })
  test.each([
    ['WINDOW_UPDATE of 0', (id: number) => frame(FrameType.WINDOW_UPDATE, 0, id, new Uint8Array(4))],
    ['WINDOW_UPDATE past 2^31-1', (id: number) => windowUpdateFrame(id, 2 ** 31 - 1)],
    ['PRIORITY of 4 bytes', (id: number) => frame(FrameType.PRIORITY, 0, id, new Uint8Array(4))],
    ['DATA after END_STREAM', (id: number) => frame(FrameType.DATA, Flag.END_STREAM, id, new Uint8Array(1))],
  ])('"MadeYouReset" (CVE-2025-8671): requests we reset for a %s sent after they reached the owner count as cancelled ones', async (_, provoke) => {
    const c = new RawClient({ limits: { maxAbandonedPerWindow: 20 } }).start()
    for (let i = 0; i < 200 && !c.closed; i++) {
      const id = 1 + 2 * i
      c.send(c.get(id, '/slow')) // reaches the owner (the origin starts working on it)...
      c.send(provoke(id)) // ...then a frame that makes us reset it, before its answer began
    }
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.requests.length).toBeLessThanOrEqual(21)
  })
  test('streams opened after a GOAWAY (the client\'s, answered with ours) are ignored, and count against the same budget', async () => {
    const c = new RawClient({ limits: { maxResetsPerWindow: 20 } }).start()
    // Stream 1 stays open, so the connection does not simply close after the GOAWAY.
    c.send(c.get(1, '/up', [], false), goawayFrame(0, 0))
    for (let i = 1; i < 200 && !c.closed; i++) c.send(c.get(1 + 2 * i))
    await c.settle()
    expect(c.requests.map((s) => s.id)).toEqual([1])
    expect(c.ofType(FrameType.GOAWAY).map((f) => new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(4))).toEqual([H2Code.NO_ERROR, H2Code.ENHANCE_YOUR_CALM])
    expect(c.closed).toBe(true)
  })
  test('rapid reset within one read: a stream reset in the same chunk never reaches the owner', async () => {
    const c = new RawClient().start()
    const parts: Uint8Array[] = []
    for (let i = 0; i < 20; i++) parts.push(c.get(1 + 2 * i), rstStreamFrame(1 + 2 * i, H2Code.CANCEL))
    c.send(...parts)
    await c.settle()
    expect(c.requests).toHaveLength(0)
  })
  test('stream errors we answer count against the same budget (invalid requests in a loop)', async () => {
    const c = new RawClient({ limits: { maxResetsPerWindow: 20 } }).start()
    for (let i = 0; i < 200 && !c.closed; i++) c.send(c.headers(1 + 2 * i, [[':method', 'GET'], [':path', '/']]))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.requests).toHaveLength(0)
  })
  test('with the default budget, pages of 120 requests cancelled three times over (360 resets) keep the connection', async () => {
    const c = new RawClient().start()
    let id = 1
    for (let page = 0; page < 3; page++) {
      const ids = Array.from({ length: 120 }, () => (id += 2) - 2)
      for (const i of ids) c.send(c.get(i, '/img'))
      for (const i of ids) c.send(rstStreamFrame(i, H2Code.CANCEL))
    }
    c.send(c.get(id, '/next'))
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.requests).toHaveLength(361)
    expect(c.requests.at(-1)?.request.path).toBe('/next')
  })
  test('the budget is per window: resets spread over time are allowed', async () => {
    const c = new RawClient({ limits: { maxResetsPerWindow: 10, floodWindowMs: 1000 } }).start()
    for (let i = 0; i < 50; i++) {
      c.now = i * 200 // 5 resets per second
      c.send(c.get(1 + 2 * i))
      c.send(rstStreamFrame(1 + 2 * i, H2Code.CANCEL))
    }
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.requests).toHaveLength(50)
  })
  test('CONTINUATION flood (CVE-2024-27316): header bytes are capped before decoding', async () => {
    const c = new RawClient({ limits: { maxHeaderBlockBytes: 64 * 1024 } }).start()
    c.send(frame(FrameType.HEADERS, 0, 1, c.get(1).subarray(9)))
    const junk = new Uint8Array(16_384).fill(0x41)
    for (let i = 0; i < 1000 && !c.closed; i++) c.send(frame(FrameType.CONTINUATION, 0, 1, junk))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.requests).toHaveLength(0)
  })
  test('CONTINUATION flood of empty frames is capped by count', async () => {
    const c = new RawClient({ limits: { maxContinuationFrames: 32 } }).start()
    c.send(frame(FrameType.HEADERS, 0, 1, c.get(1).subarray(9)))
    for (let i = 0; i < 10_000 && !c.closed; i++) c.send(frame(FrameType.CONTINUATION, 0, 1))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  test.each([
    ['SETTINGS', () => settingsFrame([])],
    ['PING', () => ping(1)],
    ['WINDOW_UPDATE', () => windowUpdateFrame(0, 1)],
    ['PRIORITY', () => frame(FrameType.PRIORITY, 0, 1, new Uint8Array([0, 0, 0, 3, 16]))],
    ['unknown frame type', () => frame(0xfa, 0, 0, new Uint8Array(4))],
  ])('%s flood', async (_, make) => {
    const c = new RawClient().start()
    const one = make()
    const batch = new Uint8Array(one.byteLength * 100)
    for (let i = 0; i < 100; i++) batch.set(one, i * one.byteLength)
    for (let i = 0; i < 100 && !c.closed; i++) c.send(batch) // 10,000 frames
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  test.each([
    ['SETTINGS ACKs (we sent one SETTINGS)', (_: RawClient) => frame(FrameType.SETTINGS, Flag.ACK, 0)],
    ['RST_STREAM on a stream already closed', (_: RawClient) => rstStreamFrame(1, H2Code.CANCEL)],
    ['empty DATA on a stream we reset', (c: RawClient) => c.data(3, new Uint8Array(0))],
    ['padding-only DATA on a stream we reset', (_: RawClient) => frame(FrameType.DATA, Flag.PADDED, 3, Uint8Array.from([7, 0, 0, 0, 0, 0, 0, 0]))],
    ['empty DATA with END_STREAM on a stream we reset', (_: RawClient) => frame(FrameType.DATA, Flag.END_STREAM, 3, new Uint8Array(0))],
  ])('frames ignored on closed streams or as acks are counted too: a flood of %s', async (_, make) => {
    const c = new RawClient({ onRequest: (s) => (s.request.method === 'GET' ? s.respond(204, [], true) : s.reset(H2Code.CANCEL)) }).start()
    c.send(c.get(1), c.get(3, '/up', [], false)) // stream 1 answered and closed, stream 3 reset by us
    await c.settle()
    const one = make(c)
    const batch = new Uint8Array(one.byteLength * 100)
    for (let i = 0; i < 100; i++) batch.set(one, i * one.byteLength)
    for (let i = 0; i < 100 && !c.closed; i++) c.send(batch) // 10,000 frames
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  test('DATA with a payload on a stream we reset is dropped up to that stream\'s window, and credited to the connection; beyond: ENHANCE_YOUR_CALM', async () => {
    const c = new RawClient({ limits: { connectionWindowBytes: 100_000 }, onRequest: (s) => s.reset(H2Code.CANCEL) }).start()
    c.send(c.get(3, '/up', [], false))
    await c.settle()
    expect(c.rstCode(3)).toBe(H2Code.CANCEL)
    const one = c.data(3, new Uint8Array(199))
    let sent = 0
    for (; sent < 10_000 && !c.closed; sent++) c.send(one) // dropped for ever, without a count, before
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(sent).toBe(Math.floor((64 * 1024) / 199) + 1) // the default initial stream window, then the frame beyond it
    // Dropped bytes still reopen the connection window (§6.9): credit beyond the preface's.
    expect(c.ofType(FrameType.WINDOW_UPDATE, 0).slice(1).reduce((n, f) => n + new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0), 0)).toBeGreaterThanOrEqual(50_000)
  })
  test('a client whose upload was answered early sends up to a whole stream window before it sees our RST_STREAM: kept, and its connection window reopened', async () => {
    const c = new RawClient({ limits: { streamInitialWindowBytes: 100_000, streamWindowBytes: 100_000, connectionWindowBytes: 100_000 }, onRequest: (s) => s.respond(413, [], true) }).start()
    c.send(c.get(3, '/up', [], false), c.data(3, new Uint8Array(10_000)))
    await c.settle()
    for (let i = 0; i < 100 && c.rstCode(3) === undefined; i++) await Bun.sleep(5) // it goes a moment after the answer
    expect(c.rstCode(3)).toBe(H2Code.NO_ERROR) // answered before the body ended (§8.1): the body left on its way is dropped
    for (let i = 0; i < 9; i++) c.send(frame(FrameType.DATA, Flag.PADDED, 3, new Uint8Array(10_000))) // padding counts too
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    const credit = c.ofType(FrameType.WINDOW_UPDATE, 0).reduce((n, f) => n + new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0), 0)
    expect(credit).toBeGreaterThanOrEqual(50_000) // the client can go on sending
    c.send(c.get(5, '/next'))
    await c.settle()
    expect(c.requests.map((s) => s.request.path)).toEqual(['/up', '/next'])
    c.send(c.data(3, new Uint8Array(1))) // one byte more than the window of stream 3 allowed
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  test('HEADERS on a stream we reset are decoded (HPACK state) and ignored, and count against the reset budget', async () => {
    const c = new RawClient({ onRequest: (s) => (s.request.method === 'GET' ? s.respond(204, [], true) : s.reset(H2Code.CANCEL)) }).start()
    c.send(c.get(3, '/up', [], false))
    await c.settle()
    expect(c.rstCode(3)).toBe(H2Code.CANCEL)
    c.send(c.headers(3, [['x-trailer', 'first']]), c.get(5, '/next')) // trailers in flight when we reset: a race, not a flood
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.status(5)).toBe('204') // the trailer's table entry was taken in: /next decodes right
    for (let i = 0; i < 10_000 && !c.closed; i++) c.send(c.headers(3, [['x-trailer', `n${i}`]])) // each a new literal: the decoder works
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.requests.map((s) => s.request.path)).toEqual(['/up', '/next'])
  })
  test('empty DATA flood on an open stream', async () => {
    const c = new RawClient().start()
    c.send(c.get(1, '/up', [], false))
    for (let i = 0; i < 10_000 && !c.closed; i++) c.send(c.data(1, new Uint8Array(0)))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  /** An owner that reads each request body to its end, so window credit goes back and the client can go on sending, as through the proxy. */
  const drainBodies = (s: ServerStream) =>
    void (async () => {
      if (s.body) for await (const _ of s.body);
      s.respond(204, [], true)
    })().catch(() => {})
  /** Sends `one` up to `max` times on stream 1 (open, its body read), in reads of 1000 frames; returns how many went before the GOAWAY. */
  async function tinyFrames(c: RawClient, one: Uint8Array, max: number): Promise<number> {
    const batch = new Uint8Array(one.byteLength * 1000)
    for (let i = 0; i < 1000; i++) batch.set(one, i * one.byteLength)
    let sent = 0
    for (; sent < max && !c.closed; sent += 1000) {
      c.send(batch)
      await c.settle()
    }
    return sent
  }
  test.each([
    ['one byte each', frame(FrameType.DATA, 0, 1, new Uint8Array(1))],
    ['one byte each, padded with 200 (a padding-only frame is an empty one, counted apart)', frame(FrameType.DATA, Flag.PADDED, 1, Uint8Array.from([200, 0x61, ...new Uint8Array(200)]))],
  ])('tiny DATA frames on an open stream whose body is read (%s): GOAWAY ENHANCE_YOUR_CALM long before 1,000,000 frames', async (_, one) => {
    const c = new RawClient({ onRequest: drainBodies }).start()
    c.send(c.get(1, '/up', [], false))
    const sent = await tinyFrames(c, one, 1_000_000)
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(sent).toBeLessThanOrEqual(20_000)
  })
  test('what real clients send keeps the connection: gRPC-like messages of 5 and 20 bytes (200,000 frames), keystrokes of 1 byte 100 a second for a minute, 5,000 bodiless POSTs ended by an empty DATA frame', async () => {
    const c = new RawClient({ onRequest: drainBodies }).start()
    c.send(c.get(1, '/grpc', [], false))
    expect(await tinyFrames(c, c.data(1, new Uint8Array(5)), 100_000)).toBe(100_000)
    expect(await tinyFrames(c, c.data(1, new Uint8Array(20)), 100_000)).toBe(100_000)
    c.send(c.get(3, '/terminal', [], false))
    for (let i = 0; i < 6000; i++) {
      c.now += 10
      c.send(c.data(3, new Uint8Array(1)))
      if (i % 100 === 0) await c.settle()
    }
    for (let id = 5; id < 5 + 2 * 5000; id += 2) {
      c.send(c.get(id, '/post', [], false), c.data(id, new Uint8Array(0), true))
      if (id % 200 === 1) await c.settle()
    }
    await c.settle()
    expect(c.goaway()).toBeUndefined()
    expect(c.status(5 + 2 * 4999)).toBe('204')
  })
  test('a client that asks for answers (PING) without reading them cannot grow our queue without bound', async () => {
    const c = new RawClient({ limits: { maxPingsPerWindow: 1_000_000, maxQueuedControlBytes: 4096 } }).start()
    await c.settle()
    c.writable = false
    c.send(ping(0))
    await c.settle()
    for (let i = 0; i < 10_000 && !c.closed; i++) c.send(ping(i))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
    expect(c.bytesWritten).toBeLessThan(64 * 1024)
  })
  test('a client that asks for bodiless answers (HEAD, 204) without reading them cannot grow our queue without bound: their streams count until sent', async () => {
    const c = new RawClient({ limits: { maxConcurrentStreams: 100 }, onRequest: (s) => s.respond(204, [['x-note', 'an answer the client never reads']], true) }).start()
    await c.settle()
    c.writable = false
    c.send(c.get(1)) // its answer is the write that finds the client not reading
    await c.settle()
    for (let i = 1; i < 50; i++) c.send(c.get(1 + 2 * i))
    await c.settle()
    // Answered, but not sent: the streams stay open until their END_STREAM goes out.
    expect(c.session.streamCount).toBe(49)
    c.writable = true
    c.session.drained()
    await c.settle()
    expect(c.session.streamCount).toBe(0)
    expect(c.ofType(FrameType.HEADERS)).toHaveLength(50)
    c.writable = false
    c.send(c.get(101)) // again the answer that finds the client not reading
    await c.settle()
    for (let i = 51; i < 5000 && !c.closed; i++) {
      c.send(c.get(1 + 2 * i))
      if (i % 100 === 0) await c.settle()
    }
    await c.settle()
    // Each answer was queued and its stream closed at once, so the client could always open more:
    // 4950 answers waited for a client that reads nothing. Now 100 streams stay open, the rest are
    // refused, and the refusals end the connection.
    expect(c.requests.length).toBeLessThanOrEqual(51 + 101)
    expect(c.goaway()?.code).toBe(H2Code.ENHANCE_YOUR_CALM)
  })
  test('HPACK bomb: a small block naming a large table entry many times gets 431; the connection goes on', async () => {
    const c = new RawClient({ limits: { maxHeaderListBytes: 16 * 1024 } }).start()
    const big = 'x'.repeat(4000)
    const len = new Uint8Array(4)
    const lenEnd = encodeInt(len, 0, big.length, 7, 0)
    const block = Uint8Array.from([
      0x82, 0x87, 0x84, 0x41, 0x01, 0x61, // GET https / :authority "a"
      0x40, 0x01, 0x62, ...len.subarray(0, lenEnd), ...Buffer.from(big), // literal "b: xxx..." with indexing (index 62)
      ...new Array<number>(1000).fill(0xbe), // 1000 references to it: ~4 MB decoded from ~1 KB
    ])
    expect(block.byteLength).toBeLessThan(6000)
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block))
    c.send(c.get(3, '/after'))
    await c.settle()
    expect(c.status(1)).toBe('431')
    expect(c.requests.map((s) => s.request.path)).toEqual(['/after'])
    expect(c.goaway()).toBeUndefined()
  })
  test('HPACK: a dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE is a COMPRESSION_ERROR', async () => {
    const c = new RawClient({ limits: { headerTableBytes: 4096 } }).start()
    const block = new Uint8Array(8)
    const end = encodeInt(block, 0, 1 << 20, 5, 0x20)
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Uint8Array.from([...block.subarray(0, end), 0x82, 0x87, 0x84])))
    await c.settle()
    expect(c.goaway()?.code).toBe(H2Code.COMPRESSION_ERROR)
  })
})

describe('socket level: the attacker is cut off, other clients are served', () => {
  let server: TestH2Server | undefined
  afterEach(() => {
    server?.close()
    server = undefined
  })

  /** Sends `parts` on a new h2c connection; returns the GOAWAY code received (if any). */
  async function attack(port: number, parts: Uint8Array[]): Promise<number | undefined> {
    const frames = new FrameSplitter()
    let goaway: number | undefined
    const { promise: closed, resolve } = Promise.withResolvers<void>()
    const sock = await Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        data(_, d) {
          frames.push(d, (h, payload) => {
            if (h.type === FrameType.GOAWAY) goaway = new DataView(payload.buffer, payload.byteOffset + 4, 4).getUint32(0)
          })
        },
        close: () => resolve(),
        error: () => resolve(),
      },
    })
    try {
      for (const p of parts) {
        if (sock.write(p) < p.byteLength) break
        await Bun.sleep(0)
      }
      await Promise.race([closed, Bun.sleep(5000)])
    } finally {
      sock.end()
    }
    return goaway
  }

  const enc = () => new HpackEncoder(4096)
  const req = (e: HpackEncoder, id: number, path: string) =>
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, e.encode([[':method', 'GET'], [':scheme', 'http'], [':authority', 'a'], [':path', path]]))

  const attacks: [string, () => Uint8Array[]][] = [
    ['rapid reset', () => {
      const e = enc()
      const out = [PREFACE, settingsFrame([])]
      for (let i = 0; i < 2000; i++) out.push(req(e, 1 + 2 * i, '/wait?ms=1000'), rstStreamFrame(1 + 2 * i, H2Code.CANCEL))
      return out
    }],
    ['CONTINUATION flood', () => {
      const out = [PREFACE, settingsFrame([]), frame(FrameType.HEADERS, 0, 1, new Uint8Array([0x82, 0x86, 0x84]))]
      for (let i = 0; i < 500; i++) out.push(frame(FrameType.CONTINUATION, 0, 1, new Uint8Array(16_000)))
      return out
    }],
    ['SETTINGS flood', () => [PREFACE, ...Array.from({ length: 2000 }, () => settingsFrame([]))]],
    ['PING flood', () => [PREFACE, settingsFrame([]), ...Array.from({ length: 2000 }, (_, i) => ping(i))]],
    ['empty DATA flood', () => {
      const e = enc()
      const head = frame(FrameType.HEADERS, Flag.END_HEADERS, 1, e.encode([[':method', 'POST'], [':scheme', 'http'], [':authority', 'a'], [':path', '/hash']]))
      return [PREFACE, settingsFrame([]), head, ...Array.from({ length: 2000 }, () => frame(FrameType.DATA, 0, 1))]
    }],
    ['1-byte DATA flood', () => {
      const e = enc()
      const head = frame(FrameType.HEADERS, Flag.END_HEADERS, 1, e.encode([[':method', 'POST'], [':scheme', 'http'], [':authority', 'a'], [':path', '/hash']]))
      const one = frame(FrameType.DATA, 0, 1, new Uint8Array(1))
      const batch = new Uint8Array(one.byteLength * 1000).map((_, i) => one[i % one.byteLength]!)
      return [PREFACE, settingsFrame([]), head, ...Array.from({ length: 30 }, () => batch)] // 30,000 frames
    }],
  ]
  for (const [name, build] of attacks) {
    test(`${name}: GOAWAY ENHANCE_YOUR_CALM, a bounded number of requests reach the handler, a client already connected and a new one are served`, async () => {
      const s = (server = startServer({ tls: false, limits: { maxResetsPerWindow: 100 } }))
      // A well-behaved client with a request in flight during the attack.
      const before = run(['curl', '-sS', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${s.url}/wait?ms=500`], { timeoutMs: 15_000 })
      await Bun.sleep(100)
      const code = await attack(s.port, build())
      expect(code).toBe(H2Code.ENHANCE_YOUR_CALM)
      const attackerRequests = s.requests.filter((r) => r.path === '/wait?ms=1000' || r.path === '/hash').length
      expect(attackerRequests).toBeLessThanOrEqual(101)
      expect((await before).stdout).toBe('200 2')
      const after = await run(['curl', '-sS', '--http2-prior-knowledge', `${s.url}/hello`], { timeoutMs: 10_000 })
      expect(after.stdout).toBe('hello GET /hello\n')
    })
  }
})
