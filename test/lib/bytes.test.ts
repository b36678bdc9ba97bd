/** lib/bytes.ts: RepeatedStrings (and the request parser with it), copyOut, putRange and concatBytes. */
import { describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { bytesToFill, concatBytes, copyOut, putRange, RepeatedStrings } from '../../src/lib/bytes.ts'
import { parseRequestHeadBytes } from '../../src/http1/request-head.ts'

const bytes = (s: string) => Buffer.from(s, 'latin1')

describe('RepeatedStrings', () => {
  test('gives the same string back while the bytes repeat, and a new one when they change', () => {
    const strings = new RepeatedStrings()
    const a = strings.latin1(bytes('xx/index.htmlyy'), 2, 13, 0)
    expect(a).toBe('/index.html')
    // Same bytes in another buffer at another offset: the very same string.
    const again = strings.latin1(bytes('/index.html'), 0, 11, 0)
    expect(again).toBe(a)
    // Same length, one byte different (first, middle, last): new strings with the new bytes.
    for (const next of ['/index.htmm', '/inde_.html', 'xindex.html']) expect(strings.latin1(bytes(next), 0, 11, 0)).toBe(next)
    // Shorter, longer, empty.
    expect(strings.latin1(bytes('/index.htm'), 0, 10, 0)).toBe('/index.htm')
    expect(strings.latin1(bytes('/index.html?q'), 0, 13, 0)).toBe('/index.html?q')
    expect(strings.latin1(bytes('abc'), 1, 1, 0)).toBe('')
    expect(strings.latin1(bytes('abc'), 0, 3, 0)).toBe('abc')
  })

  test('keeps slots apart, and bytes above 0x7f as latin1', () => {
    const strings = new RepeatedStrings()
    expect(strings.latin1(bytes('example.com'), 0, 11, 1)).toBe('example.com')
    expect(strings.latin1(bytes('example.org'), 0, 11, 2)).toBe('example.org')
    expect(strings.latin1(bytes('example.com'), 0, 11, 1)).toBe('example.com')
    expect(strings.latin1(bytes('example.org'), 0, 11, 2)).toBe('example.org')
    const high = Buffer.from([0x2f, 0xe9, 0xff])
    expect(strings.latin1(high, 0, 3, 0)).toBe('/\u00e9\u00ff')
    expect(strings.latin1(Buffer.from([0x2f, 0xe9, 0xfe]), 0, 3, 0)).toBe('/\u00e9\u00fe')
  })

  test('does not keep strings over 256 characters', () => {
    const strings = new RepeatedStrings()
    const long = `/${'a'.repeat(300)}`
    const first = strings.latin1(bytes(long), 0, long.length, 0)
    expect(first).toBe(long)
    // Equal, but made again: nothing long is held for the connection.
    const second = strings.latin1(bytes(long), 0, long.length, 0)
    expect(second).toBe(long)
    expect(strings.latin1(bytes(`/${'a'.repeat(299)}b`), 0, long.length, 0)).toBe(`/${'a'.repeat(299)}b`)
  })
})

describe('parseRequestHeadBytes with a connection\'s RepeatedStrings', () => {
  const parse = (strings: RepeatedStrings, head: string) => {
    const b = bytes(`${head}\r\n\r\n`)
    return parseRequestHeadBytes(b, head.length, strings)
  }
  test('targets, Host and Connection are read right as they change from request to request', () => {
    const strings = new RepeatedStrings()
    const heads: [string, string, string, boolean][] = [
      ['/a', 'example.com', 'keep-alive', true],
      ['/a', 'example.com', 'keep-alive', true],
      ['/b', 'example.com', 'close', false],
      ['/b', 'example.org', 'close', false],
      ['/bb', 'example.org:8080', 'keep-alive', true],
      ['/b', 'example.org', 'Keep-Alive', true],
      ['/b', 'exAmple.org', 'Close', false],
    ]
    for (const [target, host, connection, keepAlive] of heads) {
      const h = parse(strings, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: ${connection}`)
      expect([h.target, h.host, h.values[1], h.keepAlive]).toEqual([target, host, connection, keepAlive])
    }
  })

  test('an absolute-form target is still reduced, and a Host that repeats is still checked', () => {
    const strings = new RepeatedStrings()
    expect(parse(strings, 'GET http://example.com/x?y HTTP/1.1\r\nHost: example.com').target).toBe('/x?y')
    expect(parse(strings, 'GET http://example.com/x?y HTTP/1.1\r\nHost: example.com').target).toBe('/x?y')
    expect(() => parse(strings, 'GET / HTTP/1.1\r\nHost: exa mple.com')).toThrow('invalid Host header')
    expect(() => parse(strings, 'GET http://example.com/x?y HTTP/1.1\r\nHost: example.org')).toThrow('names another host')
  })
})

describe('copyOut and putRange', () => {
  test('copy the range, short and long, out of a Buffer and a plain Uint8Array', () => {
    const src = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff))
    for (const from of [0, 7]) {
      for (const n of [0, 1, 64, 65, 200]) {
        const want = [...src.subarray(from, from + n)]
        expect([...copyOut(src, from, from + n)]).toEqual(want)
        expect([...copyOut(new Uint8Array(src), from, from + n)]).toEqual(want)
        const out = new Uint8Array(n + 3)
        expect(putRange(out, 3, src, from, from + n)).toBe(n + 3)
        expect([...out.subarray(3)]).toEqual(want)
        const out2 = new Uint8Array(n + 3)
        putRange(out2, 3, new Uint8Array(src), from, from + n)
        expect([...out2.subarray(3)]).toEqual(want)
      }
    }
  })
})

test('concatBytes: parts in order, from 4 KiB up in an array not zeroed first, and a total above the parts is zero past them', () => {
  const parts = [new Uint8Array(3000).fill(1), new Uint8Array(3000).fill(2)]
  const joined = concatBytes(parts)
  expect(joined.byteLength).toBe(6000)
  expect(joined[2999]).toBe(1)
  expect(joined[3000]).toBe(2)
  // Dirty memory first: what allocUnsafe may hand out again.
  for (let i = 0; i < 50; i++) Buffer.allocUnsafe(8192).fill(0xee)
  const padded = concatBytes([new Uint8Array(5000).fill(7)], 9000)
  expect(padded.byteLength).toBe(9000)
  expect(padded.subarray(0, 5000).every((b) => b === 7)).toBe(true)
  expect(padded.subarray(5000).every((b) => b === 0)).toBe(true)
  expect(bytesToFill(100)).toEqual(new Uint8Array(100))
})
