/**
 * max_connections on a TLS listener: the connection beyond the cap is answered in the protocol
 * its client chose by ALPN once the handshake is done, an HTTP/2 client with an HTTP/2 503 and
 * GOAWAY, an HTTP/1.1 client with an HTTP/1.1 503; one that never finishes its handshake is
 * closed at client_header_timeout. Real clients (curl) on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import net from 'node:net'
import tls from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

async function curl(args: string[]): Promise<string> {
  const p = Bun.spawn(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '10', ...args], { stdout: 'pipe', stderr: 'pipe' })
  const out = await new Response(p.stdout).text()
  await p.exited
  return out
}

test('over max_connections, an h2 client gets an HTTP/2 503 and an HTTP/1.1 client an HTTP/1.1 503; the held connection still works', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({
    upstream: { url: `http://127.0.0.1:${origin.port}` },
    server: { tls_cert: certs.certFile, tls_key: certs.keyFile, max_connections: 1 },
  })
  const ca = await Bun.file(certs.caFile).text()
  const held = tls.connect({ host: '127.0.0.1', port: proxy.port, ca, servername: 'proxy.test', ALPNProtocols: ['http/1.1'] })
  h.track(() => void held.destroy())
  await new Promise<void>((r) => held.once('secureConnect', () => r()))
  expect(await waitFor(() => proxy.clientConnections === 1)).toBe(true)

  const url = `https://127.0.0.1:${proxy.port}/`
  expect(await curl(['--http2', '--cacert', certs.caFile, url])).toBe('503 2')
  expect(await curl(['--http1.1', '--cacert', certs.caFile, url])).toBe('503 1.1')
  expect(proxy.refused.connections).toBe(2)

  let got = ''
  held.on('data', (d) => (got += d.toString('latin1')))
  held.write('GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n')
  expect(await waitFor(() => got.endsWith('hello'))).toBe(true)
  expect(got).toStartWith('HTTP/1.1 200 ')
})

test('over max_connections, a connection that never sends its ClientHello is closed at client_header_timeout', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({
    upstream: { url: `http://127.0.0.1:${origin.port}` },
    server: { tls_cert: certs.certFile, tls_key: certs.keyFile, max_connections: 1, client_header_timeout: '1s' },
  })
  const first = net.connect(proxy.port, '127.0.0.1')
  h.track(() => void first.destroy())
  expect(await waitFor(() => proxy.clientConnections === 1)).toBe(true)
  const silent = net.connect(proxy.port, '127.0.0.1')
  h.track(() => void silent.destroy())
  let closedAt = 0
  silent.on('close', () => (closedAt = performance.now()))
  silent.on('error', () => {})
  const start = performance.now()
  expect(await waitFor(() => closedAt > 0, 5000)).toBe(true)
  expect(closedAt - start).toBeGreaterThanOrEqual(900)
})
