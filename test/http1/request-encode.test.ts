import { describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { encodeRequestHead } from '../../src/http1/request-encode.ts'

const text = (b: Uint8Array) => Buffer.from(b).toString('latin1')

describe('encodeRequestHead', () => {
  test('request line, fields in order, framing, blank line', () => {
    const out = encodeRequestHead('GET', '/a?b=1', [['host', 'example.test'], ['x-forwarded-for', '127.0.0.1']], '')
    expect(text(out)).toBe('GET /a?b=1 HTTP/1.1\r\nhost: example.test\r\nx-forwarded-for: 127.0.0.1\r\n\r\n')
  })

  test('framing lines and a whole body in the same array', () => {
    const body = new Uint8Array([0x00, 0xff, 0x41])
    const out = encodeRequestHead('POST', '/up', [['host', 'h']], 'content-length: 3\r\n', body)
    expect(text(out.subarray(0, out.byteLength - 3))).toBe('POST /up HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\n')
    expect([...out.subarray(out.byteLength - 3)]).toEqual([0x00, 0xff, 0x41])
  })

  test('obs-text in a value is written as the latin1 byte it came from', () => {
    const value = Buffer.from([0x63, 0x61, 0x66, 0xe9]).toString('latin1') // "café" read as latin1
    const out = encodeRequestHead('GET', '/', [['x-name', value]], '')
    expect(Buffer.from(out).equals(Buffer.from(`GET / HTTP/1.1\r\nx-name: ${value}\r\n\r\n`, 'latin1'))).toBe(true)
  })

  test('a head past the small-array size is written whole', () => {
    const long = 'v'.repeat(5000)
    const out = encodeRequestHead('GET', '/', [['x-long', long]], 'transfer-encoding: chunked\r\n')
    expect(text(out)).toBe(`GET / HTTP/1.1\r\nx-long: ${long}\r\ntransfer-encoding: chunked\r\n\r\n`)
  })
})
