/**
 * An ACME account the CA refuses, against pebble on loopback: after the account is deactivated
 * (RFC 8555 §7.3.6, by a request signed with its own key), an order fails with advice about the
 * account and the path of its key, not about port 80; with that key removed as the advice says,
 * the next attempt registers a new account and gets the certificate.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { Http01Server } from '../../src/acme/http01.ts'
import { signJws } from '../../src/acme/jws.ts'
import { CertificateManager, type Clock } from '../../src/acme/manager.ts'
import { Pebble, pebbleAvailable } from '../support/pebble.ts'
import { testDir } from '../support/temp-dir.ts'

const available = pebbleAvailable()

/** Real time, moved on by the test past a back-off; timers never fire (the test calls check()). */
let skippedMs = 0
const clock: Clock = { now: () => Date.now() + skippedMs, setTimeout: () => 0, clearTimeout: () => {} }

describe.skipIf(!available)('an ACME account the CA refuses', () => {
  let pebble: Pebble
  let http01: Http01Server
  let current: CertificateManager | undefined

  beforeAll(async () => {
    http01 = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 443, challenges: { lookup: (t) => current?.challenges.lookup(t) }, reusePort: false }).start()
    // No random badNonce: the test's own deactivation request is sent once.
    pebble = await new Pebble({ httpPort: http01.port, env: { PEBBLE_WFE_NONCEREJECT: '0' } }).start()
  })

  afterAll(async () => {
    current?.close()
    pebble?.close()
    await http01?.close()
  })

  test('a deactivated account: the log names the account key to remove, and removing it recovers', async () => {
    const stateDir = testDir('proxy-acme-account-')
    const logs: string[] = []
    const manager = () => (current = new CertificateManager({ domains: ['acct.test'], directoryUrl: pebble.directoryUrl, email: undefined, caPem: pebble.caPem, stateDir, log: (level, msg, fields) => void logs.push(`${level} ${msg} ${JSON.stringify(fields)}`), clock, random: () => 0.5, pollIntervalMs: 50 }))
    const first = manager()
    await first.check()
    expect(first.current()).toBeDefined()
    const kid = (first as unknown as { client: { accountUrl: string } }).client.accountUrl
    const key = first.store.accountKey()
    first.close()

    // Deactivate the account with its own key (RFC 8555 §7.3.6).
    const tlsCa = { tls: { ca: pebble.caPem } } as RequestInit
    const nonce = (await fetch(`https://127.0.0.1:${pebble.acmePort}/nonce-plz`, { method: 'HEAD', ...tlsCa })).headers.get('replay-nonce')!
    const res = await fetch(kid, { method: 'POST', headers: { 'content-type': 'application/jose+json' }, body: JSON.stringify(signJws(key, { url: kid, nonce, kid }, { status: 'deactivated' })), ...tlsCa })
    expect(((await res.json()) as { status: string }).status).toBe('deactivated')

    // A restart with no certificate stored must order, and cannot.
    rmSync(first.store.certDir('acct.test'), { recursive: true })
    const second = manager()
    await second.check()
    expect(second.current()).toBeUndefined()
    const failure = logs.find((l) => l.includes('could not obtain a certificate'))!
    expect(failure).toContain('unauthorized')
    expect(failure).toContain(`remove ${second.store.accountKeyFile} and the proxy registers a new account`)
    expect(failure).not.toContain('port 80')

    // As the advice says: the key removed, and at the next attempt (the back-off over, no restart)
    // a new account and the certificate.
    rmSync(second.store.accountKeyFile)
    skippedMs += 3600_000
    await second.check()
    expect(second.current()).toBeDefined()
    expect(logs.filter((l) => l.includes('acme: account created')).length).toBe(2)
    second.close()
  }, 30_000)
})
