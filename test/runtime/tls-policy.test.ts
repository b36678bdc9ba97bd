/**
 * The TLS 1.2 suites a client may choose on the listeners that end clients' TLS
 * (runtime/tls-policy.ts): ECDHE with AEAD only. A CBC suite (ECDHE-ECDSA-AES128-SHA, which Bun
 * offers by default) is refused, an AEAD one is taken, on the proxy's listener with a certificate
 * from files and on the per-connection path ACME's certificates take; TLS 1.3 is unaffected.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:tls'
import type { SocketHandler } from 'bun'
import { perConnectionTls } from '../../src/runtime/tls-per-connection.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** The suite the handshake settled on, or the error's code when there was none. */
function handshake(port: number, ca: string, opts: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'proxy.test', ...opts }, () => {
      resolve(s.getCipher().name)
      s.destroy()
    })
    s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`))
    s.setTimeout(5000, () => {
      resolve('timeout')
      s.destroy()
    })
  })
}

async function suitesOn(port: number, ca: string): Promise<string[]> {
  return [
    await handshake(port, ca, { ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' }),
    await handshake(port, ca, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }),
    await handshake(port, ca, { ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', maxVersion: 'TLSv1.2' }),
    await handshake(port, ca, {}),
  ]
}

test('the proxy TLS listener takes ECDHE AEAD suites in TLS 1.2 and refuses CBC ones', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { url } = h.proxy({ upstream: { url: 'http://127.0.0.1:9' }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const [cbc, gcm, chacha, tls13] = await suitesOn(Number(new URL(url).port), certs.ca)
  expect(cbc).toStartWith('error')
  expect(gcm).toBe('ECDHE-ECDSA-AES128-GCM-SHA256')
  expect(chacha).toBe('ECDHE-ECDSA-CHACHA20-POLY1305')
  expect(tls13).toStartWith('TLS_')
})

test('the per-connection TLS path (ACME certificates) has the same suites', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const pem = { cert: certs.cert, key: certs.key }
  const tls = perConnectionTls({ data() {}, open() {} } as SocketHandler<unknown>, () => pem)
  const listener = Bun.listen<boolean>({ hostname: '127.0.0.1', port: 0, socket: tls })
  h.track(() => listener.stop(true))
  const [cbc, gcm, chacha, tls13] = await suitesOn(listener.port, certs.ca)
  expect(cbc).toStartWith('error')
  expect(gcm).toBe('ECDHE-ECDSA-AES128-GCM-SHA256')
  expect(chacha).toBe('ECDHE-ECDSA-CHACHA20-POLY1305')
  expect(tls13).toStartWith('TLS_')
})
