/**
 * client_body_timeout over HTTP/2: a request body that goes silent while the proxy waits for it is
 * cut at client_body_timeout, as on HTTP/1.1 (and as nginx times HTTP/2 bodies), not at
 * header_timeout (60 s by default), which alone bounded it before. A raw h2 client on the TLS
 * listener sends part of a body and stops; header_timeout stays at its default, so only
 * client_body_timeout can answer within the wait.
 */
import { afterEach, expect, test } from 'bun:test'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** An origin that reads each body to its end and says how long it was, or that it was cut; `seen` counts requests that reached it. */
function origin() {
  const seen: string[] = []
  const server = h.origin({
    async fetch(req) {
      seen.push(new URL(req.url).pathname)
      try {
        return new Response(`got ${(await req.arrayBuffer()).byteLength}`)
      } catch {
        return new Response('cut')
      }
    },
  })
  return { server, seen }
}

function tlsProxy(port: number | undefined, bodyTimeout: string) {
  return h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, client_body_timeout: bodyTimeout } }).proxy
}

test.each([
  ['a streamed body (its head already upstream)', 1_048_576, 16_384],
  ['a small body read ahead (nothing upstream yet)', 10_000, 1_000],
])('%s that goes silent: 408 at client_body_timeout, recorded CLIENT_BODY_TIMEOUT', async (_, declared, sent) => {
  const { server, seen } = origin()
  const proxy = tlsProxy(server.port, '1s')
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'POST', '/up', [['content-length', String(declared)]], false), c.data(1, new Uint8Array(sent)))
  // header_timeout is 60 s: within this wait only client_body_timeout can end the stream.
  expect(await waitFor(() => c.ended(1), 15_000)).toBe(true)
  expect(c.statuses(1)).toEqual(['408'])
  expect(await waitFor(() => h.records.some((r) => r.path === '/up'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/up')).toMatchObject({ status: 408, error: 'CLIENT_BODY_TIMEOUT', protocol: 'HTTP/2' })
  if (declared <= 65_536) expect(seen).toEqual([])
  // The connection serves on.
  c.send(c.request(3, 'GET', '/after'))
  expect(await waitFor(() => c.ended(3), 5000)).toBe(true)
  expect(c.statuses(3)).toEqual(['200'])
}, 30_000)

test('a body whose pieces come within client_body_timeout of each other is not cut', async () => {
  const { server } = origin()
  const proxy = tlsProxy(server.port, '2s')
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'POST', '/steady', [['content-length', String(5 * 10_000)]], false))
  for (let i = 0; i < 5; i++) {
    await Bun.sleep(400)
    c.send(c.data(1, new Uint8Array(10_000), i === 4))
  }
  expect(await waitFor(() => c.ended(1), 10_000)).toBe(true)
  expect(c.statuses(1)).toEqual(['200'])
  expect(c.bodyOf(1)).toBe('got 50000')
}, 30_000)
