import { describe, expect, test } from 'bun:test'
import { ChunkedDecoder, ChunkedDecodeError } from '../../../src/http1/chunked.ts'
import { parseResponseHead, ResponseParseError } from '../../../src/http1/response-head.ts'

const enc = (s: string) => new TextEncoder().encode(s)

function decodeAll(parts: string[]): { body: string; done: boolean; leftover: number } {
  const d = new ChunkedDecoder()
  let body = ''
  let leftover = 0
  for (const p of parts) {
    const bytes = enc(p)
    const used = d.feed(bytes, (s) => (body += new TextDecoder().decode(s)))
    leftover += bytes.length - used
  }
  return { body, done: d.done, leftover }
}

describe('ChunkedDecoder', () => {
  test.each([
    [['5\r\nhello\r\n0\r\n\r\n'], 'hello'],
    [['5\r\nhel', 'lo\r\n6\r\n world\r\n0\r\n\r\n'], 'hello world'],
    [['A;ext=1\r\n0123456789\r\n0\r\n\r\n'], '0123456789'],
    [['3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n'], 'abc'],
    // One byte at a time.
    ['4\r\nwiki\r\n0\r\n\r\n'.split(''), 'wiki'],
  ])('%#', (parts, body) => {
    const r = decodeAll(parts)
    expect(r.body).toBe(body)
    expect(r.done).toBe(true)
    expect(r.leftover).toBe(0)
  })

  test('bytes after the last chunk are not consumed', () => {
    expect(decodeAll(['1\r\na\r\n0\r\n\r\nHTTP/1.1']).leftover).toBe(8)
  })

  test.each([
    ['zz\r\n'],
    ['5\nhello'],
    ['5\r\nhelloXX'],
    ['ffffffffffffffff\r\n'],
    // Past 2^53-1: 0x20000000000000, with leading zeros or without.
    ['20000000000000\r\n'],
    ['000020000000000000\r\n'],
    [';\r\n'],
    // Only SP/HTAB and chunk extensions may follow the size (RFC 9112 §7.1.1).
    ['5 6\r\n'],
    ['5\xa0\r\n'],
    ['5\x0b\r\n'],
    ['5\x0c\r\n'],
    ['5\x85\r\n'],
    ['\xa05\r\n'],
    ['5;\xa0a\r\n'],
    ['5;a=\xa0\r\n'],
    ['5;a=b c\r\n'],
    ['5;a="unterminated\r\n'],
    ['5;a\rb\r\n'],
    // The trailer section ends with CRLF, never a bare LF (RFC 9112 §7.1.2).
    ['0\r\n\n'],
    ['0\r\nx: 1\n\r\n'],
    ['0\r\nx: 1\rX\r\n\r\n'],
    ['0\r\nx: \x01\r\n\r\n'],
    // Trailer lines are field lines (RFC 9112 §5): a token name, then a colon, nothing between.
    ['0\r\nX y\r\n\r\n'],
    ['0\r\nX : y\r\n\r\n'],
    ['0\r\nX\t: y\r\n\r\n'],
    ['0\r\n: y\r\n\r\n'],
    ['0\r\nX(y): z\r\n\r\n'],
    ['0\r\nX\x80: y\r\n\r\n'],
    ['0\r\n0\r\n\r\n'],
    ['0\r\n5\r\nabcde\r\n\r\n'],
    ['0\r\nGET /hidden HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['0\r\nx: 1\r\nno-colon\r\n\r\n'],
  ])('rejects %p', (input) => {
    expect(() => new ChunkedDecoder().feed(Uint8Array.from(input, (c) => c.charCodeAt(0)), () => {})).toThrow(ChunkedDecodeError)
  })

  test.each([['x-t: 1'], ['X-Checksum:abc'], ["!#$%&'*+-.^_`|~09az:  v \x80\xff"], ['x:'], ['x: a: b c']])('accepts the trailer line %p', (line) => {
    const d = new ChunkedDecoder()
    const input = `1\r\na\r\n0\r\n${line}\r\n\r\n`
    expect(d.feed(Uint8Array.from(input, (c) => c.charCodeAt(0)), () => {})).toBe(input.length)
    expect(d.done).toBe(true)
  })

  test.each([['5 \r\n'], ['5 ; a = b\r\n'], ['5;a="x \\" \xa0y";b\r\n'], ['5\t;a=b\t\r\n'], ['0000000000000000005\r\n'], ['00005;a=b\r\n']])('accepts the size line %p', (line) => {
    const d = new ChunkedDecoder()
    let body = ''
    d.feed(Uint8Array.from(`${line}hello\r\n0\r\n\r\n`, (c) => c.charCodeAt(0)), (s) => (body += new TextDecoder().decode(s)))
    expect(body).toBe('hello')
    expect(d.done).toBe(true)
  })

  describe('the trailer section is bounded', () => {
    const lines = (n: number, line = 'x-t: 1\r\n') => line.repeat(n)
    /** Feeds `text` in 1 KiB pieces; the error thrown, or undefined once it ends (or the text runs out). */
    function feedAll(d: ChunkedDecoder, text: string): unknown {
      const bytes = enc(text)
      try {
        for (let at = 0; at < bytes.length && !d.done; at += 1024) d.feed(bytes.subarray(at, at + 1024), () => {})
      } catch (err) {
        return err
      }
      return undefined
    }

    test('field lines that never end are refused once the section passes its byte limit', () => {
      // About 1 MiB of lines, each well within the per-line limit, and no empty line; 61 lines make 4 KiB.
      const d = new ChunkedDecoder(4096)
      const err = feedAll(d, `5\r\nhello\r\n0\r\n${lines(15_000, `x-t: ${'a'.repeat(60)}\r\n`)}`)
      expect(err).toBeInstanceOf(ChunkedDecodeError)
      expect((err as Error).message).toMatch(/trailer section larger than 4096 bytes/)
      expect(d.done).toBe(false)
    })

    test('a section of exactly the limit (its final CRLF counted) ends; one byte more is refused', () => {
      const line = `x-t: ${'a'.repeat(92)}\r\n` // 99 bytes
      const fits = `0\r\n${line}${'x-u: 123\r\n'}\r\n` // 99 + 10 + 2 = 111 bytes of trailer section
      const d = new ChunkedDecoder(111)
      expect(feedAll(d, fits)).toBeUndefined()
      expect(d.done).toBe(true)
      expect(feedAll(new ChunkedDecoder(110), fits)).toBeInstanceOf(ChunkedDecodeError)
    })

    const MAX_TRAILER_LINES = 100 // chunked.ts's (HAProxy's tune.http.maxhdr, less its start line)
    test('at most 100 field lines, however small', () => {
      const ok = new ChunkedDecoder(1 << 20)
      expect(feedAll(ok, `0\r\n${lines(MAX_TRAILER_LINES)}\r\n`)).toBeUndefined()
      expect(ok.done).toBe(true)
      const err = feedAll(new ChunkedDecoder(1 << 20), `0\r\n${lines(MAX_TRAILER_LINES + 1)}\r\n`)
      expect(err).toBeInstanceOf(ChunkedDecodeError)
      expect((err as Error).message).toMatch(/more than 100 trailer field lines/)
    })

    test('without a limit given, the section is held to 16 KiB (the default max_header_size)', () => {
      expect(feedAll(new ChunkedDecoder(), `0\r\nx-t: ${'a'.repeat(16 * 1024)}`)).toBeInstanceOf(ChunkedDecodeError)
      expect(feedAll(new ChunkedDecoder(), `0\r\n${lines(50, `x-t: ${'a'.repeat(400)}\r\n`)}`)).toBeInstanceOf(ChunkedDecodeError)
    })
  })
})

describe('parseResponseHead', () => {
  test('status, headers and length framing', () => {
    const h = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b', 'GET')
    expect(h.status).toBe(200)
    expect(h.statusText).toBe('OK')
    expect(h.headers).toEqual([['Content-Length', '5'], ['X-A', 'b']])
    expect(h.framing).toEqual({ kind: 'length', length: 5 })
    expect(h.closeAfter).toBe(false)
  })
  test.each([
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', 'GET', { kind: 'chunked' }, false],
    // Another coding than chunked is refused (below); on a HEAD answer there is no body to frame.
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip', 'HEAD', { kind: 'none' }, false],
    ['HTTP/1.1 200 OK', 'GET', { kind: 'close' }, true],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10', 'HEAD', { kind: 'none' }, false],
    ['HTTP/1.1 204 No Content', 'GET', { kind: 'none' }, false],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: 10', 'GET', { kind: 'none' }, false],
    ['HTTP/1.0 200 OK\r\nContent-Length: 1', 'GET', { kind: 'length', length: 1 }, true],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close', 'GET', { kind: 'length', length: 1 }, true],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3, 3', 'GET', { kind: 'length', length: 3 }, false],
    // Transfer-Encoding wins over Content-Length, and the connection is not reused (RFC 9112 §6.3).
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked', 'GET', { kind: 'chunked' }, true],
  ])('%p (%s)', (head, method, framing, closeAfter) => {
    const h = parseResponseHead(head, method)
    expect(h.framing).toEqual(framing as never)
    expect(h.closeAfter).toBe(closeAfter)
  })
  test.each([
    'HTTP/2 200 OK',
    'HTTP/1.1 20 OK',
    'HTTP/1.1 200 OK\r\n folded: value',
    'HTTP/1.1 200 OK\r\nbad header: x',
    'HTTP/1.1 200 OK\r\nContent-Length: 1, 2',
    'HTTP/1.1 200 OK\r\nContent-Length: -1',
    'HTTP/1.1 200 OK\r\nNoColon',
    // An upstream's framing is read as strictly as a client's: only SP/HTAB are whitespace.
    'HTTP/1.1 200 OK\r\nContent-Length: \xa05\xa0',
    'HTTP/1.1 200 OK\r\nContent-Length: \x0b5',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\x0c',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\x85',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\xa0',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: \x0bchunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: \x85chunked',
    // Only chunked is relayed, and never from HTTP/1.0 (RFC 9112 §6.1: its framing is faulty).
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked',
    'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked',
    // A status below 100 has no class (RFC 9110 §15).
    'HTTP/1.1 099 Low\r\nContent-Length: 5',
    'HTTP/1.1 000 Zero',
    // Control bytes in a value, as on the request side (RFC 9110 §5.5).
    'HTTP/1.1 200 OK\r\nX-C: a\x01b',
    'HTTP/1.1 200 OK\r\nX-C: a\x7fb',
    'HTTP/1.1 200 OK\r\nX-C: a\x1bb',
    // ...and in the reason phrase (RFC 9112 §4).
    'HTTP/1.1 200 O\x01K',
  ])('rejects %p', (head) => expect(() => parseResponseHead(head, 'GET')).toThrow(ResponseParseError))
  test.each([
    // [head, method, its list of fields]
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b', 'GET', [['Content-Length', '5'], ['X-A', 'b']]],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nX-A: b', 'GET', [['X-A', 'b'], ['content-length', '5']]],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nContent-Length: 5', 'GET', [['X-A', 'b'], ['content-length', '5']]],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked', 'GET', [['Transfer-Encoding', 'chunked']]],
    ['HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nX-A: b', 'GET', [['X-A', 'b']]],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: 10', 'GET', [['Content-Length', '10']]],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10, 10', 'HEAD', [['content-length', '10']]],
  ])('the Content-Length a head passes on: %p (%s)', (head, method, fields) => {
    expect(parseResponseHead(head, method).headers).toEqual(fields as [string, string][])
  })
})
