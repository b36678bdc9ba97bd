/**
 * The head an HTTP/1.1 client gets from an upstream's answer, its field lines copied from the
 * upstream's bytes (proxy/forwarded-reply.ts), must be what the list path writes
 * (clientResponseHeaders, then planResponseHead), for every framing case: byte for byte once each
 * field line's spacing is the list's ("name: value"), and with the upstream's own lines otherwise;
 * where the copy would not be exact, it must decline.
 */
import { describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { planResponseHead } from '../../src/http1/response-encode.ts'
import { parseResponseHead, type RawFields } from '../../src/http1/response-head.ts'
import { ForwardedReply } from '../../src/proxy/forwarded-reply.ts'
import { clientResponseHeaders } from '../../src/proxy/headers.ts'
import { HpackDecoder, HpackEncoder } from '../../src/http2/hpack.ts'
import { responseFields } from '../../src/http2/request.ts'
import { withDateAndLength } from '../../src/proxy/downstream/h2-client.ts'

const ID = '0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77'
/** The fields an HTTP/2 client decodes from the block h2Head codes (one encoder and decoder: one connection). */
function h2Fields(reply: ForwardedReply, whole: number | undefined, encoder = new HpackEncoder(4096), decoder = new HpackDecoder(4096, 1 << 20)) {
  const head = reply.h2Head(whole)
  return head && decoder.decode(encoder.encode(head)).fields
}
/** The Date line the proxy adds is the clock's: the same in both, unless a second ticks between. */
const sameDate = (s: string) => s.replace(/\r\ndate: [^\r]*\r\n/, '\r\ndate: X\r\n')
/** Each field line of the head as the list path spaces it: "name: value" (OWS around the value trimmed). */
const listSpacing = (s: string) => {
  const at = s.indexOf('\r\n\r\n')
  const [status, ...lines] = s.slice(0, at).split('\r\n')
  return [status, ...lines.map((l) => l.replace(/^([^:]+):[ \t]*(.*?)[ \t]*$/, '$1: $2'))].join('\r\n') + s.slice(at)
}

function both(headText: string, method: string, minor: number, close: boolean, body: Uint8Array | undefined, keepLength: boolean) {
  const head = parseResponseHead(headText, method)
  const reply = new ForwardedReply(head, head.raw as RawFields, ID, keepLength, body ?? null)
  const copied = reply.encodeHead(method, minor, close, body)
  const plan = planResponseHead({ status: head.status, statusText: head.statusText, headers: clientResponseHeaders(head.headers, ID, keepLength), method, minor, bodyLength: body?.byteLength, close })
  const bodiless = method === 'HEAD' || head.status === 204 || head.status === 304
  const listed = Buffer.concat([Buffer.from(plan.text, 'latin1'), body && !bodiless ? body : new Uint8Array(0)])
  return { copied, plan, listed }
}

const heads = [
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 04:04:47 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive',
  'HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5',
  'HTTP/1.1 200\r\nContent-Length: 5',
  'HTTP/1.1 404 \r\nContent-Length: 5\r\nX-Request-Id: upstream-own\r\nKeep-Alive: timeout=5',
  'HTTP/1.0 200 Fine\r\nContent-Length: 5\r\nCONNECTION: Keep-Alive, close',
  // A Connection field naming other fields: those are hop-by-hop for this message (RFC 9110 §7.6.1).
  'HTTP/1.1 200 OK\r\nConnection: x-private, CLOSE\r\nX-Private: 1\r\nclose: odd\r\nX-Kept: 2\r\nContent-Length: 5',
  // Connection may name Date or Content-Length too: then those are dropped like any other named field.
  'HTTP/1.1 200 OK\r\nConnection: date, content-length\r\nDate: Thu, 26 Nov 2026 04:04:47 GMT\r\nContent-Length: 5\r\nX-Kept: 1',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Obs: caf\xe9',
  'HTTP/1.1 204 No Content\r\nX-A:no-space\r\nX-B:   padded   ',
  'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 42',
  'HTTP/1.1 599 Custom Reason Phrase\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nTE: trailers\r\nProxy-Connection: keep-alive',
  `HTTP/1.1 200 OK\r\nX-Long: ${'v'.repeat(300)}\r\nContent-Length: 5`,
  // Content-Length not passed on as it came: beside Transfer-Encoding (never), as a list or twice
  // (its one value instead), on a 204 (never).
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nX-After: 1',
  'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nX-After: 1',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Mid: 1\r\ncontent-length: 5',
  'HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nX-A: 1',
  // Every dropped name in upper case (the copy finds them by hash, the list by its lower-case set).
  'HTTP/1.1 200 OK\r\nCONNECTION: keep-alive\r\nKEEP-ALIVE: 5\r\nPROXY-CONNECTION: x\r\nTE: trailers\r\nTRAILER: X-Sum\r\nTRANSFER-ENCODING: chunked\r\nUPGRADE: x\r\nPROXY-AUTHENTICATE: Basic\r\nPROXY-AUTHORIZATION: Basic x\r\nX-REQUEST-ID: up\r\nX-KEPT: 1',
]

describe('copied head = listed head', () => {
  for (const h of heads) {
    for (const method of ['GET', 'HEAD']) {
      for (const minor of [0, 1]) {
        for (const close of [false, true]) {
          for (const whole of [true, false]) {
            for (const keepLength of whole ? [true] : [true, false]) {
              test(`${JSON.stringify(h.slice(0, 30))} ${method} 1.${minor} close=${close} ${whole ? 'whole' : 'stream'} keepLength=${keepLength}`, () => {
                const { copied, plan, listed } = both(h, method, minor, close, whole ? Buffer.from('hello') : undefined, keepLength)
                expect(copied).toBeDefined()
                expect(sameDate(listSpacing(Buffer.from(copied!.bytes).toString('latin1')))).toBe(sameDate(listed.toString('latin1')))
                expect(copied!.chunked).toBe(plan.chunked)
                expect(copied!.close).toBe(plan.close)
              })
            }
          }
        }
      }
    }
  }
})

describe('field lines go to the client as the upstream wrote them', () => {
  test('runs of kept lines around dropped ones, odd spacing and case, the last line without its CRLF in the bytes', () => {
    const text = 'HTTP/1.1 200 OK\r\nX-First:a\r\nConnection: keep-alive\r\nX-Mid:\t b c \t\r\nSERVER: up\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\nx-last:   z  '
    const head = parseResponseHead(text, 'GET')
    // parseResponseHead's bytes end with the last value: its CRLF must be written, not copied.
    expect((head.raw as RawFields).bytes.length).toBe(text.length)
    const copied = new ForwardedReply(head, head.raw as RawFields, ID, true, null).encodeHead('GET', 1, false, Buffer.from('hello'))!
    const lines = Buffer.from(copied.bytes).toString('latin1').split('\r\n')
    expect(lines.slice(0, 5)).toEqual(['HTTP/1.1 200 OK', 'X-First:a', 'X-Mid:\t b c \t', 'SERVER: up', 'x-last:   z  '])
    expect(lines.slice(5)).toEqual([`x-request-id: ${ID}`, expect.stringMatching(/^date: /), 'content-length: 5', '', 'hello'])
  })
})

describe('where a copy would not be exact, it declines', () => {
  test('the list was asked for (and may have been changed), or the reason phrase set', () => {
    const head = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5', 'GET')
    const a = new ForwardedReply(head, head.raw as RawFields, ID, true, null)
    a.headers.push(['x-added', '1'])
    expect(a.encodeHead('GET', 1, false, Buffer.from('hello'))).toBeUndefined()
    const b = new ForwardedReply(head, head.raw as RawFields, ID, true, null)
    b.statusText = 'Fine'
    expect(b.encodeHead('GET', 1, false, Buffer.from('hello'))).toBeUndefined()
    const c = new ForwardedReply(head, head.raw as RawFields, ID, true, null)
    c.status = 502
    expect(c.encodeHead('GET', 1, false, Buffer.from('hello'))).toBeUndefined()
  })
})

describe('HTTP/2 fields from the bytes = the fields HTTP/2 makes of the list', () => {
  for (const h of heads) {
    for (const whole of [5, 0, undefined]) {
      test(`${JSON.stringify(h.slice(0, 30))} whole body of ${whole ?? 'none (stream or bodiless)'}`, () => {
        const head = parseResponseHead(h, 'GET')
        const reply = new ForwardedReply(head, head.raw as RawFields, ID, true, null)
        const fields = h2Fields(reply, whole)
        // The list path (h2-client.ts send): the list, Date and Content-Length added where it has none, then responseFields.
        const list = withDateAndLength(clientResponseHeaders(head.headers, ID, true), whole)
        // An added Date is the clock's: both were made in the same moment, compared by presence.
        const added = (f: readonly (readonly [string, string])[] | undefined) => f?.map(([n, v]) => [n, n === 'date' && head.headers.every(([m]) => m.toLowerCase() !== 'date') ? 'now' : v])
        expect(added(fields)).toEqual(added(responseFields(head.status, list)))
      })
    }
  }
})

describe('h2Head sends a known field\'s indexed value only while its bytes are the same', () => {
  // Each answer's values must be its own, however the one before it ended: same length, one byte
  // apart, shorter, longer, empty.
  const answers = [
    ['nginx/1.22.1', 'Thu, 26 Nov 2026 04:04:47 GMT', 'text/plain'],
    ['nginx/1.22.1', 'Thu, 26 Nov 2026 04:04:48 GMT', 'text/plain'],
    ['nginx/1.22.2', 'Thu, 26 Nov 2026 04:04:48 GMT', 'text/html'],
    ['nginx', 'Thu, 26 Nov 2026 04:04:48 GMT', ''],
    ['nginx/1.22.1-debian', 'Thu, 26 Nov 2026 04:04:48 GMT', 'text/plain; charset=utf-8'],
    ['nginx/1.22.1-debian', 'Thu, 26 Nov 2026 04:04:48 GMT', 'text/plain; charset=utf-8'],
  ]
  test('six answers in a row', () => {
    const encoder = new HpackEncoder(4096)
    const decoder = new HpackDecoder(4096, 1 << 20)
    for (const [server, date, type] of answers) {
      const head = parseResponseHead(`HTTP/1.1 200 OK\r\nServer: ${server}\r\nDate: ${date}\r\nContent-Type: ${type}\r\nContent-Length: 5`, 'GET')
      const fields = h2Fields(new ForwardedReply(head, head.raw as RawFields, ID, true, null), undefined, encoder, decoder)
      expect(fields).toEqual([[':status', '200'], ['server', server!], ['date', date!], ['content-type', type!], ['content-length', '5'], ['x-request-id', ID]])
    }
  })
})

describe('a whole body still in the upstream\'s read (encodeWhole)', () => {
  const BODY = 'hello'
  /** An answer as the exchange reports one whose body came in the head's read: the read, and where the body is in it. */
  function inRead(headText: string, method: string) {
    const head = parseResponseHead(headText, method)
    const read = Buffer.from(`${headText}\r\n\r\n${BODY}`, 'latin1')
    const from = headText.length + 4
    let asked = 0
    const res = {
      head,
      firstByteAt: 0,
      wholeIn: read,
      wholeFrom: from,
      wholeTo: from + BODY.length,
      get body() {
        asked++
        return read.subarray(from, from + BODY.length)
      },
    }
    return { head, reply: new ForwardedReply(head, head.raw as RawFields, ID, true, null, res), asked: () => asked }
  }

  for (const headText of heads) {
    for (const method of ['GET', 'HEAD']) {
      for (const [minor, close] of [[1, false], [1, true], [0, false]] as const) {
        test(`${JSON.stringify(headText.slice(0, 40))} ${method} HTTP/1.${minor}${close ? ' close' : ''}: the bytes encodeHead writes with the body`, () => {
          const { head, reply, asked } = inRead(headText, method)
          const whole = reply.encodeWhole(method, minor, close)
          const got = whole && { bytes: Buffer.from(whole.bytes).toString('latin1'), chunked: whole.chunked, close: whole.close }
          const plain = new ForwardedReply(head, head.raw as RawFields, ID, true, Buffer.from(BODY)).encodeHead(method, minor, close, Buffer.from(BODY))
          const want = plain && { bytes: Buffer.from(plain.bytes).toString('latin1'), chunked: plain.chunked, close: plain.close }
          expect(got && { ...got, bytes: sameDate(got.bytes) }).toEqual(want && { ...want, bytes: sameDate(want.bytes) })
          // Nothing asked the body for an array of its own.
          expect(asked()).toBe(0)
        })
      }
    }
  }

  test('once the body is asked for, it is that one, and encodeWhole declines (the writer uses the body then)', () => {
    const { reply, asked } = inRead(heads[0]!, 'GET')
    expect(Buffer.from(reply.body as Uint8Array).toString('latin1')).toBe(BODY)
    expect(asked()).toBe(1)
    expect(reply.encodeWhole('GET', 1, false)).toBeUndefined()
    // A body set in its place (the cache's, a wrapper) is the one read, and the read is not asked again.
    reply.body = null
    expect(reply.body).toBeNull()
    expect(asked()).toBe(1)
  })

  test('an answer whose fields were asked for as a list declines, as encodeHead does', () => {
    const { reply } = inRead(heads[0]!, 'GET')
    void reply.headers
    expect(reply.encodeWhole('GET', 1, false)).toBeUndefined()
  })
})
