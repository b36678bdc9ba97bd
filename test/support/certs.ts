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

/**
 * A certificate for proxy.test and 127.0.0.1 valid from `notBefore` to `notAfter` (Dates; the
 * past as well), signed by its own CA through `openssl ca` (`req -x509` and `x509 -req` cannot
 * date a certificate in the past).
 */
export function makeDatedCert(notBefore: Date, notAfter: Date): TestCerts {
  const dir = testDir('proxy-dated-cert-')
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z') // YYYYMMDDHHMMSSZ
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-subj', '/CN=proxy test CA')
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=proxy.test')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:proxy.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '01\n')
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n')
  run('ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'server.csr', '-out', 'server.pem', '-startdate', stamp(notBefore), '-enddate', stamp(notAfter), '-extfile', 'ext.cnf', '-notext')
  const read = (f: string) => readFileSync(join(dir, f), 'utf8')
  return { dir, caFile: join(dir, 'ca.pem'), ca: read('ca.pem'), certFile: join(dir, 'server.pem'), cert: read('server.pem'), keyFile: join(dir, 'server.key'), key: read('server.key') }
}
