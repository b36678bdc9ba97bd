/**
 * JSON Web Signatures for ACME (RFC 8555 §6.2, RFC 7515 flattened JSON serialization): the
 * account key as a JWK, its RFC 7638 thumbprint (for key authorizations, RFC 8555 §8.1), and
 * signing with ES256 (P-256) or RS256 (RSA). Keys are node:crypto KeyObjects; nothing here
 * touches the network or the disk (client.ts and store.ts do).
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'

export type JwsAlg = 'ES256' | 'RS256'

export interface Jwk {
  kty: string
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
}

export class JwsError extends Error {
  readonly code = 'E_ACME_KEY'
}

export function b64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url')
}

/** A new P-256 key: ES256 is what Let's Encrypt and most ACME servers prefer, and small. */
export function generateAccountKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
}

/** ES256 for P-256 keys, RS256 for RSA keys of at least 2048 bits; anything else is refused. */
export function algFor(key: KeyObject): JwsAlg {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) return 'RS256'
  throw new JwsError('the ACME account key must be a P-256 EC key or an RSA key of 2048 bits or more; delete it from the state directory to have a new one made')
}

/** The public JWK with only its required members (RFC 7638 §3.2), so the thumbprint is stable. */
export function publicJwk(key: KeyObject): Jwk {
  const full = key.export({ format: 'jwk' }) as Jwk
  return algFor(key) === 'ES256' ? { crv: full.crv, kty: 'EC', x: full.x, y: full.y } : { e: full.e, kty: 'RSA', n: full.n }
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace. */
export function thumbprint(key: KeyObject): string {
  const jwk = publicJwk(key)
  const json = jwk.kty === 'EC' ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}` : `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`
  return b64url(createHash('sha256').update(json).digest())
}

/** RFC 8555 §8.1: token "." base64url(thumbprint(accountKey)). */
export function keyAuthorization(token: string, key: KeyObject): string {
  return `${token}.${thumbprint(key)}`
}

export interface FlattenedJws {
  protected: string
  payload: string
  signature: string
}

/**
 * Signs one ACME request. `kid` (the account URL) once the account exists, else the JWK
 * (RFC 8555 §6.2: exactly one of them). `payload` undefined is POST-as-GET: the empty string.
 */
export function signJws(key: KeyObject, header: { url: string; nonce: string; kid?: string }, payload: unknown): FlattenedJws {
  const alg = algFor(key)
  const prot: Record<string, unknown> = { alg, nonce: header.nonce, url: header.url }
  if (header.kid !== undefined) prot.kid = header.kid
  else prot.jwk = publicJwk(key)
  const protectedB64 = b64url(JSON.stringify(prot))
  const payloadB64 = payload === undefined ? '' : b64url(JSON.stringify(payload))
  const input = Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii')
  // JWS ECDSA signatures are r||s, 32 bytes each (RFC 7518 §3.4), not the DER of X9.62.
  const sig = alg === 'ES256' ? sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }) : sign('sha256', input, key)
  return { protected: protectedB64, payload: payloadB64, signature: b64url(sig) }
}
