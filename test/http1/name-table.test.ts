/** NameTable: the shared constant for a table name found in bytes in any case; nothing for any other name. */
import { describe, expect, test } from 'bun:test'
import { NameTable } from '../../src/http1/chars.ts'

const NAMES = [
  'host', 'te', 'accept', 'cookie', 'origin', 'pragma', 'expect', 'content-length', 'accept-charset',
  'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform',
]
const table = new NameTable(NAMES)
const bytes = (s: string) => new TextEncoder().encode(s)
/** `name` inside other bytes, so find() reads a range of a larger buffer, as the parsers do. */
const lookUp = (name: string) => table.find(bytes(`\r\n${name}: x\r\n`), 2, 2 + name.length)

describe('finds each name in any case', () => {
  test.each(NAMES)('%s', (name) => {
    for (const sent of [name, name.toUpperCase(), name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())]) {
      const found = lookUp(sent)
      expect(found).toBe(name)
    }
  })
})

test('names of the same length and ends are told apart; other names are not found', () => {
  expect(lookUp('sec-fetch-mode')).toBe('sec-fetch-mode')
  expect(lookUp('sec-fetch-dest')).toBe('sec-fetch-dest')
  for (const other of ['sec-fetch-mide', 'sec-fetch-xxxx', 'hosT-', 'hast', 'ho', 't', 'tf', 'x-custom', 'accepT1', 'content_length', 'cookiE ', 'content-lengtH\u00ff']) expect(lookUp(other)).toBeUndefined()
  expect(table.find(bytes('host'), 0, 0)).toBeUndefined()
})

test('bytes that differ from a name only in bit 0x20 outside the letters are not that name', () => {
  // "\r" | 0x20 is "-", "@" | 0x20 is "`": they may share a slot with a name, never match it.
  expect(lookUp('te')).toBe('te')
  expect(table.find(Uint8Array.of(0x74, 0x45), 0, 2)).toBe('te')
  expect(table.find(Uint8Array.of(0x54, 0x05), 0, 2)).toBeUndefined()
})

test('bytes above 0x7f never match a name, even where they share its slot', () => {
  const name = bytes('content-length')
  for (const b of [0xc8, 0xe8, 0xc5, 0xe5, 0xff, 0x80]) {
    for (const at of [0, 6, 12, 13]) {
      const sent = Uint8Array.from(name)
      sent[at] = b
      expect(table.find(sent, 0, sent.length)).toBeUndefined()
    }
  }
})

test('a table refuses names it could never find', () => {
  expect(() => new NameTable(['x'])).toThrow(RangeError)
  expect(() => new NameTable(['Host'])).toThrow(RangeError)
})
