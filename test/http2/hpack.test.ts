import { describe, expect, test } from 'bun:test'
import { Http2Error } from '../../src/http2/errors.ts'
import { decodeInt, encodeInt, HpackDecoder, HpackEncoder, type HeaderField } from '../../src/http2/hpack.ts'
import { CODES, codeLength, EOS, huffmanDecode, huffmanEncode, huffmanLength } from '../../src/http2/huffman.ts'

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')

// RFC 7541 Appendix C: each group shares one decoder; C.5 and C.6 use a 256-byte table.
const AUTH = [':authority', 'www.example.com']
const C3 = [
  { hex: '828684410f7777772e6578616d706c652e636f6d', size: 57, fields: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], AUTH] },
  { hex: '828684be58086e6f2d6361636865', size: 110, fields: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], AUTH, ['cache-control', 'no-cache']] },
  { hex: '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565', size: 164, fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], AUTH, ['custom-key', 'custom-value']] },
]
const C4 = [
  { ...C3[0]!, hex: '828684418cf1e3c2e5f23a6ba0ab90f4ff' },
  { ...C3[1]!, hex: '828684be5886a8eb10649cbf' },
  { ...C3[2]!, hex: '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf' },
]
const R1 = [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']]
const R2 = [[':status', '307'], ...R1.slice(1)]
const R3 = [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']]
const C5 = [
  { hex: '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d', size: 222, fields: R1 },
  { hex: '4803333037c1c0bf', size: 222, fields: R2 },
  { hex: '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31', size: 215, fields: R3 },
]
const C6 = [
  { hex: '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3', size: 222, fields: R1 },
  { hex: '4883640effc1c0bf', size: 222, fields: R2 },
  { hex: '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007', size: 215, fields: R3 },
]

describe('HPACK integers (RFC 7541 C.1)', () => {
  test.each([
    [10, 5, '0a'],
    [1337, 5, '1f9a0a'],
    [42, 8, '2a'],
  ])('%d with a %d-bit prefix', (value, prefix, bytes) => {
    const out = new Uint8Array(8)
    expect(toHex(out.subarray(0, encodeInt(out, 0, value, prefix, 0)))).toBe(bytes)
    expect(decodeInt(hex(bytes), 0, prefix)).toEqual([value, bytes.length / 2])
  })
  test('an integer above 2^31-1 is a COMPRESSION_ERROR', () => {
    expect(() => decodeInt(hex('1fffffffff0f'), 0, 5)).toThrow(Http2Error)
  })
  test('the largest value takes five continuation bytes; a longer encoding is refused, whatever it adds', () => {
    // 2^31-1 with a 5-bit prefix: 31 + 2147483616 = e0 ff ff ff 07.
    expect(decodeInt(hex('1fe0ffffff07'), 0, 5)).toEqual([2 ** 31 - 1, 6])
    // Six continuation bytes that add nothing past the fifth: 31 + 0.
    expect(() => decodeInt(hex('1f808080808000'), 0, 5)).toThrow(Http2Error)
    // 150 bytes of 0x80: 2 ** shift would reach Infinity and the value NaN, which once passed.
    expect(() => decodeInt(hex('1f' + '80'.repeat(150) + '00'), 0, 5)).toThrow(Http2Error)
  })
  test('a table size update of 150 padded bytes is refused, and the table keeps its limit', () => {
    const d = new HpackDecoder(4096, 65536)
    expect(() => d.decode(hex('3f' + '80'.repeat(150) + '00' + '82'))).toThrow(Http2Error)
    // A string length padded the same way.
    const d2 = new HpackDecoder(4096, 65536)
    expect(() => d2.decode(hex('400178' + '7f' + '80'.repeat(150) + '00'))).toThrow(Http2Error)
  })
})

describe('HPACK decoder, RFC 7541 Appendix C', () => {
  test('C.2.1-C.2.4 single representations', () => {
    const d = new HpackDecoder(4096, 65536)
    expect(d.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572')).fields).toEqual([['custom-key', 'custom-header']])
    expect(d.table.size).toBe(55)
    const d2 = new HpackDecoder(4096, 65536)
    expect(d2.decode(hex('040c2f73616d706c652f70617468')).fields).toEqual([[':path', '/sample/path']])
    expect(d2.decode(hex('100870617373776f726406736563726574')).fields).toEqual([['password', 'secret']])
    expect(d2.decode(hex('82')).fields).toEqual([[':method', 'GET']])
    expect(d2.table.size).toBe(0)
  })
  for (const [name, group, tableBytes] of [['C.3', C3, 4096], ['C.4', C4, 4096], ['C.5', C5, 256], ['C.6', C6, 256]] as const) {
    test(`${name}: three blocks on one connection`, () => {
      const d = new HpackDecoder(4096, 65536)
      if (tableBytes !== 4096) d.decode(hex('3fe101')) // a size update to 256 (3f e1 01 = 31 + 225)
      for (const v of group) {
        expect(d.decode(hex(v.hex)).fields).toEqual(v.fields as HeaderField[])
        expect(d.table.size).toBe(v.size)
      }
    })
  }
  test('errors: index 0, index past the table, late size update, oversize table, bad padding', () => {
    const bad = ['80', 'ff00', '82' + '3f01', '3fe21f', '4183' + 'ffffff']
    for (const b of bad) {
      const d = new HpackDecoder(4096, 65536)
      let err: unknown
      try {
        d.decode(hex(b))
      } catch (e) {
        err = e
      }
      expect((err as Http2Error | undefined)?.code, b).toBe('E_H2_COMPRESSION_ERROR')
    }
  })
  test('an HPACK bomb stops growing the list at the cap but keeps the table in step', () => {
    const d = new HpackDecoder(4096, 16 * 1024)
    const big = 'x'.repeat(4000)
    // One literal with indexing of ~4 KB, then 1000 one-byte references to it: ~4 MB decoded.
    const lenBytes = new Uint8Array(4)
    const lenEnd = encodeInt(lenBytes, 0, 4000, 7, 0)
    const block = [0x40, 0x01, 0x61, ...lenBytes.subarray(0, lenEnd), ...Buffer.from(big), ...new Array(1000).fill(0xbe), 0x82]
    const out = d.decode(Uint8Array.from(block))
    expect(out.tooLarge).toBe(true)
    expect(out.fields.length).toBeLessThanOrEqual(4)
    expect(out.listBytes).toBeGreaterThan(4_000_000)
    expect(d.table.size).toBe(4033)
  })
})

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('code lengths form a complete prefix code (Kraft sum is exactly 1)', () => {
    let sum = 0
    for (let s = 0; s <= EOS; s++) sum += 2 ** -codeLength(s)
    expect(sum).toBe(1)
  })
  test.each([
    [0, 0x1ff8, 13],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [92, 0x7fff0, 19],
    [127, 0xffffffc, 28],
    [195, 0x7fff1, 19],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ])('symbol %d is %i in %d bits', (sym, code, len) => {
    expect(CODES[sym]).toBe(code)
    expect(codeLength(sym)).toBe(len)
  })
  test('every byte value round-trips', () => {
    const s = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')
    const out = new Uint8Array(huffmanLength(s))
    expect(huffmanEncode(s, out, 0)).toBe(out.length)
    expect(Buffer.from(huffmanDecode(out)!).toString('latin1')).toBe(s)
  })
  test('rejects padding longer than 7 bits, padding not of ones, and EOS', () => {
    expect(huffmanDecode(hex('ffff'))).toBeUndefined() // 16 bits of padding
    expect(huffmanDecode(hex('00'))).toBeUndefined() // '0' then padding 000
    expect(huffmanDecode(hex('fffffffc'))).toBeUndefined() // EOS (30 ones) then 2 bits
    expect(Buffer.from(huffmanDecode(hex('1f'))!).toString()).toBe('a') // 00011 + 111
  })
})

describe('HPACK encoder', () => {
  test('round-trips through the decoder across blocks, with indexing and table size changes', () => {
    const enc = new HpackEncoder(4096)
    const dec = new HpackDecoder(4096, 65536)
    const blocks: HeaderField[][] = [
      [[':status', '200'], ['content-type', 'text/plain'], ['server', 'proxy'], ['x-a', 'b'.repeat(300)]],
      [[':status', '404'], ['content-type', 'text/plain'], ['server', 'proxy'], ['set-cookie', 'a=1']],
      [[':status', '200'], ['content-type', 'text/plain'], ['server', 'proxy'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT']],
    ]
    const sizes: number[] = []
    for (const b of blocks) {
      const bytes = enc.encode(b)
      sizes.push(bytes.length)
      expect(dec.decode(bytes).fields).toEqual(b)
    }
    enc.setPeerTableSize(0)
    const b4: HeaderField[] = [[':status', '200'], ['content-type', 'text/plain']]
    expect(dec.decode(enc.encode(b4)).fields).toEqual(b4)
    expect(dec.table.size).toBe(0)
    // Repeated fields become one-byte references to the dynamic table.
    expect(sizes[2]!).toBeLessThan(sizes[0]!)
  })
})

describe('values new on every response (X-Request-Id)', () => {
  test('only the first is indexed, for its name; the rest refer to the name and leave the table as it is', () => {
    const enc = new HpackEncoder(4096)
    const dec = new HpackDecoder(4096, 65536)
    const fields = (id: string): [string, string][] => [[':status', '200'], ['server', 'origin'], ['x-request-id', id]]
    const first = enc.encode(fields('0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77'))
    expect(dec.decode(first).fields).toEqual(fields('0b6f2c1e-1c1a-4b57-9c65-1f0a3c6e9e77'))
    const entries = enc.table.length
    const sizes: number[] = []
    for (let i = 0; i < 50; i++) {
      const id = `id-${i}-${'x'.repeat(30)}`
      const block = enc.encode(fields(id))
      sizes.push(block.byteLength)
      expect(dec.decode(block).fields).toEqual(fields(id))
    }
    // Nothing more was inserted, so the server entry was never pushed out by ids.
    expect(enc.table.length).toBe(entries)
    // Every later block refers to the name the first one carried (and :status and server by index).
    for (const n of sizes) expect(n).toBeLessThan(first.byteLength)
  })
})
