/**
 * Interim (1xx) responses: a proxy forwards them (RFC 9110 §15.2), so a 103 Early Hints from the
 * origin reaches an HTTP/1.1 client before the final response and an HTTP/2 client as a 1xx
 * HEADERS frame; an HTTP/1.0 client never gets one. A 100 Continue too, unsolicited or not (nginx
 * drops it; the RFC says forward), but never a second one after the proxy's own for
 * Expect: 100-continue. The origin is a raw socket server, as Bun.serve cannot send a 1xx.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect, createServer, type Server } from 'node:net'
import { makeCerts } from '../support/certs.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An origin that answers every request (its body, if any, ignored) with `interim` and then a 200. */
async function hintingOrigin(interim = 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n'): Promise<number> {
  const server: Server = createServer((sock) => {
    let buf = ''
    sock.on('data', (d) => {
      buf += d.toString('latin1')
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4)
        sock.write(`${interim}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`)
      }
    })
    sock.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  h.track(() => void server.close())
  return (server.address() as { port: number }).port
}

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    s.on('data', (d) => {
      got += d.toString('latin1')
      if (got.endsWith('\r\n\r\nok')) s.end()
    })
    s.on('close', () => resolve(got))
    s.on('error', () => resolve(got))
    s.write(text)
  })
}

