/**
 * The listener's certificate file is checked whole before use (runtime/tls-files.ts): an
 * intermediate after a good leaf that is damaged, or a file cut short in a block, is E_TLS_FILES
 * naming the file, at start and at reload, and not a listen error that says to choose another
 * address (the TLS library refuses the whole chain for one bad block). A chain whose leaf is
 * not first is said to be in the wrong order, not to hold another key's certificate. A whole
 * chain, and a file that holds the chain and the key together, load.
 */
import { afterEach, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ProxyError } from '../../src/lib/errors.ts'
import { loadTlsPair, readPem } from '../../src/runtime/tls-files.ts'
import { checkAccessLogPath } from '../../src/runtime/config-paths.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
const dir = testDir('proxy-tls-files-')
/** The leaf, then the test CA as if it were an intermediate: a chain of two good certificates. */
const chain = certs.cert + certs.ca
const secondBegins = chain.indexOf('-----BEGIN CERTIFICATE-----', 10)

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

function codeAndMessage(fn: () => unknown): string {
  try {
    fn()
    return 'no error'
  } catch (err) {
    return err instanceof ProxyError ? `${err.code} ${err.message}` : `other ${String(err)}`
  }
}

test('a whole chain, and chain and key in one file, load', () => {
  expect(loadTlsPair(file('chain.pem', chain), certs.keyFile).cert).toBe(chain)
  const both = file('both.pem', chain + certs.key)
  expect(loadTlsPair(both, both).key).toBe(chain + certs.key)
})

test('a damaged intermediate after a good leaf is E_TLS_FILES naming it', () => {
  // Base64 a decoder refuses, inside the second certificate.
  const at = secondBegins + 100
  const damaged = file('damaged.pem', chain.slice(0, at) + '!!!!' + chain.slice(at + 4))
  expect(codeAndMessage(() => loadTlsPair(damaged, certs.keyFile))).toStartWith(`E_TLS_FILES server.tls_cert: certificate 2 of 2 in "${damaged}" cannot be read`)
})

test('a chain cut short inside its last block is E_TLS_FILES', () => {
  const cut = file('cut.pem', chain.slice(0, secondBegins + 200))
  expect(codeAndMessage(() => loadTlsPair(cut, certs.keyFile))).toStartWith(`E_TLS_FILES server.tls_cert: "${cut}" has 1 PEM block(s) without their "-----END" line`)
})

test('the proxy does not start on a damaged chain, with E_TLS_FILES rather than a listen error', () => {
  const at = secondBegins + 100
  const damaged = file('damaged-start.pem', chain.slice(0, at) + '!!!!' + chain.slice(at + 4))
  const start = () => h.proxy({ upstream: { url: 'http://127.0.0.1:9' }, server: { tls_cert: damaged, tls_key: certs.keyFile } })
  expect(codeAndMessage(start)).toStartWith('E_TLS_FILES server.tls_cert: certificate 2 of 2')
})

test('the key\'s certificate after another one in tls_cert is said to go first; a key of no certificate in it is a mismatch', () => {
  const reversed = file('reversed.pem', certs.ca + certs.cert)
  expect(codeAndMessage(() => loadTlsPair(reversed, certs.keyFile))).toBe(
    `E_TLS_FILES server.tls_cert: "${reversed}" holds the certificate of the key in "${certs.keyFile}" (subject CN=proxy.test) as certificate 2 of 2, after CN=proxy test CA; put it first (the TLS library serves the first certificate as the leaf), then its intermediates`,
  )
  const other = makeCerts(['other.test'], ['127.0.0.1'])
  expect(codeAndMessage(() => loadTlsPair(reversed, other.keyFile))).toStartWith(`E_TLS_FILES server.tls_key: "${other.keyFile}" is not the key of the certificate in "${reversed}"`)
})

test('a relative path that cannot be read is shown with what it was read as: from the working directory, not the config file\'s (eighteenth round of review)', () => {
  const cwd = process.cwd()
  expect(() => readPem('no-such-dir-x/san.pem', 'proxy.toml:4: server.tls_cert')).toThrow(`proxy.toml:4: server.tls_cert: cannot read "no-such-dir-x/san.pem" (from the working directory ${cwd}: ${cwd}/no-such-dir-x/san.pem): ENOENT`)
  // An absolute one as it is.
  expect(() => readPem('/no-such-dir-x/san.pem', 'server.tls_cert')).toThrow('server.tls_cert: cannot read "/no-such-dir-x/san.pem": ENOENT')
  expect(() => checkAccessLogPath({ log: { accessLog: 'no-such-dir-x/access.log' } } as never)).toThrow(`cannot create "no-such-dir-x/access.log" (from the working directory ${cwd}: ${cwd}/no-such-dir-x/access.log)`)
})

test('a PEM path that is a FIFO, a device or a file over 4 MiB is refused before it is opened (nineteenth round: a FIFO blocked check in open(), /dev/zero grew a reloading proxy to 1.8 GB)', () => {
  const fifo = join(dir, 'ca.fifo')
  Bun.spawnSync(['mkfifo', fifo])
  // Refused from its stat: an open() would never return without a writer (the test would hang).
  expect(codeAndMessage(() => readPem(fifo, 'upstream.ca_file'))).toBe(`E_TLS_FILES upstream.ca_file: "${fifo}" is not a regular file (a pipe, a socket or a device); give the path of the PEM file`)
  expect(codeAndMessage(() => readPem('/dev/zero', 'server.tls_cert'))).toBe('E_TLS_FILES server.tls_cert: "/dev/zero" is not a regular file (a pipe, a socket or a device); give the path of the PEM file')
  const big = file('big.pem', certs.cert.padEnd(4 * 1024 * 1024 + 1, '\n'))
  expect(codeAndMessage(() => readPem(big, 'server.tls_cert'))).toBe(`E_TLS_FILES server.tls_cert: "${big}" is 4194305 bytes, over the 4 MiB a PEM file is read to; give the path of the PEM file`)
  expect(codeAndMessage(() => readPem(dir, 'server.tls_cert'))).toBe(`E_TLS_FILES server.tls_cert: "${dir}" is a directory; give the path of the PEM file`)
  // A regular file under the cap, through a symlink too, reads.
  expect(readPem(certs.certFile, 'server.tls_cert')).toBe(certs.cert)
})
