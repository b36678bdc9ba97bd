/**
 * HTTP/2 toward the client, HTTP/1.1 toward the upstream: request smuggling through the downgrade
 * (H2.CL, H2.TE, CRLF and request-line injection, Host/:authority confusion). A raw h2 client on
 * the proxy's TLS listener writes each header field as an HPACK literal (the exact bytes, which a
 * real client's encoder would refuse to send), and a raw TCP origin records every byte it gets,
 * so each case checks what an origin's HTTP/1.1 parser would read.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Socket } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { H2Code } from '../../src/http2/errors.ts'
import { Flag, frame, FrameType, PREFACE, Setting, settingsFrame, type SettingsList } from '../../src/http2/frames.ts'
import { encodeInt, HpackDecoder, type HeaderField } from '../../src/http2/hpack.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** Each field as a literal without indexing, new name, no Huffman (RFC 7541 §6.2.2): the bytes as given. */
function literalBlock(fields: HeaderField[]): Uint8Array {
  const out: number[] = []
  const put = (s: string) => {
    const bytes = Buffer.from(s, 'latin1')
    const length = new Uint8Array(8)
    out.push(...length.subarray(0, encodeInt(length, 0, bytes.byteLength, 7, 0)), ...bytes)
  }
  for (const [name, value] of fields) {
    out.push(0x00)
    put(name)
    put(value)
  }
  return Uint8Array.from(out)
}

const HEADERS = (id: number, fields: HeaderField[], endStream = true) => frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id, literalBlock(fields))
const DATA = (id: number, text: string, endStream = false) => frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, id, Buffer.from(text, 'latin1'))

/**
 * An origin that records every byte per connection and answers each request head with 200 "ok";
 * with `early`, at once, before reading its body (as an origin that refuses uploads does).
 */
async function recordingOrigin(early = false): Promise<{ port: number; raw: string[]; closedConnections: () => number }> {
  const raw: string[] = []
  const sockets = new Set<Socket>()
  let closed = 0
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => (sockets.delete(s), closed++))
    s.on('error', () => {})
    const index = raw.push('') - 1
    let buf = ''
    let answered = false
    s.on('data', (d) => {
      raw[index] += d.toString('latin1')
      buf += d.toString('latin1')
      // Bounded: each pass consumes a whole request or waits for more bytes.
      for (let guard = 0; guard < 16; guard++) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0)
        const whole = buf.length >= end + 4 + length
        if (!answered && (early || whole)) {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
          answered = true
        }
        if (!whole) return
        buf = buf.slice(end + 4 + length)
        answered = false
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, raw, closedConnections: () => closed }
}

function proxyTo(originPort: number): number {
  return h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } }).proxy.port
}

interface Rx {
  type: number
  flags: number
  streamId: number
  payload: Uint8Array
  headers?: HeaderField[]
}

/** A raw h2 connection to the proxy (ALPN h2): the frames it got, what to send, and when stream 1 is over. */
async function h2Client(port: number, settings: SettingsList = []): Promise<{ frames: Rx[]; send: (...parts: Uint8Array[]) => void; sock: TLSSocket }> {
  const sock = connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  sock.on('error', () => {})
  const frames: Rx[] = []
  const split = new FrameSplitter()
  const decoder = new HpackDecoder(65536, 1 << 20)
  sock.on('data', (d: Buffer) =>
    split.push(d, (f, payload) => frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, payload, headers: f.type === FrameType.HEADERS ? decoder.decode(payload).fields : undefined })),
  )
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => (sock.alpnProtocol === 'h2' ? resolve() : reject(new Error(`ALPN chose ${sock.alpnProtocol}`))))
    sock.once('error', reject)
  })
  sock.write(PREFACE)
  sock.write(settingsFrame(settings))
  return { frames, send: (...parts) => parts.forEach((p) => sock.write(p)), sock }
}

const rstCode = (frames: Rx[], id: number) => {
  const f = frames.find((x) => x.type === FrameType.RST_STREAM && x.streamId === id)
  return f ? new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0) : undefined
}
const ended = (frames: Rx[], id: number) => rstCode(frames, id) !== undefined || frames.some((f) => f.streamId === id && (f.flags & Flag.END_STREAM) !== 0 && f.type !== FrameType.WINDOW_UPDATE)

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nhost: internal.test\r\nx-forwarded-for: 10.0.0.1\r\n\r\n'

