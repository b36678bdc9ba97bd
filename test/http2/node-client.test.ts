/**
 * node:http2's client (nghttp2 inside Node's API, as Bun provides it) against the session: trailers
 * both ways, a client cancel, and a graceful GOAWAY with a request in flight.
 */
import { afterEach, expect, test } from 'bun:test'
import http2 from 'node:http2'
import { H2Code } from '../../src/http2/errors.ts'
import { startServer, type TestH2Server } from './support/h2-server.ts'

let server: TestH2Server | undefined
let client: http2.ClientHttp2Session | undefined
afterEach(() => {
  client?.destroy()
  server?.close()
  client = server = undefined
})

function collect(req: http2.ClientHttp2Stream): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {}
    let trailers: http2.IncomingHttpHeaders = {}
    let body = ''
    req.setEncoding('utf8')
    req.on('response', (h) => (headers = h))
    req.on('trailers', (t) => (trailers = t))
    req.on('data', (d: string) => (body += d))
    req.on('end', () => resolve({ headers, trailers, body }))
    req.on('error', reject)
  })
}

test('request trailers reach the owner; response trailers reach the client', async () => {
  server = startServer({ tls: false })
  client = http2.connect(server.url)
  const req = client.request({ ':method': 'POST', ':path': '/trailers' }, { waitForTrailers: true })
  req.on('wantTrailers', () => req.sendTrailers({ 'x-sum': 'abc' }))
  req.end(Buffer.alloc(100_000, 1))
  const r = await collect(req)
  expect(Number(r.headers[':status'])).toBe(200)
  expect(r.body).toBe('100000')
  expect(r.trailers['x-echo-x-sum']).toBe('abc')
  expect(r.trailers['x-length']).toBe('100000')
})

test('a client cancel closes the server stream with CANCEL', async () => {
  server = startServer({ tls: false })
  client = http2.connect(server.url)
  const req = client.request({ ':path': '/wait?ms=2000' })
  req.on('error', () => {})
  for (let i = 0; i < 400 && server.requests.length === 0; i++) await Bun.sleep(5)
  const { promise, resolve } = Promise.withResolvers<number | undefined>()
  // The stream the handler got is the one the client cancels.
  const seen = server.streams[0]!
  seen.onClose = (code) => resolve(code)
  req.close(http2.constants.NGHTTP2_CANCEL)
  expect(await promise).toBe(H2Code.CANCEL)
})

test('graceful GOAWAY: the request in flight completes, the connection then closes', async () => {
  server = startServer({ tls: false })
  client = http2.connect(server.url)
  const goaway = new Promise<number>((resolve) => client!.on('goaway', (code) => resolve(code)))
  const closed = new Promise<void>((resolve) => client!.on('close', () => resolve()))
  const inFlight = collect(client.request({ ':path': '/wait?ms=300' }))
  for (let i = 0; i < 400 && server.requests.length === 0; i++) await Bun.sleep(5)
  server.listener.shutdown()
  expect(await goaway).toBe(H2Code.NO_ERROR)
  const r = await inFlight
  expect(Number(r.headers[':status'])).toBe(200)
  await closed
  expect(server.listener.connections).toBe(0)
})
