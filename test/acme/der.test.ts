import { describe, expect, test } from 'bun:test'
import { bitString, children, encodeLength, integer, oid, readTlv, sequence, setOf, utf8String, DerError } from '../../src/acme/der.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('DER encoder', () => {
  test.each([
    [0, '00'],
    [127, '7f'],
    [128, '8180'],
    [255, '81ff'],
    [256, '820100'],
    [65536, '83010000'],
  ])('length %d -> %s', (n, want) => expect(hex(encodeLength(n))).toBe(want))

  test.each([
    [0, '020100'],
    [127, '02017f'],
    [128, '02020080'], // top bit set: a leading zero keeps it positive (X.690 §8.3.2)
    [256, '02020100'],
  ])('integer %d -> %s', (n, want) => expect(hex(integer(n))).toBe(want))

  test('integer from bytes drops redundant leading zeros', () => {
    expect(hex(integer(Uint8Array.of(0, 0, 0x01, 0x02)))).toBe('02020102')
    expect(hex(integer(Uint8Array.of(0, 0xff)))).toBe('020200ff')
  })

  test.each([
    ['2.5.4.3', '0603550403'],
    ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'],
    ['1.2.840.113549.1.9.14', '06092a864886f70d01090e'],
    ['2.5.29.17', '0603551d11'],
  ])('oid %s', (dotted, want) => expect(hex(oid(dotted))).toBe(want))

  test('bad OIDs are refused', () => {
    expect(() => oid('1')).toThrow(DerError)
    expect(() => oid('3.1')).toThrow(DerError)
    expect(() => oid('1.2.x')).toThrow(DerError)
  })

  test('SET OF sorts its elements (X.690 §11.6)', () => {
    expect(hex(setOf(integer(2), integer(1)))).toBe('3106020101020102')
  })

  test('bit string carries the unused-bits octet; long content gets a long length', () => {
    expect(hex(bitString(Uint8Array.of(0xab)))).toBe('030200ab')
    const long = utf8String('x'.repeat(200))
    expect(hex(long.subarray(0, 3))).toBe('0c81c8')
  })

  test('reader walks what the encoder wrote', () => {
    const der = sequence(integer(5), oid('2.5.4.3'), utf8String('hi'))
    const top = readTlv(der, 0)
    expect(top.end).toBe(der.length)
    expect(children(der, top).map((t) => t.tag)).toEqual([0x02, 0x06, 0x0c])
    expect(() => readTlv(der.subarray(0, der.length - 1), 0)).toThrow(DerError)
  })
})