test('H2.CL: a DATA frame past content-length, read while the request body streams on, is never written upstream (RFC 9113 §8.1.1)', async () => {
  // The origin answers before the body (so the exchange has its answer and streams the rest of the
  // body on), and the client's window of 0 keeps that answer's body, and so the stream, open.
  const origin = await recordingOrigin(true)
  const port = proxyTo(origin.port)
  const c = await h2Client(port, [[Setting.INITIAL_WINDOW_SIZE, 0]])
  // Declared 70,000 bytes: above the 64 KiB read-ahead, so the body streams to the upstream as it comes.
  c.send(HEADERS(1, [[':method', 'POST'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', '/upload'], ['content-length', '70000']], false))
  for (let i = 0; i < 4; i++) c.send(DATA(1, 'a'.repeat(16_000)))
  // All of it at the origin and the answer's head at the client: the proxy waits for more body.
  expect(await waitFor(() => (origin.raw[0]?.length ?? 0) >= 64_000 && c.frames.some((f) => f.type === FrameType.HEADERS && f.streamId === 1))).toBe(true)
  // The last 6,000 declared bytes and a second request in the same frame.
  c.send(DATA(1, 'z'.repeat(6_000) + SMUGGLED, true))
  expect(await waitFor(() => rstCode(c.frames, 1) !== undefined)).toBe(true)
  expect(rstCode(c.frames, 1)).toBe(H2Code.PROTOCOL_ERROR)
  // The upload is cut: the proxy closes that upstream connection.
  expect(await waitFor(() => origin.closedConnections() === 1)).toBe(true)
  // None of that frame went upstream: the body there stops at the 64,000 bytes before it.
  const upstream = origin.raw.join('')
  expect(upstream.includes('/smuggled')).toBe(false)
  expect(upstream.includes('z')).toBe(false)
  expect(upstream.length - upstream.indexOf('\r\n\r\n') - 4).toBe(64_000)
})

const post = (path: string, extra: HeaderField[] = []): HeaderField[] => [[':method', 'POST'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', path], ...extra]

test('content-length: 0 on a stream not ended yet: nothing goes upstream before its end, and DATA after it makes it malformed, never forwarded (RFC 9113 §8.1.1)', async () => {
  const origin = await recordingOrigin()
  const port = proxyTo(origin.port)
  const c = await h2Client(port)
  c.send(HEADERS(1, post('/zero', [['content-length', '0']]), false))
  // Another request on the same connection, after it, goes all the way to the origin and back.
  c.send(HEADERS(3, [[':method', 'GET'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', '/marker']]))
  expect(await waitFor(() => ended(c.frames, 3))).toBe(true)
  c.send(DATA(1, SMUGGLED, true))
  expect(await waitFor(() => rstCode(c.frames, 1) !== undefined)).toBe(true)
  const upstream = origin.raw.join('')
  expect(upstream.includes('GET /marker ')).toBe(true)
  expect(upstream.includes('/zero')).toBe(false)
  expect(upstream.includes('/smuggled')).toBe(false)
  expect(rstCode(c.frames, 1)).toBe(H2Code.PROTOCOL_ERROR)
})

test('content-length: 0 ended by an empty DATA frame or by trailers: forwarded then, with content-length: 0 and nothing after it', async () => {
  const origin = await recordingOrigin()
  const port = proxyTo(origin.port)
  const c = await h2Client(port)
  c.send(HEADERS(1, post('/empty-data', [['content-length', '0']]), false), DATA(1, '', true))
  c.send(HEADERS(3, post('/trailers', [['content-length', '0']]), false), HEADERS(3, [['x-checksum', 'none']], true))
  expect(await waitFor(() => ended(c.frames, 1) && ended(c.frames, 3))).toBe(true)
  expect(rstCode(c.frames, 1)).toBeUndefined()
  expect(rstCode(c.frames, 3)).toBeUndefined()
  const heads = origin.raw.join('').split('\r\n\r\n').filter((h) => h.startsWith('POST'))
  expect(heads.map((h) => h.split(' ')[1]).sort()).toEqual(['/empty-data', '/trailers'])
  for (const head of heads) expect(head).toContain('\r\ncontent-length: 0')
})
