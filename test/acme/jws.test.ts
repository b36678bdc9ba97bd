import { describe, expect, test } from 'bun:test'
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { algFor, generateAccountKey, keyAuthorization, publicJwk, signJws, thumbprint } from '../../src/acme/jws.ts'

const fromB64 = (s: string) => Buffer.from(s, 'base64url')

describe('JWS', () => {
  test('RFC 7638 §3.1 example thumbprint', () => {
    const key = createPublicKey({
      format: 'jwk',
      key: {
        kty: 'RSA',
        n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
        e: 'AQAB',
      },
    })
    expect(thumbprint(key)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
  })

  test('ES256: jwk before the account exists, kid after; r||s signature that verifies', () => {
    const key = generateAccountKey()
    expect(algFor(key)).toBe('ES256')
    const withJwk = signJws(key, { url: 'https://ca/new-acct', nonce: 'n1' }, { termsOfServiceAgreed: true })
    const prot = JSON.parse(fromB64(withJwk.protected).toString())
    expect(prot).toEqual({ alg: 'ES256', nonce: 'n1', url: 'https://ca/new-acct', jwk: publicJwk(key) })
    expect(JSON.parse(fromB64(withJwk.payload).toString())).toEqual({ termsOfServiceAgreed: true })
    const sig = fromB64(withJwk.signature)
    expect(sig.length).toBe(64)
    const input = Buffer.from(`${withJwk.protected}.${withJwk.payload}`)
    expect(verify('sha256', input, { key: createPublicKey(key), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true)
    expect(verify('sha256', Buffer.from(`${withJwk.protected}.x`), { key: createPublicKey(key), dsaEncoding: 'ieee-p1363' }, sig)).toBe(false)

    const withKid = signJws(key, { url: 'https://ca/order', nonce: 'n2', kid: 'https://ca/acct/1' }, undefined)
    const prot2 = JSON.parse(fromB64(withKid.protected).toString())
    expect(prot2.kid).toBe('https://ca/acct/1')
    expect(prot2.jwk).toBeUndefined()
    expect(withKid.payload).toBe('') // POST-as-GET (RFC 8555 §6.3)
  })

  test('RS256 with an RSA key; small or odd keys are refused', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    const jws = signJws(rsa, { url: 'u', nonce: 'n' }, {})
    expect(JSON.parse(fromB64(jws.protected).toString()).alg).toBe('RS256')
    expect(verify('sha256', Buffer.from(`${jws.protected}.${jws.payload}`), createPublicKey(rsa), fromB64(jws.signature))).toBe(true)
    expect(() => algFor(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)).toThrow()
    expect(() => algFor(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey)).toThrow()
  })

  test('key authorization is token.thumbprint', () => {
    const key = generateAccountKey()
    expect(keyAuthorization('tok', key)).toBe(`tok.${thumbprint(key)}`)
  })
})
