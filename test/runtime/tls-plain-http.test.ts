/**
 * Plain HTTP sent to the per-connection TLS listener (runtime/tls-per-connection.ts, the path of
 * ACME's certificates) gets a plain-text 400 that says to use https, as nginx answers, and not a
 * silent close; with no certificate yet too. A TLS client on the same listener is served.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect as tcpConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { SocketHandler } from 'bun'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { perConnectionTls } from '../../src/runtime/tls-per-connection.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** Sends `text` over plain TCP and returns all it got before the close (or at 5 s). */
function plain(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const s = tcpConnect(port, '127.0.0.1', () => s.write(text))
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', () => resolve(got))
    s.on('error', () => {})
    s.setTimeout(5000, () => s.destroy())
  })
}

/** One HTTP/1.1 request over TLS; the answer's status line, or the error's code. */
function overTls(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'proxy.test', ALPNProtocols: ['http/1.1'] }, () => s.write('GET / HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n'))
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', () => resolve(got.split('\r\n')[0]!))
    s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`))
    s.setTimeout(5000, () => s.destroy())
  })
}

test('the per-connection TLS path answers plain HTTP with a 400 saying to use https, with or without a certificate', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const served: SocketHandler<unknown> = { open() {}, data: (s, _d) => void s.end('HTTP/1.1 204 No Content\r\n\r\n') }
  const withCert = Bun.listen<boolean>({ hostname: '127.0.0.1', port: 0, socket: perConnectionTls(served, () => ({ cert: certs.cert, key: certs.key })) })
  h.track(() => withCert.stop(true))
  const noCert = Bun.listen<boolean>({ hostname: '127.0.0.1', port: 0, socket: perConnectionTls(served, () => undefined) })
  h.track(() => noCert.stop(true))

  for (const port of [withCert.port, noCert.port]) {
    const answer = await plain(port, 'GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n')
    expect(answer).toStartWith('HTTP/1.1 400 Bad Request\r\n')
    expect(answer).toContain('\r\nconnection: close\r\n')
    expect(answer).toEndWith('\r\n\r\n400 a plain HTTP request was sent to this HTTPS port; use https://\n')
  }
  expect(await overTls(withCert.port, certs.ca)).toBe('HTTP/1.1 204 No Content')
})

test('the proxy with a certificate read per connection (automatic HTTPS) answers plain HTTP with the 400 and TLS with the origin', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const proxy = new ProxyServer(config, {
    sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]),
    dynamicTls: () => ({ cert: certs.cert, key: certs.key }),
  }).start()
  h.track(() => proxy.close())

  const answer = await plain(proxy.port, 'GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n')
  expect(answer).toStartWith('HTTP/1.1 400 Bad Request\r\n')
  expect(answer).toContain('use https://')
  expect(await overTls(proxy.port, certs.ca)).toBe('HTTP/1.1 200 OK')
})
