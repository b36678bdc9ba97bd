/**
 * The exact HEADERS (and CONTINUATION) frames an HTTP/2 client gets for upstream answers, pinned
 * byte for byte: the heads go through the HTTP/2 client's send (downstream/h2-client.ts) into a
 * real ServerSession, one connection, so the HPACK dynamic table carries from one answer to the
 * next. The pinned bytes were made by the field-list path (ForwardedReply.h2Fields, then
 * HpackEncoder.encode); any faster path must send the same bytes.
 */
import { describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { parseResponseHead, type RawFields } from '../../src/http1/response-head.ts'
import * as F from '../../src/http2/frames.ts'
import { HpackDecoder, HpackEncoder } from '../../src/http2/hpack.ts'
import { ServerSession } from '../../src/http2/session.ts'
import type { ServerStream } from '../../src/http2/stream.ts'
import { concatBytes } from '../../src/lib/bytes.ts'
import { H2Client } from '../../src/proxy/downstream/h2-client.ts'
import { ForwardedReply } from '../../src/proxy/forwarded-reply.ts'

const DATE = 'Date: Thu, 26 Nov 2026 04:04:47 GMT'
const LONG = 'v'.repeat(150) + '/'.repeat(150)
/** Mixed-case names, fields Connection names, two Set-Cookie, Transfer-Encoding, a long and an empty value. */
const TRICKY = [
  'HTTP/1.1 200 OK', 'SERVER: Apache/2.4', DATE.toUpperCase().replace('DATE:', 'DaTe:'), 'Content-Type: text/html; charset=UTF-8',
  'X-Custom-Header: MiXeD Value', 'Connection: keep-alive, X-Drop-Me, Upgrade', 'X-Drop-Me: secret', 'x-drop-me: again',
  'Set-Cookie: a=1; Path=/', 'set-cookie: b=2; HttpOnly', 'Transfer-Encoding: chunked', 'Upgrade: h2c', 'Keep-Alive: timeout=5',
  'Proxy-Connection: keep-alive', 'TE: trailers', `X-Long: ${LONG}`, 'X-Empty:', 'Cache-Control: max-age=60', 'Via: 1.1 origin',
  'ETag: "abc"', 'X-Request-Id: upstream-own', 'Vary: Accept-Encoding',
].join('\r\n')
const NGINX = `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n${DATE}\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nConnection: keep-alive`
/** [head, request method, body (null: none; a number: that many bytes)], answered in order on one connection. */
const ANSWERS: [string, string, number | null][] = [
  [TRICKY, 'GET', 5],
  [TRICKY, 'GET', 5],
  [NGINX, 'GET', 5],
  [NGINX, 'GET', 5],
  [NGINX.replace('04:04:47', '04:04:48'), 'HEAD', 5],
  [`HTTP/1.1 404 Not Found\r\n${DATE}\r\nContent-Length: 0\r\nContent-Language: de-DE\r\nLocation: /Elsewhere`, 'GET', 0],
  [`HTTP/1.1 203 Non-Authoritative\r\nContent-Length: 5, 5\r\nAge: 7\r\nLast-Modified: ${DATE.slice(6)}\r\n${DATE}\r\nX-A: `, 'GET', 5],
  [`HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n${DATE}\r\nAlt-Svc: h3=":443"`, 'GET', null],
  // Last, and not pinned: no Date, so the proxy adds the clock's.
  ['HTTP/1.1 200 OK\r\nContent-Length: 5', 'GET', 5],
]
const IDS = ['0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77', 'client-sent-id', 'client-sent-id', 'ffffffff-0000-4000-8000-000000000001']

/** The frames each answer's head went out in (HEADERS, then any CONTINUATION), as hex. */
async function run(answers: [string, string, number | null][], maxFrame = F.MIN_MAX_FRAME_SIZE): Promise<string[][]> {
  const sent: Uint8Array[] = []
  let next = 0
  const owner = { shared: { opts: { sendTimeoutMs: 0 } } }
  const session = new ServerSession({
    write: (b) => (sent.push(b.slice()), true),
    close: () => {},
    onRequest: (stream: ServerStream) => {
      const n = next++
      const [text, method, size] = answers[n]!
      const head = parseResponseHead(text, method)
      const body = size === null ? null : new Uint8Array(size).fill(0x61)
      const reply = new ForwardedReply(head, head.raw as RawFields, IDS[n % IDS.length]!, true, body)
      H2Client.prototype.send.call(owner as unknown as H2Client, stream, method, reply)
    },
  })
  const client = new HpackEncoder(4096)
  session.receive(concatBytes([F.PREFACE, F.settingsFrame([[F.Setting.MAX_FRAME_SIZE, maxFrame]]), F.SETTINGS_ACK]))
  for (const [i, [, method]] of answers.entries()) {
    const block = client.encode([[':method', method], [':path', '/'], [':scheme', 'https'], [':authority', 'example.com']])
    session.receive(F.headerFrames(2 * i + 1, block, true, F.MIN_MAX_FRAME_SIZE))
    // The session writes what it holds in a microtask after each read.
    await null
  }
  return headFrames(concatBytes(sent), answers.length)
}

function headFrames(all: Uint8Array, count: number): string[][] {
  const out: string[][] = Array.from({ length: count }, () => [])
  for (let at = 0; at < all.byteLength; ) {
    const h = F.readFrameHeader(all, at)
    const end = at + F.FRAME_HEADER_BYTES + h.length
    if (h.type === F.FrameType.HEADERS || h.type === F.FrameType.CONTINUATION) out[(h.streamId - 1) / 2]!.push(Buffer.from(all.subarray(at, end)).toString('hex'))
    at = end
  }
  return out
}

/** Made by the field-list path (h2Fields, then HpackEncoder.encode). */
const PINNED: string[][] = [
  [
    '0001be01040000000188768786b19272b025da6197df8f87d282714d3ab8a82009c500d5c03571a754c5a37f5f92497c' +
    'a589d34d1f6a1271d882a60e1bf0acf7408bf2b12d424f4ad3947216cf89d06fc2df5388e8b4bf1f28891c01fb5358d3' +
    '3c0c7f1f288a8e017da98d29af55547a0085f2b507aa6fff75efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdf' +
    'bf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7ef' +
    'dfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7' +
    'efdfbf7efdfbf7efdfbf7efdd86186186186186186186186186186186186186186186186186186186186186186186186' +
    '186186186186186186186186186186186186186186186186186186186186186186186186186186186186186186186186' +
    '18618618618618618618618618618618618618618618618618618618634086f2b169ad3ebf005888a47e561cc581c07f' +
    '7c870ae150f61a63550f130522616263227b8b84842d695b05443c86aa6f4089f2b585ed6950958d2799046e4a2204ab' +
    '04811acd46dbab3e471b5832806c91c2be575d0f0d0135',
  ],
  [
    '00013801040000000388c6c5c4c31f28891c01fb5358d33c0c7f1f288a8e017da98d29af55547a0085f2b507aa6fff75' +
    'efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfb' +
    'f7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efd' +
    'fbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdfbf7efdd8618618618618618618618618' +
    '618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618' +
    '618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618618' +
    '61861863c2c1c00f13052261626322bf0f2f8a25062d495905a92b1a4f0f0d0135',
  ],
  [
    '000048010400000005887689aa6355e580ae212e1f6197df3dbf4a09c5349fba82009c500d5c03571a754c5a37ff5f90' +
    '1d75d0620d263d4c1c892a56426c28e90f0d01350f328a25062d495905a92b1a4f',
  ],
  [
    '00002401040000000788c0bfbe0f0d01350f329996596596596558000016680002cf000058000000000000007f',
  ],
  [
    '00002101050000000988c06197df3dbf4a09c5349fba82009c500d5c03571a794c5a37ffbf0f0d0135c2',
  ],
  [
    '00002301040000000b8dc00f0d01305b8490ab5fc16e886305082f89cb617f0f358a25062d495905a92b1a4f',
  ],
  [
    '00003a01040000000d488210190f0601370f1d97df3dbf4a09c5349fba82009c500d5c03571a754c5a37ffc34003782d' +
    '61000f0d01350f378a25062d495905a92b1a4f',
  ],
  [
    '00002e01050000000f89c440851d09591dc9889d983f9b8d34cff30f389996596596596558000016680002cf00005800' +
    '0000000000007f',
  ],
]

describe('HEADERS bytes of forwarded answers are pinned', () => {
  test('nine answers on one connection, the dynamic table carried', async () => {
    const frames = (await run(ANSWERS)).slice(0, -1)
    expect(frames).toEqual(PINNED)
  })

  test('the blocks decode to the fields an HTTP/2 client must get', async () => {
    const decoder = new HpackDecoder(4096, 1 << 20)
    const fields = (await run(ANSWERS)).map((fs) => decoder.decode(Buffer.from(fs.map((f) => f.slice(18)).join(''), 'hex')).fields)
    expect(fields[0]).toEqual([
      [':status', '200'], ['server', 'Apache/2.4'], ['date', 'THU, 26 NOV 2026 04:04:47 GMT'], ['content-type', 'text/html; charset=UTF-8'],
      ['x-custom-header', 'MiXeD Value'], ['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; HttpOnly'], ['x-long', LONG], ['x-empty', ''],
      ['cache-control', 'max-age=60'], ['via', '1.1 origin'], ['etag', '"abc"'], ['vary', 'Accept-Encoding'],
      ['x-request-id', IDS[0]!], ['content-length', '5'],
    ])
    expect(fields[1]).toEqual(fields[0]!.map(([n, v]) => [n, n === 'x-request-id' ? IDS[1]! : v]))
    expect(fields[4]).toEqual([[':status', '200'], ['server', 'nginx/1.22.1'], ['date', 'Thu, 26 Nov 2026 04:04:48 GMT'], ['content-type', 'application/octet-stream'], ['content-length', '5'], ['x-request-id', IDS[0]!]])
    expect(fields[6]).toEqual([[':status', '203'], ['age', '7'], ['last-modified', DATE.slice(6)], ['date', DATE.slice(6)], ['x-a', ''], ['content-length', '5'], ['x-request-id', IDS[2]!]])
    const now = fields[8]!.find(([n]) => n === 'date')?.[1]
    expect(fields[8]).toEqual([[':status', '200'], ['content-length', '5'], ['x-request-id', IDS[0]!], ['date', now!]])
    expect(Date.parse(now!)).toBeGreaterThan(Date.now() - 60_000)
  })

  test('a head larger than a frame goes out in CONTINUATION frames', async () => {
    const big = `HTTP/1.1 200 OK\r\n${DATE}\r\nX-Big: ${'b'.repeat(20_000)}\r\nX-Big-2: ${'c'.repeat(9_000)}`
    const frames = await run([[big, 'GET', 5], [big, 'GET', 5], [NGINX, 'GET', 5]])
    const hash = createHash('sha256').update(JSON.stringify(frames)).digest('hex')
    expect(frames.map((f) => f.length)).toEqual([2, 2, 1])
    expect(hash).toBe('125ea456bd87474eada46be91cf84d1324d33c98e8cdcb5829bc3417cffef025')
  })
})
