/**
 * The chunked decoder's output per read: a view of the read for each chunk's data of 4 KiB or more, one buffer for each run of
 * smaller chunks (outside review, thirteenth round; the views since the thirty-fourth session).
 */
import { expect, test } from 'bun:test'
import { ChunkedDecodeError, ChunkedDecoder } from '../../src/http1/chunked.ts'

const enc = (s: string) => new TextEncoder().encode(s)

test('a read of 65,536 one-byte chunks is one emit of 65,536 bytes, not 65,536 views (a client\'s memory attack)', () => {
  const input = enc('1\r\nX\r\n'.repeat(65_536))
  const d = new ChunkedDecoder()
  const emitted: Uint8Array[] = []
  expect(d.feed(input, (s) => emitted.push(s))).toBe(input.length)
  expect(emitted).toHaveLength(1)
  expect(emitted[0]!.byteLength).toBe(65_536)
  expect(emitted[0]!.every((b) => b === 0x58)).toBe(true)
})

test('one chunk\'s data in a read is handed on as a view of the read, not copied', () => {
  const input = enc(`400\r\n${'a'.repeat(1024)}\r\n`)
  const emitted: Uint8Array[] = []
  new ChunkedDecoder().feed(input, (s) => emitted.push(s))
  expect(emitted).toHaveLength(1)
  expect(emitted[0]!.buffer).toBe(input.buffer)
  expect(emitted[0]!.byteOffset).toBe(5)
})

test('a read with the end of one large chunk and the start of the next hands on two views of the read, not a copy of both', () => {
  // As curl -T - frames an upload (64 KiB chunks), read in pieces that do not follow the chunks.
  const tail = 'a'.repeat(20_000)
  const input = enc(`${tail}\r\n10000\r\n${'b'.repeat(30_000)}`)
  const d = new ChunkedDecoder()
  d.feed(enc(`10000\r\n${'a'.repeat(65_536 - 20_000)}`), () => {})
  const emitted: Uint8Array[] = []
  expect(d.feed(input, (s) => emitted.push(s))).toBe(input.length)
  expect(emitted.map((s) => s.byteLength)).toEqual([20_000, 30_000])
  expect(emitted.every((s) => s.buffer === input.buffer)).toBe(true)
  expect(emitted[1]!.byteOffset).toBe(20_000 + 2 + 7)
})

test('small chunks between large ones are joined, in order, each run into one buffer', () => {
  const big = (c: string) => `1000\r\n${c.repeat(4096)}\r\n`
  const input = enc(`${big('A')}1\r\nb\r\n2\r\ncd\r\n${big('E')}3\r\nfgh\r\n0\r\n\r\n`)
  const emitted: Uint8Array[] = []
  expect(new ChunkedDecoder().feed(input, (s) => emitted.push(s))).toBe(input.length)
  expect(emitted.map((s) => new TextDecoder().decode(s))).toEqual(['A'.repeat(4096), 'bcd', 'E'.repeat(4096), 'fgh'])
  expect(emitted[0]!.buffer).toBe(input.buffer)
  expect(emitted[1]!.buffer).not.toBe(input.buffer)
})

test('chunks split across reads: each read\'s data once, in order, whole at the end', () => {
  const body = 'hello world, chunked in pieces'
  const wire = `5\r\nhello\r\n1\r\n \r\n${(body.length - 6).toString(16)}\r\n${body.slice(6)}\r\n0\r\n\r\n`
  const d = new ChunkedDecoder()
  let got = ''
  let emits = 0
  for (let at = 0; at < wire.length; at += 7) {
    d.feed(enc(wire.slice(at, at + 7)), (s) => {
      emits++
      got += new TextDecoder().decode(s)
    })
  }
  expect(got).toBe(body)
  expect(d.done).toBe(true)
  expect(emits).toBeLessThanOrEqual(Math.ceil(wire.length / 7))
})

test('the data before a framing error in the same read is handed on, then the error is thrown', () => {
  const emitted: string[] = []
  expect(() => new ChunkedDecoder().feed(enc('2\r\nab\r\n1\r\ncXX'), (s) => emitted.push(new TextDecoder().decode(s)))).toThrow(ChunkedDecodeError)
  expect(emitted).toEqual(['abc'])
})
