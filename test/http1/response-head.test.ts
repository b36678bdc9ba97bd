/**
 * The upstream response head parser's framing and keep-alive decisions (http1/response-head.ts),
 * including the fast paths for the usual single values of Content-Length and Connection, which
 * must decide exactly as the general list reading does.
 */
import { describe, expect, test } from 'bun:test'
import { parseResponseHead } from '../../src/http1/response-head.ts'
import { contentLength } from '../../src/http1/chars.ts'

const head = (lines: string[], status = 'HTTP/1.1 200 OK') => [status, ...lines].join('\r\n')

describe('Content-Length', () => {
  test.each([
    ['0', 0],
    ['100', 100],
    ['007', 7],
    ['999999999999999', 999999999999999],
    ['5, 5', 5],
    ['5,5', 5],
    // SP and HTAB around a list member are optional whitespace (RFC 9110 §5.6.1).
    [' 5', 5],
    ['5\t', 5],
    // By value, not by digit count: leading zeros are digits (1*DIGIT, RFC 9110 §8.6; eighteenth round of review).
    ['0000000000000005', 5],
    ['00000000000000000000000005', 5],
    ['0000000000000000', 0],
    ['000999999999999999', 999999999999999],
  ])('%p reads as %p', (value, n) => {
    expect(contentLength(value, undefined)).toBe(n)
  })

  test.each(['', '+5', '-1', '1e3', '0x10', '1234567890123456', '01234567890123456', '5,', '\u00a05', '5\u00a0', '٥'])('%p is invalid', (value) => {
    expect(contentLength(value, undefined)).toBe('invalid')
  })

  test('a second field must agree with the first', () => {
    expect(contentLength('5', 5)).toBe(5)
    expect(contentLength('6', 5)).toBe('conflict')
    expect(contentLength('5, 6', undefined)).toBe('conflict')
  })

  test('the parser frames by it, and refuses a conflict', () => {
    expect(parseResponseHead(head(['Content-Length: 100']), 'GET').framing).toEqual({ kind: 'length', length: 100 })
    expect(parseResponseHead(head(['Content-Length: 0']), 'GET').framing).toEqual({ kind: 'none' })
    expect(() => parseResponseHead(head(['Content-Length: 1', 'Content-Length: 2']), 'GET')).toThrow('conflicting')
    expect(() => parseResponseHead(head(['Content-Length: 1x']), 'GET')).toThrow('invalid Content-Length')
    expect(parseResponseHead(head(['Content-Length: 0000000000000005']), 'GET').framing).toEqual({ kind: 'length', length: 5 })
  })
})

describe('keep-alive after the response', () => {
  test.each([
    ['HTTP/1.1 200 OK', 'keep-alive', false],
    ['HTTP/1.1 200 OK', 'Keep-Alive', false],
    ['HTTP/1.1 200 OK', 'close', true],
    ['HTTP/1.1 200 OK', 'CLOSE', true],
    ['HTTP/1.1 200 OK', 'keep-alive, close', true],
    ['HTTP/1.1 200 OK', 'foo', false],
    ['HTTP/1.1 200 OK', undefined, false],
    ['HTTP/1.0 200 OK', undefined, true],
    ['HTTP/1.0 200 OK', 'keep-alive', false],
    ['HTTP/1.0 200 OK', 'foo, Keep-Alive', false],
    ['HTTP/1.0 200 OK', 'close', true],
  ])('%s with Connection %p closes: %p', (status, connection, closes) => {
    const lines = ['Content-Length: 1']
    if (connection !== undefined) lines.push(`Connection: ${connection}`)
    expect(parseResponseHead(head(lines, status), 'GET').closeAfter).toBe(closes)
  })

  test('HTTP/1.2 to 1.9 are read as HTTP/1.1 (RFC 9110 §2.5): persistent, chunked allowed; other forms stay refused', () => {
    for (const status of ['HTTP/1.2 200 OK', 'HTTP/1.9 200 OK']) {
      const r = parseResponseHead(head(['Transfer-Encoding: chunked'], status), 'GET')
      expect([r.minorVersion, r.closeAfter]).toEqual([1, false])
    }
    for (const status of ['HTTP/1.x 200 OK', 'HTTP/1.10 200 OK', 'HTTP/2.0 200 OK', 'HTTP/1. 200 OK']) expect(() => parseResponseHead(head(['Content-Length: 1'], status), 'GET')).toThrow(/malformed status line/)
  })

  test('two Connection fields are one list', () => {
    expect(parseResponseHead(head(['Content-Length: 1', 'Connection: keep-alive', 'Connection: close']), 'GET').closeAfter).toBe(true)
  })
})

describe("the upstream's Keep-Alive timeout", () => {
  test.each([
    ['timeout=5', 5000],
    ['timeout=5, max=100', 5000],
    ['max=100, timeout=15', 15000],
    ['Timeout = 72', 72000],
    ['timeout="7"', 7000],
    ['timeout=0', 0],
    ['timeout=5s', undefined],
    ['timeout=-1', undefined],
    ['timeout=1.5', undefined],
    ['timeout=', undefined],
    ['max=100', undefined],
    ['', undefined],
  ])('Keep-Alive: %p says %p ms', (value, ms) => {
    expect(parseResponseHead(head(['Content-Length: 1', `Keep-Alive: ${value}`]), 'GET').keepAliveTimeoutMs).toBe(ms)
  })

  test('none said without the field; the field name in any case; a second field with a timeout wins', () => {
    expect(parseResponseHead(head(['Content-Length: 1']), 'GET').keepAliveTimeoutMs).toBeUndefined()
    expect(parseResponseHead(head(['Content-Length: 1', 'KEEP-ALIVE: timeout=9']), 'GET').keepAliveTimeoutMs).toBe(9000)
    expect(parseResponseHead(head(['Keep-Alive: timeout=9', 'Content-Length: 1', 'Keep-Alive: max=5, timeout=4']), 'GET').keepAliveTimeoutMs).toBe(4000)
    expect(parseResponseHead(head(['Keep-Alive: timeout=9', 'Keep-Alive: max=5']), 'GET').keepAliveTimeoutMs).toBe(9000)
  })
})

test('every field of a head with more fields than the first offset buffer holds keeps its own name and value', () => {
  const lines = Array.from({ length: 300 }, (_, i) => `X-F${i}:  v${i} `)
  const first = parseResponseHead(head(lines), 'GET')
  // A second, smaller head parsed after it must not see the first one's offsets.
  const second = parseResponseHead(head(['A: 1', 'B:2']), 'GET')
  expect(first.headers).toEqual(lines.map((_, i) => [`X-F${i}`, `v${i}`]))
  expect(first.raw!.spans.length).toBe(4 * 300)
  expect(second.headers).toEqual([['A', '1'], ['B', '2']])
  expect(second.raw!.spans.length).toBe(8)
})
