/**
 * A small DER encoder and reader (ITU-T X.690 §8, §10): just the types a PKCS#10 CSR and an
 * ACME renewal-information certificate ID need. Building the CSR itself is in csr.ts; reading
 * certificates is node:crypto's X509Certificate, except the one extension it does not expose
 * (authority key identifier), which cert-info.ts finds with readTlv.
 */
import { concatBytes } from '../lib/bytes.ts'

/** Universal tags used here (X.680 §8.4). */
export const Tag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  IA5_STRING: 0x16,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

export class DerError extends Error {
  readonly code = 'E_DER'
}

/** Definite-form length octets (X.690 §8.1.3): short form below 128, else 0x8N + N big-endian bytes. */
export function encodeLength(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new DerError(`bad DER length ${length}`)
  if (length < 0x80) return Uint8Array.of(length)
  const bytes: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return Uint8Array.from([0x80 | bytes.length, ...bytes])
}


/** One tag-length-value; `tag` is the whole identifier octet (class, constructed bit, number < 31). */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(tag), encodeLength(content.length), content])
}

export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(Tag.SEQUENCE, concatBytes(items))

/** SET OF: DER sorts the encodings of the elements (X.690 §11.6). */
export function setOf(...items: Uint8Array[]): Uint8Array {
  return tlv(Tag.SET, concatBytes([...items].sort(compareBytes)))
}

/** Context-specific [n]; constructed for EXPLICIT tags and IMPLICIT tags of constructed types. */
export function contextTag(n: number, content: Uint8Array, constructed: boolean): Uint8Array {
  if (n < 0 || n > 30) throw new DerError(`context tag [${n}] needs the high-tag-number form, which this encoder does not write`)
  return tlv(0x80 | (constructed ? 0x20 : 0) | n, content)
}

/** A non-negative INTEGER from its big-endian magnitude: minimal octets, a leading 0 if the top bit is set (§8.3). */
export function integer(magnitude: Uint8Array | number): Uint8Array {
  let bytes = typeof magnitude === 'number' ? numberBytes(magnitude) : magnitude
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  bytes = bytes.subarray(start)
  if (bytes.length === 0) bytes = Uint8Array.of(0)
  return tlv(Tag.INTEGER, bytes[0]! & 0x80 ? concatBytes([Uint8Array.of(0), bytes]) : bytes)
}

function numberBytes(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new DerError(`INTEGER ${n} is not a non-negative safe integer`)
  const out: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256)
  return Uint8Array.from(out.length ? out : [0])
}

/** OBJECT IDENTIFIER from dotted text (§8.19): first two arcs packed as 40*a+b, then base-128 arcs. */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new DerError(`"${dotted}" is not a dotted OID`)
    return Number(a)
  })
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39)) throw new DerError(`"${dotted}" is not a valid OID`)
  const out: number[] = []
  const push = (v: number) => {
    const groups: number[] = [v & 0x7f]
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) groups.unshift((x & 0x7f) | 0x80)
    out.push(...groups)
  }
  push(arcs[0]! * 40 + arcs[1]!)
  for (const a of arcs.slice(2)) push(a)
  return tlv(Tag.OID, Uint8Array.from(out))
}

const text = new TextEncoder()
export const utf8String = (s: string): Uint8Array => tlv(Tag.UTF8_STRING, text.encode(s))

/** IA5 is 7-bit ASCII; a DNS name in a SAN must be an A-label already (RFC 5280 §4.2.1.6). */
export function asciiBytes(s: string): Uint8Array {
  if (!/^[\x00-\x7f]*$/.test(s)) throw new DerError(`"${s}" is not ASCII; convert an internationalised name to its xn-- form`)
  return text.encode(s)
}

export const ia5String = (s: string): Uint8Array => tlv(Tag.IA5_STRING, asciiBytes(s))

export const octetString = (bytes: Uint8Array): Uint8Array => tlv(Tag.OCTET_STRING, bytes)
/** BIT STRING of whole bytes: the first content octet says 0 unused bits (§8.6). */
export const bitString = (bytes: Uint8Array): Uint8Array => tlv(Tag.BIT_STRING, concatBytes([Uint8Array.of(0), bytes]))
export const nullValue = (): Uint8Array => Uint8Array.of(Tag.NULL, 0)

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** One decoded TLV: where its content starts and ends within the input. */
export interface Tlv {
  tag: number
  start: number
  contentStart: number
  end: number
}

/** Reads the TLV at `offset` (definite lengths only, as DER requires). */
export function readTlv(der: Uint8Array, offset: number): Tlv {
  if (offset + 2 > der.length) throw new DerError('truncated DER')
  const tag = der[offset]!
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported')
  let at = offset + 1
  let length = der[at++]!
  if (length === 0x80) throw new DerError('indefinite length is not DER')
  if (length & 0x80) {
    const count = length & 0x7f
    if (count > 4 || at + count > der.length) throw new DerError('bad DER length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + der[at++]!
  }
  if (at + length > der.length) throw new DerError('truncated DER')
  return { tag, start: offset, contentStart: at, end: at + length }
}

/** The TLVs directly inside a constructed value. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let at = parent.contentStart; at < parent.end; ) {
    const t = readTlv(der, at)
    out.push(t)
    at = t.end
  }
  return out
}
