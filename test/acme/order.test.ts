/**
 * One issuance against a scripted CA (a fetch function): the order is ready at once, finalized,
 * and the certificate downloaded. The certificate is made with openssl for the key the CSR
 * carries, with the DNS names the test chooses: one that lacks an ordered name is refused.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AcmeClient } from '../../src/acme/client.ts'
import { generateCertificateKey } from '../../src/acme/csr.ts'
import { AcmeError } from '../../src/acme/errors.ts'
import { generateAccountKey } from '../../src/acme/jws.ts'
import { issueCertificate } from '../../src/acme/order.ts'
import type { LogFn } from '../../src/lib/logger.ts'
import { makeCerts } from '../support/certs.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('proxy-acme-order-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A CA that issues `certPem` for whatever is ordered. */
function scriptedCa(certPem: string): typeof fetch {
  let n = 0
  let finalized = false
  return (async (input: string | URL | Request) => {
    const url = String(input)
    const headers = { 'replay-nonce': `nonce-${++n}` }
    const order = () => Response.json({ status: finalized ? 'valid' : 'ready', identifiers: [], authorizations: [], finalize: 'https://ca.test/finalize', ...(finalized ? { certificate: 'https://ca.test/cert' } : {}) }, { headers: { ...headers, location: 'https://ca.test/order/1' } })
    switch (url) {
      case 'https://ca.test/dir':
        return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' })
      case 'https://ca.test/nonce':
        return new Response(null, { headers })
      case 'https://ca.test/acct':
        return new Response('{}', { headers: { ...headers, location: 'https://ca.test/acct/1' } })
      case 'https://ca.test/order':
      case 'https://ca.test/order/1':
        return order()
      case 'https://ca.test/finalize':
        finalized = true
        return order()
      case 'https://ca.test/cert':
        return new Response(certPem, { headers: { ...headers, 'content-type': 'application/pem-certificate-chain' } })
    }
    return new Response('unexpected', { status: 500 })
  }) as typeof fetch
}

/**
 * A root and `depth` intermediates below it, each signing the next (made once, with openssl):
 * pems[0] is the root, pems[depth] the intermediate that signs the leaf.
 */
function makeHierarchy(depth: number): { pems: string[]; issuerCert: string; issuerKey: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  writeFileSync(join(dir, 'ca.cnf'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'h0.key', '-out', 'h0.pem', '-days', '2', '-subj', '/O=proxy test/CN=chain root')
  for (let i = 1; i <= depth; i++) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `h${i}.key`, '-out', `h${i}.csr`, '-subj', `/O=proxy test/CN=chain intermediate ${i}`)
    run('x509', '-req', '-in', `h${i}.csr`, '-CA', `h${i - 1}.pem`, '-CAkey', `h${i - 1}.key`, '-set_serial', String(1000 + i), '-out', `h${i}.pem`, '-days', '2', '-extfile', 'ca.cnf')
  }
  const pems = Array.from({ length: depth + 1 }, (_, i) => readFileSync(join(dir, `h${i}.pem`), 'utf8'))
  return { pems, issuerCert: `h${depth}.pem`, issuerKey: `h${depth}.key` }
}

/** The CN of each certificate of a PEM chain, in order. */
const commonNames = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((b) => /CN=([^\n]*)/.exec(new X509Certificate(b).subject)?.[1])

/**
 * `chain` turns the leaf openssl made into what the CA sends (default: the leaf alone). The leaf
 * is self-signed unless `issuer` (certificate and key files in `dir`) signs it.
 */
async function issue(names: string[], certNames: string[], nowMs?: () => number, chain: (leaf: string) => string = (leaf) => leaf, log?: LogFn, issuer?: { cert: string; key: string }) {
  const key = generateCertificateKey()
  writeFileSync(join(dir, 'k.pem'), key.export({ type: 'pkcs8', format: 'pem' }) as string)
  const san = `subjectAltName=${certNames.map((n) => `DNS:${n}`).join(',')}`
  if (issuer) {
    writeFileSync(join(dir, 'leaf.cnf'), `${san}\n`)
    execFileSync('openssl', ['req', '-new', '-key', 'k.pem', '-out', 'c.csr', '-subj', `/CN=${certNames[0]}`], { cwd: dir, stdio: 'pipe' })
    execFileSync('openssl', ['x509', '-req', '-in', 'c.csr', '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', '7', '-out', 'c.pem', '-days', '1', '-extfile', 'leaf.cnf'], { cwd: dir, stdio: 'pipe' })
  } else {
    execFileSync('openssl', ['req', '-x509', '-key', 'k.pem', '-out', 'c.pem', '-subj', `/CN=${certNames[0]}`, '-addext', san, '-days', '1'], { cwd: dir, stdio: 'pipe' })
  }
  const accountKey = generateAccountKey()
  const client = new AcmeClient({ directoryUrl: 'https://ca.test/dir', accountKey, fetch: scriptedCa(chain(readFileSync(join(dir, 'c.pem'), 'utf8'))), pollIntervalMs: 1 })
  await client.account(undefined)
  return issueCertificate({ client, accountKey, names, challenges: { publish() {}, unpublish() {} }, certificateKey: key, nowMs, log })
}

