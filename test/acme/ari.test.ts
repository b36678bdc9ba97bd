/**
 * ACME Renewal Information (RFC 9773): the certificate ID against the RFC's own example, and
 * the manager renewing inside the window a (scripted) CA suggests instead of at two thirds.
 * Pebble 2.4 does not offer ARI, so the CA here is a fetch function.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { certInfo } from '../../src/acme/cert-info.ts'
import { CertificateManager } from '../../src/acme/manager.ts'
import { StateStore } from '../../src/acme/store.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('proxy-ari-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A certificate with the AKI and serial of RFC 9773 §4.1's example, made with openssl. */
function exampleCert(): { certPem: string; keyPem: string } {
  writeFileSync(join(dir, 'ari.cnf'), '[req]\ndistinguished_name=dn\nx509_extensions=ext\n[dn]\n[ext]\n2.5.29.35=DER:3016801469885B6B87464041E1B37B847BA0AE2CDE01C8D4\nsubjectAltName=DNS:ari.test\n')
  execFileSync('openssl', ['req', '-x509', '-config', 'ari.cnf', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ari.key', '-out', 'ari.pem', '-subj', '/CN=ari.test', '-set_serial', '0x87654321', '-days', '9'], { cwd: dir, stdio: 'pipe' })
  return { certPem: readFileSync(join(dir, 'ari.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ari.key'), 'utf8') }
}

describe('ARI', () => {
  test('certificate ID: base64url(AKI keyIdentifier) "." base64url(serial with its leading zero), as RFC 9773 §4.1', () => {
    const info = certInfo(exampleCert().certPem)
    expect(info.certId).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE')
    expect(info.names).toEqual(['ari.test'])
  })

  test("the manager renews inside the CA's window, not at two thirds", async () => {
    const cert = exampleCert()
    const directoryUrl = 'https://ca.test/dir'
    const stateDir = join(dir, 'state')
    new StateStore(stateDir, directoryUrl).saveCert('ari.test', cert)
    const now = Date.now()
    // Inside the 9-day certificate's life, after its two-thirds mark (day 6 ± 0.3).
    const window = { start: new Date(now + 7 * 86_400_000).toISOString(), end: new Date(now + 8 * 86_400_000).toISOString() }
    const asked: string[] = []
    const fetchFn = (async (input: string | URL | Request) => {
      const url = String(input)
      asked.push(url)
      if (url === directoryUrl) return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order', renewalInfo: 'https://ca.test/ari/' })
      if (url === 'https://ca.test/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE') return Response.json({ suggestedWindow: window }, { headers: { 'retry-after': '21600' } })
      return new Response('unexpected', { status: 500 })
    }) as typeof fetch
    const m = new CertificateManager({ domains: ['ari.test'], directoryUrl, email: undefined, caPem: undefined, stateDir, log: () => {}, fetch: fetchFn, clock: { now: () => Date.now(), setTimeout: () => 0, clearTimeout: () => {} } })
    m.start()
    expect(m.current()).toBeDefined()
    const twoThirds = m.status().renewAtMs!
    expect(twoThirds).toBeLessThan(now + 7 * 86_400_000)
    await m.check()
    const renewAt = m.status().renewAtMs!
    expect(renewAt).toBeGreaterThanOrEqual(Date.parse(window.start))
    expect(renewAt).toBeLessThanOrEqual(Date.parse(window.end))
    // Not due yet: no order was placed.
    expect(asked.some((u) => u.includes('/order') || u.includes('/nonce'))).toBe(false)
    // Asked again only after Retry-After.
    await m.check()
    expect(asked.filter((u) => u.includes('/ari/')).length).toBe(1)
    m.close()
  })

  test('a window that starts after the certificate expires is not followed, and the log says so', async () => {
    const cert = exampleCert() // 9 days
    const directoryUrl = 'https://ca2.test/dir'
    const stateDir = join(dir, 'state-late')
    new StateStore(stateDir, directoryUrl).saveCert('ari.test', cert)
    const now = Date.now()
    const window = { start: new Date(now + 400 * 86_400_000).toISOString(), end: new Date(now + 401 * 86_400_000).toISOString() }
    const fetchFn = (async (input: string | URL | Request) => {
      const url = String(input)
      if (url === directoryUrl) return Response.json({ newNonce: 'https://ca2.test/nonce', newAccount: 'https://ca2.test/acct', newOrder: 'https://ca2.test/order', renewalInfo: 'https://ca2.test/ari/' })
      if (url.startsWith('https://ca2.test/ari/')) return Response.json({ suggestedWindow: window })
      return new Response('unexpected', { status: 500 })
    }) as typeof fetch
    const warned: string[] = []
    const m = new CertificateManager({ domains: ['ari.test'], directoryUrl, email: undefined, caPem: undefined, stateDir, log: (level, msg) => void (level === 'warn' && warned.push(msg)), fetch: fetchFn, clock: { now: () => Date.now(), setTimeout: () => 0, clearTimeout: () => {} } })
    m.start()
    await m.check()
    expect(m.status().renewAtMs!).toBeLessThan(m.status().notAfterMs!)
    expect(warned).toEqual(["acme: the CA's renewal window lies outside the certificate's validity; renewing at two thirds of its lifetime instead"])
    m.close()
  })

  test.each([
    ['the wall clock a day ahead, 1 s passed: Retry-After (6 h) is not over', 86_400_000, 1_000, 1],
    ['the wall clock 2 h back, 6 h 1 min passed: it is over', -2 * 3_600_000, 6 * 3_600_000 + 60_000, 2],
  ] as const)('asked again after Retry-After on the monotonic clock: %s (review, twenty-second round)', async (_label, wallStepMs, passMs, fetches) => {
    const cert = exampleCert()
    const directoryUrl = 'https://ca.test/dir'
    const stateDir = join(dir, `state-step-${fetches}`)
    new StateStore(stateDir, directoryUrl).saveCert('ari.test', cert)
    const clock = { wall: Date.now(), mono: 1_000 }
    const window = { start: new Date(clock.wall + 7 * 86_400_000).toISOString(), end: new Date(clock.wall + 8 * 86_400_000).toISOString() }
    let asked = 0
    const fetchFn = (async (input: string | URL | Request) => {
      const url = String(input)
      if (url === directoryUrl) return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order', renewalInfo: 'https://ca.test/ari/' })
      if (url.startsWith('https://ca.test/ari/')) return asked++, Response.json({ suggestedWindow: window }, { headers: { 'retry-after': '21600' } })
      return new Response('unexpected', { status: 500 })
    }) as typeof fetch
    const m = new CertificateManager({ domains: ['ari.test'], directoryUrl, email: undefined, caPem: undefined, stateDir, log: () => {}, fetch: fetchFn, clock: { now: () => clock.wall, monoNow: () => clock.mono, setTimeout: () => 0, clearTimeout: () => {} } })
    m.start()
    await m.check()
    expect(asked).toBe(1)
    clock.wall += wallStepMs + passMs
    clock.mono += passMs
    await m.check()
    expect(asked).toBe(fetches)
    m.close()
  })
})
