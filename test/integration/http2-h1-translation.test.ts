/**
 * HTTP/2 requests as HTTP/1.1 upstream requests, and HTTP/1.1 answers as HTTP/2 responses, where
 * the two framings differ (RFC 9113 §8, RFC 9110 §6.4, §8.6): a raw h2 client on the proxy's TLS
 * listener sends the frames, and a raw TCP origin (test/support/raw-origin.ts) records each
 * request's bytes as they came.
 */
import { afterEach, expect, test } from 'bun:test'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

async function setup(): Promise<{ origin: RawOrigin; c: RawH2Tls }> {
  const origin = await RawOrigin.start()
  h.track(() => origin.close())
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  return { origin, c: await RawH2Tls.connect(h, proxy.port, certs.ca) }
}

test('a request ended with its head: content-length: 0 upstream where its method anticipates content (RFC 9110 §8.6), none for GET, HEAD, DELETE, OPTIONS', async () => {
  const { origin, c } = await setup()
  const methods = ['POST', 'PUT', 'PATCH', 'PROPFIND', 'GET', 'HEAD', 'DELETE', 'OPTIONS']
  // END_STREAM on each HEADERS frame: no DATA, so the content is empty.
  methods.forEach((m, i) => c.send(c.request(1 + 2 * i, m, `/${m}`)))
  expect(await waitFor(() => methods.every((_, i) => c.ended(1 + 2 * i)), 5000)).toBe(true)
  expect(methods.map((_, i) => c.statuses(1 + 2 * i)[0])).toEqual(methods.map(() => '200'))
  const lengthOf = Object.fromEntries(origin.requests.map((r) => [r.method, origin.header(r, 'content-length') ?? 'none']))
  expect(lengthOf).toEqual({ POST: '0', PUT: '0', PATCH: '0', PROPFIND: '0', GET: 'none', HEAD: 'none', DELETE: 'none', OPTIONS: 'none' })
  // Nor chunked: nothing after the head.
  for (const r of origin.requests) {
    expect(origin.header(r, 'transfer-encoding')).toBeUndefined()
    expect(r.body).toBe('')
  }
})
