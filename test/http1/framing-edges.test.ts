/**
 * Framing edges no other test pinned down, found by mutating the parsers (outside review,
 * twentieth round: each case here let a mutant through that changed what reached an origin or
 * a client): Content-Length's digits, the request line's method, version and leading empty
 * lines, the head's size cap and bare LFs, chunk data's CRLF and a trailer's DEL, and a
 * response's three-digit status.
 */
import { Buffer } from 'node:buffer'
import { describe, expect, test } from 'bun:test'
import { contentLength } from '../../src/http1/chars.ts'
import { ChunkedDecodeError, ChunkedDecoder } from '../../src/http1/chunked.ts'
import { HeadReader } from '../../src/http1/head-reader.ts'
import { parseRequestHead, RequestHeadError, unfinishedHeadError } from '../../src/http1/request-head.ts'
import { parseResponseHead } from '../../src/http1/response-head.ts'

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return err instanceof RequestHeadError ? err.code : (err as Error).name
  }
  return undefined
}

const held = (text: string): HeadReader => {
  const r = new HeadReader()
  r.append(Buffer.from(text, 'latin1'))
  return r
}

describe('Content-Length', () => {
  test.each(['1:', '9:', '1/', '0:', ':1'])('%p is not a length (":" and "/" border the digits)', (v) => {
    expect(contentLength(v, undefined)).toBe('invalid')
  })
  test('a response head with Content-Length: 1: is refused', () => {
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 1:', 'GET')).toThrow()
  })
})

describe('the request line', () => {
  test.each([
    [' / HTTP/1.1', 'BAD_REQUEST'], // no method
    ['GET / HTTP/1.1x', 'BAD_REQUEST'],
    ['GET / HTTP/1.1 extra', 'BAD_REQUEST'],
    ['GET / HTTP/x.1', 'BAD_REQUEST'], // not a version at all: 400, not 505
    ['\rxGET / HTTP/1.1', 'BAD_REQUEST'], // a CR alone is no empty line
  ])('%p: %s', (line, code) => {
    expect(codeOf(() => parseRequestHead(`${line}\r\nHost: a`))).toBe(code)
  })
  test('empty lines before the request line are skipped (RFC 9112 §2.2)', () => {
    expect(parseRequestHead('\r\n\r\nGET / HTTP/1.1\r\nHost: a').target).toBe('/')
  })
})

describe('the head before it is parsed', () => {
  const MAX = 1024
  const headOf = (bytes: number) => {
    const start = 'GET / HTTP/1.1\r\nHost: a\r\nX: '
    return `${start}${'x'.repeat(bytes - start.length - 4)}\r\n\r\n`
  }
  test('a head of exactly max_header_size bytes (its CRLFCRLF counted) passes; one byte more is 431', () => {
    for (const [bytes, code] of [[MAX, undefined], [MAX + 1, 'HEAD_TOO_LARGE']] as const) {
      const text = headOf(bytes)
      expect(text.length).toBe(bytes)
      const r = held(text)
      expect(unfinishedHeadError(r, r.findRequestEnd(), MAX)?.code).toBe(code)
    }
  })
  test('more than max_header_size with no CRLF yet is a request line too long: 414', () => {
    const r = held(`GET /${'a'.repeat(1100)}`)
    expect(unfinishedHeadError(r, r.findRequestEnd(), MAX)?.code).toBe('URI_TOO_LONG')
  })
  test('a head whose lines end with bare LFs is refused as its LF LF arrives, not at the header timeout', () => {
    const r = held('GET / HTTP/1.1\nHost: a\n\n')
    expect(unfinishedHeadError(r, r.findRequestEnd(), MAX)?.code).toBe('BAD_REQUEST')
  })
})

describe('chunked bodies', () => {
  const decode = (wire: string) => new ChunkedDecoder().feed(new TextEncoder().encode(wire), () => {})
  test.each([
    ['1\r\nxy\n0\r\n\r\n', 'data longer than its size, then LF'],
    ['1\r\nx\rz0\r\n\r\n', 'CR after the data not followed by LF'],
    ['1\r\nx\r\n0\r\nA: b\x7f\r\n\r\n', 'DEL in a trailer value'],
  ])('%p is refused: %s', (wire) => {
    expect(() => decode(wire)).toThrow(ChunkedDecodeError)
  })
  test('the same body framed right is taken whole', () => {
    const d = new ChunkedDecoder()
    let got = ''
    d.feed(new TextEncoder().encode('1\r\nx\r\n0\r\nA: b\r\n\r\n'), (s) => (got += new TextDecoder().decode(s)))
    expect([got, d.done]).toEqual(['x', true])
  })
})

describe('the response status', () => {
  test.each(['HTTP/1.1 2000 OK', 'HTTP/1.1 200X', 'HTTP/1.1 20 OK'])('%p is refused', (line) => {
    expect(() => parseResponseHead(line, 'GET')).toThrow()
  })
  test('HTTP/1.1 200 with no reason phrase is taken', () => {
    expect(parseResponseHead('HTTP/1.1 200 ', 'GET').status).toBe(200)
  })
})
