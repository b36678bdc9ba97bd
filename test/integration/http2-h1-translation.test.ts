/**
 * HTTP/2 requests as HTTP/1.1 upstream requests, and HTTP/1.1 answers as HTTP/2 responses, where
 * the two framings differ (RFC 9113 §8, RFC 9110 §6.4, §8.6): a raw h2 client on the proxy's TLS
 * listener sends the frames, and a raw TCP origin (test/support/raw-origin.ts) records each
 * request's bytes as they came.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Socket } from 'node:net'
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

/** An origin that answers every request with `answer`, exactly those bytes. */
async function fixedOrigin(answer: string): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.on('data', (d) => {
      if (d.includes('\r\n\r\n')) s.write(answer)
    })
  })
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))
}

test("a 304's Content-Length (the size of a body not sent) is not passed to an HTTP/2 client, whose HEADERS ends the stream; ETag and the rest are", async () => {
  const port = await fixedOrigin('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\nCache-Control: max-age=60\r\n\r\n')
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/a', [['if-none-match', '"v1"']]))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  const heads = c.frames.filter((f) => f.streamId === 1 && f.headers)
  expect(heads).toHaveLength(1)
  const fields = heads[0]!.headers!
  expect(fields.find(([n]) => n === ':status')?.[1]).toBe('304')
  expect(fields.filter(([n]) => n === 'content-length')).toEqual([])
  expect(fields.find(([n]) => n === 'etag')?.[1]).toBe('"v1"')
  expect(fields.find(([n]) => n === 'cache-control')?.[1]).toBe('max-age=60')
  expect(c.bodyOf(1)).toBe('')
  expect(c.resets(1)).toEqual([])
})
