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

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nhost: internal.test\r\nx-forwarded-for: 203.0.113.9\r\n\r\n'

test('H2.CL: a DATA frame past content-length, read while the request body streams on, is never written upstream (RFC 9113 §8.1.1)', async () => {
  // The origin answers before the body (so the exchange has its answer and streams the rest of the
  // body on), and the client's window of 0 keeps that answer's body, and so the stream, open.
  const origin = await recordingOrigin(true)
  const port = proxyTo(origin.port)
  const c = await h2Client(port, [[Setting.INITIAL_WINDOW_SIZE, 0]])
  // Declared 70,000 bytes: above the 64 KiB read-ahead, so once 64 KiB of it came the body streams to the upstream as it comes.
  c.send(HEADERS(1, [[':method', 'POST'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', '/upload'], ['content-length', '70000']], false))
  for (let i = 0; i < 4; i++) c.send(DATA(1, 'a'.repeat(16_000)))
  // A stream starts with a 64 KiB window: the rest once the proxy gave credit, as a real client sends.
  expect(await waitFor(() => c.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1))).toBe(true)
  c.send(DATA(1, 'b'.repeat(2_000)))
  // All of it at the origin and the answer's head at the client: the proxy waits for more body.
  expect(await waitFor(() => (origin.raw[0]?.length ?? 0) >= 66_000 && c.frames.some((f) => f.type === FrameType.HEADERS && f.streamId === 1))).toBe(true)
  // The last 4,000 declared bytes and a second request in the same frame.
  c.send(DATA(1, 'z'.repeat(4_000) + SMUGGLED, true))
  expect(await waitFor(() => rstCode(c.frames, 1) !== undefined)).toBe(true)
  expect(rstCode(c.frames, 1)).toBe(H2Code.PROTOCOL_ERROR)
  // The upload is cut: the proxy closes that upstream connection.
  expect(await waitFor(() => origin.closedConnections() === 1)).toBe(true)
  // None of that frame went upstream: the body there stops at the 66,000 bytes before it.
  const upstream = origin.raw.join('')
  expect(upstream.includes('/smuggled')).toBe(false)
  expect(upstream.includes('z')).toBe(false)
  expect(upstream.length - upstream.indexOf('\r\n\r\n') - 4).toBe(66_000)
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

const GET = (path = '/x', authority = '127.0.0.1'): HeaderField[] => [[':method', 'GET'], [':scheme', 'https'], [':authority', authority], [':path', path]]

/** Requests that must never reach the upstream, each on its own stream of one connection. */
const MALFORMED: [string, HeaderField[]][] = [
  ['transfer-encoding (H2.TE)', [...post('/te'), ['transfer-encoding', 'chunked']]],
  ['te other than trailers', [...GET(), ['te', 'gzip']]],
  ['connection', [...GET(), ['connection', 'close']]],
  ['keep-alive', [...GET(), ['keep-alive', 'timeout=5']]],
  ['proxy-connection', [...GET(), ['proxy-connection', 'keep-alive']]],
  ['upgrade', [...GET(), ['upgrade', 'websocket']]],
  ['content-length on a request without DATA', [...GET(), ['content-length', '5']]],
  ['two different content-length fields', [...GET(), ['content-length', '1'], ['content-length', '2']]],
  ['a content-length list', [...GET(), ['content-length', '0, 0']]],
  ['an uppercase name', [...GET(), ['X-Upper', '1']]],
  ['a colon in a name', [...GET(), ['x:y', '1']]],
  ['a space in a name', [...GET(), ['x y', '1']]],
  ['CRLF in a name', [...GET(), ['x\r\nx-injected', '1']]],
  ['an empty name', [...GET(), ['', '1']]],
  ['CRLF in a value', [...GET(), ['x-a', '1\r\nx-injected: 1']]],
  ['LF in a value', [...GET(), ['x-a', '1\nx-injected: 1']]],
  ['NUL in a value', [...GET(), ['x-a', '1\0']]],
  ['CRLF in a cookie crumb', [...GET(), ['cookie', 'a=1\r\nx-injected: 1']]],
  ['a pseudo-header after a regular field', [[':method', 'GET'], [':scheme', 'https'], [':authority', '127.0.0.1'], ['x-a', '1'], [':path', '/x']]],
  ['a second :path', [...GET(), [':path', '/admin']]],
  ['an unknown pseudo-header', [...GET(), [':custom', '1']]],
  ['a :status in a request', [...GET(), [':status', '200']]],
  [':method with a space (request-line injection)', [[':method', 'GET /admin HTTP/1.1\r\nx:'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', '/x']]],
  [':method with a space only', [[':method', 'GET /admin'], [':scheme', 'https'], [':authority', '127.0.0.1'], [':path', '/x']]],
  [':path with a space', GET('/x HTTP/1.1\r\nx-injected: 1\r\nx:')],
  [':path with CRLF', GET('/x\r\nx-injected: 1')],
  [':path with a fragment', GET('/x#frag')],
  [':path absolute', GET('http://evil.test/x')],
  [':path without a slash', GET('x')],
  [':path * with GET', GET('*')],
  [':path with a non-ASCII byte', GET('/caf\xe9')],
  [':scheme with CRLF', [[':method', 'GET'], [':scheme', 'https\r\nx: 1'], [':authority', '127.0.0.1'], [':path', '/x']]],
  [':authority with userinfo', GET('/x', 'user@evil.test')],
  [':authority with CRLF', GET('/x', '127.0.0.1\r\nx-injected: 1')],
  [':authority with a space', GET('/x', '127.0.0.1 evil.test')],
  [':authority with a slash', GET('/x', 'evil.test/x')],
  [':authority and host that differ', [...GET(), ['host', 'evil.test']]],
  ['an empty :authority and a host', [...GET('/x', ''), ['host', 'evil.test']]],
  ['two host fields', [[':method', 'GET'], [':scheme', 'https'], [':path', '/x'], ['host', '127.0.0.1'], ['host', 'evil.test']]],
  ['CONNECT', [[':method', 'CONNECT'], [':authority', 'evil.test:443']]],
]

test(`${MALFORMED.length} malformed requests (RFC 9113 §8.2, §8.3): each is refused on its stream and not a byte of them reaches the upstream`, async () => {
  const origin = await recordingOrigin()
  const port = proxyTo(origin.port)
  const c = await h2Client(port)
  MALFORMED.forEach(([, fields], i) => c.send(HEADERS(1 + 2 * i, fields)))
  const ids = MALFORMED.map((_, i) => 1 + 2 * i)
  expect(await waitFor(() => ids.every((id) => ended(c.frames, id)))).toBe(true)
  // Then a good request on the same connection goes through: the connection is still usable.
  const marker = 1 + 2 * MALFORMED.length
  c.send(HEADERS(marker, GET('/marker')))
  expect(await waitFor(() => ended(c.frames, marker))).toBe(true)
  const answers = MALFORMED.map(([name], i) => {
    const rst = rstCode(c.frames, ids[i]!)
    const status = c.frames.find((f) => f.streamId === ids[i] && f.type === FrameType.HEADERS)?.headers?.find(([n]) => n === ':status')?.[1]
    return `${name}: ${rst === H2Code.PROTOCOL_ERROR ? 'reset' : status !== undefined && status >= '400' ? 'refused' : `rst ${rst} status ${status}`}`
  })
  expect(answers.filter((a) => !a.endsWith(': reset') && !a.endsWith(': refused'))).toEqual([])
  const upstream = origin.raw.join('')
  expect(upstream.startsWith('GET /marker HTTP/1.1\r\n')).toBe(true)
  expect(upstream.match(/HTTP\/1\.1\r\n/g)?.length).toBe(1)
  expect(upstream.includes('injected') || upstream.includes('evil')).toBe(false)
})

test('what is accepted arrives as the fields sent: cookie crumbs joined, Host from :authority, content-length normalised, te dropped', async () => {
  const origin = await recordingOrigin()
  const port = proxyTo(origin.port)
  const c = await h2Client(port)
  c.send(HEADERS(1, [...post('/ok'), ['cookie', 'a=1'], ['x-b', 'caf\xe9'], ['cookie', 'c=3'], ['te', 'trailers'], ['content-length', '003'], ['content-length', '3']], false), DATA(1, 'abc', true))
  expect(await waitFor(() => ended(c.frames, 1))).toBe(true)
  const raw = origin.raw.join('')
  const [head = '', body] = raw.split('\r\n\r\n')
  const lines = head.split('\r\n')
  expect(lines[0]).toBe('POST /ok HTTP/1.1')
  expect(lines[1]).toBe('host: 127.0.0.1')
  expect(lines.filter((l) => /^(cookie|x-b|content-length|te|transfer-encoding):/i.test(l))).toEqual(['x-b: caf\xe9', 'cookie: a=1; c=3', 'content-length: 3'])
  expect(body).toBe('abc')
})
