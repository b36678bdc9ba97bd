/**
 * Test certificates made at test time with the openssl CLI: a CA, and a server certificate for
 * given DNS names and IPs signed by it. Cached per process in a temp directory.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testDir } from './temp-dir.ts'

export interface TestCerts {
  dir: string
  caFile: string
  ca: string
  certFile: string
  cert: string
  keyFile: string
  key: string
}

const cache = new Map<string, TestCerts>()

/** `san: false` leaves out the subjectAltName: the name is only the subject's CN (names[0]). */
export function makeCerts(names: string[] = ['origin.test'], ips: string[] = ['127.0.0.1'], san = true): TestCerts {
  const id = [...names, ...ips, san].join(',')
  const hit = cache.get(id)
  if (hit) return hit
  const dir = testDir('proxy-certs-')
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-subj', '/CN=proxy test CA')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names[0] ?? 'server'}`)
  const sans = [...names.map((n) => `DNS:${n}`), ...ips.map((i) => `IP:${i}`)].join(',')
  writeFileSync(join(dir, 'ext.cnf'), `${san ? `subjectAltName=${sans}\n` : ''}basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`)
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '3650', '-extfile', 'ext.cnf')
  const certs: TestCerts = {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    certFile: join(dir, 'server.pem'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    keyFile: join(dir, 'server.key'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
  }
  cache.set(id, certs)
  return certs
}
