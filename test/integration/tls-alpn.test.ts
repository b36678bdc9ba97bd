/**
 * What the TLS listener answers each ALPN list a client offers (RFC 7301): h2 when offered (and
 * http2 is on), else http/1.1, else http/1.0, which the listener serves as it serves HTTP/1.0 in
 * cleartext (`curl --http1.0 https://...` offers only "http/1.0"); a list naming none of them gets
 * the fatal no_application_protocol alert (§3.2). Until the twenty-second session "http/1.0" alone
 * got that alert while HTTP/1.0 requests were served.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** One TLS connection offering `alpn` and sending `head`: the protocol chosen and the answer's first line, or the handshake's error. */
function ask(port: number, alpn: string[], head: string): Promise<{ alpn?: string | false | null; status?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'proxy.test', ALPNProtocols: alpn })
    h.track(() => void s.destroy())
    let got = ''
    s.once('secureConnect', () => s.write(head))
    s.on('data', (d: Buffer) => (got += d.toString('latin1')))
    s.on('error', (e) => resolve({ error: e.message }))
    s.on('close', () => resolve({ alpn: s.alpnProtocol, status: got.split('\r\n')[0] }))
  })
}

test.each([
  [['h2', 'http/1.1'], 'h2'],
  [['http/1.1', 'h2'], 'h2'],
  [['http/1.1'], 'http/1.1'],
  [['http/1.1', 'http/1.0'], 'http/1.1'],
  [['http/1.0'], 'http/1.0'],
])('offered %j: %s chosen', async (offered, chosen) => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const head = chosen === 'h2' ? '' : `GET / ${chosen === 'http/1.0' ? 'HTTP/1.0' : 'HTTP/1.1'}\r\nHost: proxy.test\r\nConnection: close\r\n\r\n`
  if (chosen === 'h2') {
    const s = connect({ host: '127.0.0.1', port: proxy.port, ca: certs.ca, servername: 'proxy.test', ALPNProtocols: offered })
    h.track(() => void s.destroy())
    await new Promise<void>((r, j) => (s.once('secureConnect', () => r()), s.once('error', j)))
    expect(s.alpnProtocol).toBe('h2')
    return
  }
  const r = await ask(proxy.port, offered, head)
  expect(r).toMatchObject({ alpn: chosen, status: 'HTTP/1.1 200 OK' })
})

test('a list naming none of them gets no_application_protocol (RFC 7301 §3.2)', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const r = await ask(proxy.port, ['h3', 'spdy/3'], 'GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n')
  expect(r.error).toMatch(/no.application.protocol/i)
})