describe('issueCertificate', () => {
  test('a certificate for every ordered name is taken', async () => {
    const issued = await issue(['a.test', 'b.test'], ['a.test', 'b.test'])
    expect(issued.certPem).toContain('BEGIN CERTIFICATE')
  })

  test('a certificate that lacks an ordered name is refused, naming it', async () => {
    const err = (await issue(['a.test', 'b.test'], ['a.test']).catch((e) => e)) as AcmeError
    expect(err).toBeInstanceOf(AcmeError)
    expect(err.message).toBe('the issued certificate lacks b.test (it names a.test); not used, the proxy orders again later')
  })

  test('a malformed order or authorization is an E_ACME naming what is missing, not a TypeError', async () => {
    const cases: [string, unknown, unknown, string][] = [
      ['order without authorizations', { status: 'pending', finalize: 'https://ca.test/fin' }, {}, 'new order: the ACME server\'s reply is not an order (no "authorizations" list of URLs)'],
      ['order without finalize', { status: 'ready', authorizations: [] }, {}, 'new order: the ACME server\'s reply is not an order (no "finalize" URL)'],
      ['authorization without challenges', { status: 'pending', authorizations: ['https://ca.test/authz/1'], finalize: 'https://ca.test/fin' }, { status: 'pending', identifier: { type: 'dns', value: 'a.test' } }, 'reading the authorization: the ACME server\'s reply is not an authorization (no "challenges" list)'],
      ['authorization without identifier', { status: 'pending', authorizations: ['https://ca.test/authz/1'], finalize: 'https://ca.test/fin' }, { status: 'pending', challenges: [] }, 'reading the authorization: the ACME server\'s reply is not an authorization (no "identifier" value)'],
    ]
    for (const [label, orderBody, authzBody, message] of cases) {
      let n = 0
      const fetchFn = (async (input: string | URL | Request) => {
        const url = String(input)
        const headers = { 'replay-nonce': `nonce-${++n}`, location: 'https://ca.test/order/1' }
        if (url === 'https://ca.test/dir') return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' })
        if (url === 'https://ca.test/nonce' || url === 'https://ca.test/acct') return new Response('{}', { headers })
        if (url.startsWith('https://ca.test/order')) return Response.json(orderBody, { headers })
        if (url === 'https://ca.test/authz/1') return Response.json(authzBody, { headers })
        return new Response('unexpected', { status: 500 })
      }) as typeof fetch
      const accountKey = generateAccountKey()
      const client = new AcmeClient({ directoryUrl: 'https://ca.test/dir', accountKey, fetch: fetchFn, pollIntervalMs: 1 })
      await client.account(undefined)
      const err = (await issueCertificate({ client, accountKey, names: ['a.test'], challenges: { publish() {}, unpublish() {} } }).catch((e) => e)) as AcmeError
      expect([label, err]).toEqual([label, expect.any(AcmeError)])
      expect(err.code).toBe('E_ACME')
      expect(err.message).toStartWith(message)
    }
  })

  test('a certificate already expired by this host\'s clock is refused, not installed (it would be due again at once)', async () => {
    // openssl makes it valid from now for one day; this host's clock says two days on.
    const later = Date.now() + 2 * 86_400_000
    const err = (await issue(['a.test'], ['a.test'], () => later).catch((e) => e)) as AcmeError
    expect(err).toBeInstanceOf(AcmeError)
    expect(err.code).toBe('E_ACME')
    expect(err.message).toStartWith('the issued certificate expired at ')
    expect(err.message).toContain(`this host's clock says ${new Date(later).toISOString()}`)
  })

  test('a certificate not valid for another day by this host\'s clock is refused', async () => {
    const earlier = Date.now() - 86_400_000
    const err = (await issue(['a.test'], ['a.test'], () => earlier).catch((e) => e)) as AcmeError
    expect(err).toBeInstanceOf(AcmeError)
    expect(err.message).toStartWith('the issued certificate is not valid until ')
    expect(err.message).toContain('Check this host\'s clock')
  })

  test('a chain with a damaged certificate after the leaf is refused, not stored (served, it fails every handshake)', async () => {
    const second = makeCerts(['chain.test']).ca // any other certificate, standing in for the intermediate
    const damaged = second.replace(/\n[A-Za-z0-9+/]{8}/, '\n!!!!!!!!') // not base64 any more
    const cases: [string, (leaf: string) => string, string][] = [
      ['bad base64 in the intermediate', (leaf) => leaf + damaged, 'certificate 2 of 2 does not parse'],
      ['a reply cut off inside the intermediate', (leaf) => leaf + second.slice(0, 120), '1 of its 2 PEM blocks has no matching END line'],
      ['a private key in the chain', (leaf) => `${leaf}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`, 'block 2 is a PRIVATE KEY, not a CERTIFICATE'],
    ]
    for (const [label, chain, why] of cases) {
      const err = (await issue(['a.test'], ['a.test'], undefined, chain).catch((e) => e)) as AcmeError
      expect([label, err]).toEqual([label, expect.any(AcmeError)])
      expect(err.message).toStartWith(`the downloaded certificate chain is damaged: ${why}`)
    }
  })

  test('CRLF line ends, text before the leaf and blank lines between certificates are taken, and stored as plain PEM', async () => {
    const second = makeCerts(['chain.test']).ca
    let sent = ''
    const issued = await issue(['a.test'], ['a.test'], undefined, (leaf) => (sent = `Subject: a.test\r\n\r\n${leaf}\r\n\r\n  \r\n${second}\n\n`.replace(/(?<!\r)\n/g, '\r\n')))
    const blocks = [...sent.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0].replace(/\r\n/g, '\n') + '\n')
    expect(issued.certPem).toBe(blocks.join(''))
  })

  test('a chain with the end-entity certificate not first (RFC 8555 §9.1 wants it first) is stored leaf first, and the log says so', async () => {
    const second = makeCerts(['chain.test']).ca
    const logged: string[] = []
    let leafSent = ''
    const issued = await issue(['a.test'], ['a.test'], undefined, (leaf) => second + (leafSent = leaf), (level, msg, fields) => void logged.push(`${level} ${msg} ${JSON.stringify(fields)}`))
    expect(issued.certPem).toBe(leafSent + second)
    expect(logged).toContain('warn acme: the CA sent the certificate chain with the end-entity certificate not first; reordered {"position":2,"of":2}')
  })

  test('a chain in any order is stored leaf first, then each certificate\'s issuer (RFC 8446 §4.4.2, RFC 5246 §7.4.2); extras are kept after it', async () => {
    const { pems, issuerCert, issuerKey } = makeHierarchy(3)
    const [root, i1, i2, i3] = pems as [string, string, string, string]
    const unrelated = makeCerts(['chain.test']).ca
    const cases: [string, (leaf: string) => string, (leaf: string) => string, string | undefined][] = [
      ['in order', (l) => l + i3 + i2 + i1, (l) => l + i3 + i2 + i1, undefined],
      ['leaf first, intermediates reversed', (l) => l + i1 + i2 + i3, (l) => l + i3 + i2 + i1, '1,4,3,2'],
      ['all reversed', (l) => i1 + i2 + i3 + l, (l) => l + i3 + i2 + i1, '4,3,2,1'],
      ['shuffled, with the root', (l) => i2 + root + l + i1 + i3, (l) => l + i3 + i2 + i1 + root, '3,5,1,4,2'],
      ['shuffled, with a certificate that certifies none of them', (l) => i1 + unrelated + l + i3 + i2, (l) => l + i3 + i2 + i1 + unrelated, '3,4,5,1,2'],
    ]
    for (const [label, send, want, order] of cases) {
      const logged: string[] = []
      let leaf = ''
      const issued = await issue(['a.test'], ['a.test'], undefined, (l) => send((leaf = l)), (level, msg, fields) => void logged.push(`${level} ${msg} ${JSON.stringify(fields)}`), { cert: issuerCert, key: issuerKey })
      // Names first (a readable failure), then the exact PEM stored.
      expect([label, commonNames(issued.certPem)]).toEqual([label, commonNames(want(leaf))])
      expect(issued.certPem).toBe(want(leaf))
      const reorderLine = logged.find((l) => l.includes('not in issuer order'))
      expect([label, reorderLine]).toEqual([label, order === undefined ? undefined : `warn acme: the CA sent the certificate chain not in issuer order (RFC 8446 §4.4.2); reordered {"stored_as_sent_positions":"${order}"}`])
      const extrasLine = logged.find((l) => l.includes('on no issuer path'))
      expect([label, extrasLine]).toEqual([label, send === cases[4]![1] ? 'warn acme: the certificate chain holds certificates on no issuer path from the end-entity certificate; kept at its end {"positions":"2","of":5}' : undefined])
    }
  })
})
