import { describe, expect, test } from 'bun:test'
import { generateKeyPairSync } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildCsr, csrPem, generateCertificateKey } from '../../src/acme/csr.ts'
import { testDir } from '../support/temp-dir.ts'

/** Runs `openssl req -verify -text` on the CSR: the signature must verify, and we read the names back. */
function opensslRead(der: Uint8Array): { ok: boolean; out: string } {
  const dir = testDir('csr-')
  try {
    const file = join(dir, 'req.pem')
    writeFileSync(file, csrPem(der))
    const r = Bun.spawnSync(['openssl', 'req', '-in', file, '-noout', '-verify', '-text'], { stdout: 'pipe', stderr: 'pipe' })
    const out = r.stdout.toString() + r.stderr.toString()
    // With -text, openssl 3.0 exits 0 even when the signature fails: read its verdict.
    return { ok: r.exitCode === 0 && /verify OK/i.test(out) && !/verify failure/i.test(out), out }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('CSR', () => {
  test('EC key: openssl verifies the signature and reads subject and SANs', () => {
    const der = buildCsr(['example.test', 'www.example.test'], generateCertificateKey())
    const { ok, out } = opensslRead(der)
    expect(ok).toBe(true)
    expect(out).toMatch(/verify OK/i)
    expect(out).toContain('CN = example.test')
    expect(out).toContain('DNS:example.test, DNS:www.example.test')
    expect(out).toContain('ecdsa-with-SHA256')
  })

  test('RSA key', () => {
    const der = buildCsr(['a.test'], generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
    const { ok, out } = opensslRead(der)
    expect(ok).toBe(true)
    expect(out).toContain('sha256WithRSAEncryption')
  })

  test('a name too long for the CN goes in the SAN only; many names need long DER lengths', () => {
    const long = `${'a'.repeat(60)}.example.test`
    const names = [long, ...Array.from({ length: 40 }, (_, i) => `host${i}.example.test`)]
    const der = buildCsr(names, generateCertificateKey())
    const { ok, out } = opensslRead(der)
    expect(ok).toBe(true)
    expect(out).not.toContain('CN =')
    expect(out).toContain(`DNS:${long}`)
    expect(out).toContain('DNS:host39.example.test')
  })

  test('a tampered CSR fails verification', () => {
    const der = buildCsr(['example.test'], generateCertificateKey())
    const bad = new Uint8Array(der)
    bad[bad.length - 5]! ^= 0xff
    expect(opensslRead(bad).ok).toBe(false)
  })
})