test('HTTP/1.1: the 103 arrives before the 200, hop-by-hop fields removed; HTTP/1.0 gets the 200 only', async () => {
  const port = await hintingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const one1 = await raw(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(one1).toMatch(/^HTTP\/1\.1 103 Early Hints\r\n/)
  expect(one1).toContain('link: </style.css>; rel=preload\r\n'.replace('link', 'Link'))
  expect(one1.indexOf('HTTP/1.1 200')).toBeGreaterThan(one1.indexOf('103'))
  const one0 = await raw(proxy.port, 'GET / HTTP/1.0\r\n\r\n')
  expect(one0).toMatch(/^HTTP\/1\.1 200 /)
  expect(one0).not.toContain('103')
})

test('HTTP/2: the 103 is forwarded as an interim head (curl shows it)', async () => {
  const port = await hintingOrigin()
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const p = Bun.spawn(['curl', '-sS', '--http2', '--cacert', certs.caFile, '-D', '-', '-o', '/dev/null', `https://127.0.0.1:${proxy.port}/`], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
  const out = await new Response(p.stdout).text()
  await p.exited
  expect(out).toMatch(/^HTTP\/2 103 ?\r\n/)
  expect(out.toLowerCase()).toContain('link: </style.css>; rel=preload')
  expect(out).toContain('HTTP/2 200')
})

const CONTINUE = 'HTTP/1.1 100 Continue\r\nx-from: origin\r\n\r\n'

test('HTTP/1.1: an unsolicited 100 Continue from the origin is forwarded before the 200 (RFC 9110 §15.2); HTTP/1.0 gets the 200 only', async () => {
  const port = await hintingOrigin(CONTINUE)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const one1 = await raw(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(one1).toMatch(/^HTTP\/1\.1 100 Continue\r\nx-from: origin\r\n/)
  expect(one1.match(/ 100 /g)?.length).toBe(1)
  expect(one1.indexOf('HTTP/1.1 200')).toBeGreaterThan(0)
  const one0 = await raw(proxy.port, 'GET / HTTP/1.0\r\n\r\n')
  expect(one0).toMatch(/^HTTP\/1\.1 200 /)
  expect(one0).not.toContain('100 Continue')
})

test('HTTP/1.1: with Expect: 100-continue the client gets one 100, the proxy\'s or the origin\'s, never two', async () => {
  const port = await hintingOrigin(CONTINUE)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { listener: 'own' } })
  const c = rawClient(h, proxy.port)
  c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n')
  // The head goes upstream at once (RFC 9110 §10.1.1); the proxy sends its 100 as the request path reads the body, and the origin's comes too: one is relayed.
  expect(await waitFor(() => c.got().startsWith('HTTP/1.1 100 Continue\r\n'), 3000)).toBe(true)
  c.s.write('hello')
  expect(await waitFor(() => c.got().endsWith('\r\n\r\nok'), 3000)).toBe(true)
  expect(c.got().match(/ 100 /g)?.length).toBe(1)
})

test('HTTP/2: an unsolicited 100 from the origin is an interim HEADERS :status 100; after the proxy\'s own for Expect, no second', async () => {
  const port = await hintingOrigin(CONTINUE)
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/'))
  expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
  expect(c.statuses(1)).toEqual(['100', '200'])
  c.send(c.request(3, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
  expect(await waitFor(() => c.statuses(3).length > 0, 3000)).toBe(true)
  c.send(c.data(3, 'hello', true))
  expect(await waitFor(() => c.ended(3), 3000)).toBe(true)
  expect(c.statuses(3)).toEqual(['100', '200'])
})

/**
 * An origin (a raw Bun.listen server) that answers each request with ANSWERS_10[path], and
 * counts the requests and the connections it saw close.
 */
function http10InterimOrigin(): { port: number; requests: string[]; closed: () => number } {
  const requests: string[] = []
  let closed = 0
  const buffers = new WeakMap<object, string>()
  const server = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(sock, d) {
        let buf = (buffers.get(sock) ?? '') + d.toString('latin1')
        for (let i = 0; i < 8 && buf.includes('\r\n\r\n'); i++) {
          const path = buf.split(' ', 2)[1]!
          buf = buf.slice(buf.indexOf('\r\n\r\n') + 4)
          requests.push(path)
          sock.write(ANSWERS_10[path] ?? 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
        }
        buffers.set(sock, buf)
      },
      close() {
        closed++
      },
    },
  })
  h.track(() => server.stop(true))
  return { port: server.port, requests, closed: () => closed }
}

const FINAL = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'
const ANSWERS_10: Record<string, string> = {
  '/continue': `HTTP/1.0 100 Continue\r\n\r\n${FINAL}`,
  '/hints': `HTTP/1.0 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n${FINAL}`,
  '/hint-then-10': `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.0 100 Continue\r\n\r\n${FINAL}`,
}

test('HTTP/1.1: an interim (1xx) head that says HTTP/1.0 is a 502 logged BAD_RESPONSE, not relayed, not retried, and the upstream connection is closed (RFC 9110 §15.2)', async () => {
  // HTTP/1.0 has no 1xx: such a head is no valid interim, and what follows it cannot be trusted.
  const origin = http10InterimOrigin()
  const from = h.records.length // the harness keeps every test's records
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const got: string[][] = []
  for (const [i, path] of Object.keys(ANSWERS_10).entries()) {
    const reply = await raw(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
    // What the client saw (the status lines, in order), and whether the origin saw its connection close (not pooled).
    const closed = await waitFor(() => origin.closed() === i + 1, 3000)
    got.push([path, (reply.match(/HTTP\/1\.[01] \d{3}/g) ?? []).join(','), `upstream closed=${closed}`])
  }
  expect(got).toEqual([
    ['/continue', 'HTTP/1.1 502', 'upstream closed=true'],
    ['/hints', 'HTTP/1.1 502', 'upstream closed=true'],
    // A valid 103 before it was relayed as it came; the 502 follows it.
    ['/hint-then-10', 'HTTP/1.1 103,HTTP/1.1 502', 'upstream closed=true'],
  ])
  // A BAD_RESPONSE is not retried (only a reset before the answer is): one request each.
  expect(origin.requests).toEqual(Object.keys(ANSWERS_10))
  const refused = () => h.records.slice(from).filter((r) => r.path in ANSWERS_10)
  expect(await waitFor(() => refused().length === 3, 3000)).toBe(true)
  expect(refused().map((r) => [r.path, r.status, r.error])).toEqual(Object.keys(ANSWERS_10).map((p) => [p, 502, 'BAD_RESPONSE']))
})

test('HTTP/2: an interim head that says HTTP/1.0 is a 502 on the stream (no interim HEADERS), logged BAD_RESPONSE', async () => {
  const origin = http10InterimOrigin()
  const from = h.records.length
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/continue'))
  c.send(c.request(3, 'GET', '/hints'))
  expect(await waitFor(() => c.ended(1) && c.ended(3), 3000)).toBe(true)
  expect([c.statuses(1), c.statuses(3)]).toEqual([['502'], ['502']])
  expect(await waitFor(() => origin.closed() === 2, 3000)).toBe(true)
  expect(origin.requests.sort()).toEqual(['/continue', '/hints'])
  const refused = () => h.records.slice(from).filter((r) => r.path in ANSWERS_10)
  expect(await waitFor(() => refused().length === 2, 3000)).toBe(true)
  expect(refused().map((r) => [r.status, r.error])).toEqual([[502, 'BAD_RESPONSE'], [502, 'BAD_RESPONSE']])
})
