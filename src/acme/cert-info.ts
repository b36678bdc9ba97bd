/**
 * What the renewal logic needs to know about a PEM chain: the leaf's validity window, its DNS
 * names, and its RFC 9773 certificate ID (authority key identifier "." serial) for ACME
 * Renewal Information. node:crypto's X509Certificate reads most of it; the AKI extension it does
 * not expose is read from the DER here.
 */
import { X509Certificate } from 'node:crypto'
import { children, readTlv, type Tlv } from './der.ts'

export interface CertInfo {
  notBeforeMs: number
  notAfterMs: number
  /** DNS names of the subjectAltName, lower-case. */
  names: string[]
  /** RFC 9773 §4.1 unique identifier; undefined when the leaf has no authority key identifier. */
  certId: string | undefined
}

/** Reads the first certificate of a PEM chain; throws when it is not a certificate. */
export function certInfo(chainPem: string): CertInfo {
  const leaf = new X509Certificate(chainPem)
  const names = (leaf.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase())
  return {
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
    names,
    certId: renewalCertId(new Uint8Array(leaf.raw)),
  }
}

const AKI_OID = Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x23) // 2.5.29.35

/**
 * RFC 9773 §4.1: base64url(keyIdentifier of the AKI) "." base64url(serialNumber's DER content
 * octets, leading zero included). Certificate ::= SEQUENCE { tbsCertificate, ... } and
 * TBSCertificate ::= SEQUENCE { [0] version, serialNumber, ..., [3] extensions } (RFC 5280 §4.1).
 */
export function renewalCertId(der: Uint8Array): string | undefined {
  try {
    const cert = readTlv(der, 0)
    const tbs = children(der, cert)[0]!
    const fields = children(der, tbs)
    const serial = fields[0]!.tag === 0xa0 ? fields[1]! : fields[0]!
    const extsWrapper = fields.find((f) => f.tag === 0xa3)
    if (!extsWrapper) return undefined
    const exts = children(der, children(der, extsWrapper)[0]!)
    for (const ext of exts) {
      const parts = children(der, ext)
      if (!bytesEqual(der.subarray(parts[0]!.start, parts[0]!.end), AKI_OID)) continue
      const value = parts[parts.length - 1]! // extnValue OCTET STRING (after an optional critical flag)
      const aki = readTlv(der, value.contentStart)
      const keyId = children(der, aki).find((t: Tlv) => t.tag === 0x80) // [0] IMPLICIT KeyIdentifier
      if (!keyId) return undefined
      const b64 = (t: Tlv) => Buffer.from(der.subarray(t.contentStart, t.end)).toString('base64url')
      return `${b64(keyId)}.${b64(serial)}`
    }
    return undefined
  } catch {
    return undefined
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}
