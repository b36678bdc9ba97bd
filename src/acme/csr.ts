/**
 * The PKCS#10 certificate signing request that finalizes an ACME order (RFC 2986, RFC 8555
 * §7.4): the names go in a subjectAltName extension request (RFC 5280 §4.2.1.6), the first
 * also as the subject CN when it fits (64 characters, RFC 5280 upper bound) for old clients.
 * DER is built with der.ts and signed with node:crypto; keys come from the caller.
 */
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { asciiBytes, bitString, contextTag, integer, nullValue, octetString, oid, sequence, setOf, utf8String } from './der.ts'

const OID = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14', // PKCS#9
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const

/** A new certificate key: P-256, fast handshakes and accepted by every current ACME CA. */
export function generateCertificateKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
}

/** DER of the CSR for `names` (DNS names, lower-case), signed by `key`. */
export function buildCsr(names: readonly string[], key: KeyObject): Uint8Array {
  if (names.length === 0) throw new Error('a CSR needs at least one name')
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }))
  const first = names[0]!
  const subject = first.length <= 64 ? sequence(setOf(sequence(oid(OID.commonName), utf8String(first)))) : sequence()
  // GeneralName dNSName is [2] IMPLICIT IA5String.
  const sanValue = sequence(...names.map((n) => contextTag(2, asciiBytes(n), false)))
  const extensions = sequence(sequence(oid(OID.subjectAltName), octetString(sanValue)))
  const attributes = contextTag(0, sequence(oid(OID.extensionRequest), setOf(extensions)), true)
  const info = sequence(integer(0), subject, spki, attributes)
  const isEc = key.asymmetricKeyType === 'ec'
  // ECDSA AlgorithmIdentifiers omit parameters; RSA ones carry NULL (RFC 5758 §3.2, RFC 4055 §5).
  const algorithm = isEc ? sequence(oid(OID.ecdsaWithSha256)) : sequence(oid(OID.sha256WithRsa), nullValue())
  const signature = new Uint8Array(sign('sha256', info, key))
  return sequence(info, algorithm, bitString(signature))
}

/** PEM form, for logs and for checking with `openssl req -verify`. */
export function csrPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`
}
