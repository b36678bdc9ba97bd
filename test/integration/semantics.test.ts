/**
 * RFC 9110 / 9112 intermediary semantics, each seen end to end through the proxy with a raw
 * recording origin on loopback: when a request may be replayed after its upstream connection
 * went away (§9.2.2); Max-Forwards on TRACE and OPTIONS (§7.6.2); Date added to an answer that
 * has none, over HTTP/2 as over HTTP/1.1 (§6.6.1); an absolute-form OPTIONS for a whole server
 * goes upstream as "OPTIONS *" (RFC 9112 §3.2.4).
 */
import { afterEach, expect, test } from 'bun:test'
import http2 from 'node:http2'
import { createServer, type Socket } from 'node:net'
import { makeCerts } from '../support/certs.ts'
import { Harness, rawExchange } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())

interface Seen {
  conn: number
  line: string
}

/**
 * An origin that answers every request with "ok", except the second request on its first
 * connection: that one is read whole and the connection is then destroyed without an answer (an
 * upstream that went away after it had the request, on a kept-alive connection).
 */
async function dropsSecondRequest(): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  let conns = 0
  const server = createServer((s) => {
    const conn = ++conns
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = ''
    let n = 0
    s.on('data', (d) => {
      buf += d.toString('latin1')
      for (let guard = 0; guard < 8; guard++) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end)
        const m = /\r\ncontent-length: *(\d+)/i.exec(head)
        const length = m ? Number(m[1]) : 0
        if (buf.length < end + 4 + length) return
        buf = buf.slice(end + 4 + length)
        seen.push({ conn, line: head.slice(0, head.indexOf('\r\n')) })
        if (conn === 1 && ++n === 2) {
          s.destroy()
          return
        }
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, seen }
}

test('a POST the upstream received on a reused connection that then closed is not replayed: 502 (RFC 9110 §9.2.2)', async () => {
  const origin = await dropsSecondRequest()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  expect((await fetch(`${url}/first`)).status).toBe(200)
  const res = await fetch(`${url}/order`, { method: 'POST', body: 'pay=1' })
  expect(res.status).toBe(502)
  await res.text()
  // The upstream had it once, and never again.
  expect(origin.seen.map((s) => s.line)).toEqual(['GET /first HTTP/1.1', 'POST /order HTTP/1.1'])
})

test('a GET on a reused connection that closed before its answer is sent again on a new one (the stale keep-alive race)', async () => {
  const origin = await dropsSecondRequest()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  expect((await fetch(`${url}/first`)).status).toBe(200)
  const res = await fetch(`${url}/again`)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('ok')
  expect(origin.seen).toEqual([
    { conn: 1, line: 'GET /first HTTP/1.1' },
    { conn: 1, line: 'GET /again HTTP/1.1' },
    { conn: 2, line: 'GET /again HTTP/1.1' },
  ])
})

/** Sends `head` (which asks for Connection: close) and returns all the proxy sent back until it closed. */
const raw = (url: string, head: string) => rawExchange(Number(new URL(url).port), head, '127.0.0.1', (close) => h.track(close))

async function rawOrigin(): Promise<RawOrigin> {
  const origin = await RawOrigin.start()
  h.track(() => origin.close())
  return origin
}

test('a request in HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5), and HTTP/3.0 on this framing is a 505', async () => {
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const got = await raw(url, 'GET /minor HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(got).toMatch(/^HTTP\/1\.1 200 /)
  expect(origin.requests.map((r) => `${r.method} ${r.target} ${r.version}`)).toEqual(['GET /minor HTTP/1.1'])
  expect(await raw(url, 'GET /major HTTP/3.0\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 505 /)
  expect(origin.requests).toHaveLength(1)
})

test('TRACE and OPTIONS with Max-Forwards: 0 are answered by the proxy, never forwarded (RFC 9110 §7.6.2)', async () => {
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const before = h.records.length
  const options = await raw(url, 'OPTIONS /x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n')
  expect(options).toStartWith('HTTP/1.1 200 ')
  expect(options.toLowerCase()).toContain('\r\ncontent-length: 0\r\n')
  const trace = await raw(url, 'TRACE /t?q=1 HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nCookie: secret=1\r\nAuthorization: Basic eDp5\r\nX-Probe: seen\r\nConnection: close\r\n\r\n')
  expect(trace).toStartWith('HTTP/1.1 200 ')
  expect(trace.toLowerCase()).toContain('\r\ncontent-type: message/http\r\n')
  const echoed = trace.slice(trace.indexOf('\r\n\r\n') + 4)
  expect(echoed).toStartWith('TRACE /t?q=1 HTTP/1.1\r\n')
  expect(echoed).toContain('x-probe: seen\r\n')
  expect(echoed).toContain('max-forwards: 0\r\n')
  // §9.3.8: fields likely to hold credentials are not echoed.
  expect(echoed).not.toContain('secret')
  expect(echoed.toLowerCase()).not.toContain('authorization')
  expect(origin.requests).toHaveLength(0)
  expect(h.records.slice(before).map((r) => r.status)).toEqual([200, 200])
  // The message received, version included (§9.3.8): an HTTP/1.0 request is not echoed as HTTP/1.1 (outside review, fourteenth round).
  const trace10 = await raw(url, 'TRACE /old HTTP/1.0\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n')
  expect(trace10.slice(trace10.indexOf('\r\n\r\n') + 4)).toStartWith('TRACE /old HTTP/1.0\r\n')
})

test('TRACE and OPTIONS with Max-Forwards above 0 go on with the value less one; other methods keep theirs', async () => {
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  // Heads of more than three fields go upstream from their bytes; one of two fields from a list.
  await raw(url, 'OPTIONS /o HTTP/1.1\r\nHost: a\r\nMax-Forwards: 5\r\nConnection: close\r\n\r\n')
  await raw(url, 'TRACE /t HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nAccept: */*\r\nMax-Forwards: 1\r\nX-A: 1\r\nConnection: close\r\n\r\n')
  await raw(url, 'GET /g HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n')
  // Longer than 2^53 - 1 (exact numbers end there): the proxy's maximum goes on (§7.6.2: "the
  // lesser of ... decremented by one or the recipient's maximum supported value"), never the value as it came.
  await raw(url, 'TRACE /big HTTP/1.1\r\nHost: a\r\nMax-Forwards: 99999999999999999999999\r\nConnection: close\r\n\r\n')
  await raw(url, 'OPTIONS /big HTTP/1.1\r\nHost: a\r\nMax-Forwards: 9007199254740993\r\nConnection: close\r\n\r\n')
  await raw(url, 'OPTIONS /edge HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0009007199254740991\r\nConnection: close\r\n\r\n')
  expect(origin.requests.map((r) => `${r.method} ${origin.header(r, 'max-forwards')}`)).toEqual([
    'OPTIONS 4',
    'TRACE 0',
    'GET 0',
    'TRACE 9007199254740991',
    'OPTIONS 9007199254740991',
    'OPTIONS 9007199254740990',
  ])
  for (const r of origin.requests) expect(r.headers.filter((l) => l.toLowerCase().startsWith('max-forwards:'))).toHaveLength(1)
})

/** The response heads of GETs to `paths` over one HTTP/2 connection to `url`. */
async function h2Heads(url: string, ca: string, paths: string[]): Promise<http2.IncomingHttpHeaders[]> {
  const client = http2.connect(url, { ca })
  h.track(() => void client.close())
  const heads: http2.IncomingHttpHeaders[] = []
  for (const path of paths) {
    heads.push(
      await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = client.request({ ':path': path, 'max-forwards': '0', ':method': path === '/own' ? 'OPTIONS' : 'GET' })
        let head: http2.IncomingHttpHeaders = {}
        req.on('response', (h) => (head = h))
        req.on('data', () => {})
        req.on('end', () => resolve(head))
        req.on('error', reject)
        req.end()
      }),
    )
  }
  return heads
}

test('an answer without Date gets one over HTTP/2 (HTTP/1.1 had it): forwarded, and the proxy\'s own (RFC 9110 §6.6.1)', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  // The raw origin sends no Date.
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const [forwarded, own] = await h2Heads(url, certs.ca, ['/fwd', '/own'])
  expect(Number(forwarded![':status'])).toBe(200)
  expect(Number.isNaN(Date.parse(String(forwarded!.date)))).toBe(false)
  expect(Number(own![':status'])).toBe(200)
  expect(Number.isNaN(Date.parse(String(own!.date)))).toBe(false)
})

test('OPTIONS with an absolute-form target of no path goes upstream as "OPTIONS *"; with a path or query as origin-form (RFC 9112 §3.2.4)', async () => {
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  await raw(url, 'OPTIONS http://a:80 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(url, 'OPTIONS http://a?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(url, 'GET http://a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(url, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(origin.requests.map((r) => `${r.method} ${r.target}`)).toEqual(['OPTIONS *', 'OPTIONS /?x=1', 'GET /', 'OPTIONS *'])
})

/** The Via values an origin saw, one per request, its lines joined as one list. */
function vias(origin: RawOrigin): string[] {
  return origin.requests.map((r) =>
    r.headers
      .filter((l) => l.toLowerCase().startsWith('via:'))
      .map((l) => l.slice(4).trim())
      .join(', '),
  )
}

test('each request sent upstream carries Via with the client\'s protocol, after the client\'s own Via lines (RFC 9110 §7.6.3)', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const origin = await rawOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const plain = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  // A short head (the list path), a long one (its lines copied from its bytes) with two Via lines, HTTP/1.0.
  await raw(plain.url, 'GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(plain.url, 'GET /b HTTP/1.1\r\nHost: a\r\nVia: 1.1 cdn-a\r\nUser-Agent: u\r\nVia: 2 cdn-b (x)\r\nAccept: */*\r\nConnection: close\r\n\r\n')
  await raw(plain.url, 'GET /c HTTP/1.0\r\nHost: a\r\n\r\n')
  await h2Heads(url, certs.ca, ['/d'])
  expect(vias(origin)).toEqual(['1.1 proxy', '1.1 cdn-a, 2 cdn-b (x), 1.1 proxy', '1.0 proxy', '2 proxy'])
  // Exactly one Via line goes up, whatever the client sent.
  expect(origin.requests.map((r) => r.headers.filter((l) => l.toLowerCase().startsWith('via:')).length)).toEqual([1, 1, 1, 1])
})

test('server.via names the proxy in Via, and "off" adds none (a client\'s Via still goes on)', async () => {
  const origin = await rawOrigin()
  const named = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { via: 'edge-seoul.example:8443' } })
  const off = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { via: 'off' } })
  await raw(named.url, 'GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(off.url, 'GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await raw(off.url, 'GET /c HTTP/1.1\r\nHost: a\r\nVia: 1.1 cdn-a\r\nConnection: close\r\n\r\n')
  expect(vias(origin)).toEqual(['1.1 edge-seoul.example:8443', '', '1.1 cdn-a'])
})
