/**
 * What a client gets when an upstream's framing is odd (RFC 9112 §6.1, §6.3; RFC 9110 §8.6): a
 * Content-Length beside Transfer-Encoding is never passed on, a list or repeated Content-Length
 * goes on as its one value, a 204 loses its Content-Length, and a transfer coding the proxy does
 * not relay (anything but chunked, or any in an HTTP/1.0 answer) is a 502. Raw origins send the
 * head and the body in separate writes, so the body is streamed (not whole with its head);
 * raw clients keep the connection and send a second request, which must get its own answer.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Harness, rawClient as rawClientOf, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const rawClient = (port: number) => rawClientOf(h, port)

/** A raw origin: `/odd` answers with `head` then, 50 ms later, `body`; anything else with "next". */
function oddOrigin(head: string, body: string): number {
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, d) {
        const text = Buffer.from(d).toString('latin1')
        if (text.startsWith('GET /odd ') || text.startsWith('HEAD /odd ')) {
          s.write(head)
          if (body !== '' && !text.startsWith('HEAD')) setTimeout(() => s.write(body), 50)
        } else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext')
      },
    },
  })
  h.track(() => origin.stop(true))
  return origin.port
}

const proxyTo = (port: number) => h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { listener: 'own' } }).proxy

/** The first response's head (lower-cased field lines) and the text after it. */
function firstHead(reply: string): { status: number; lines: string[]; rest: string } {
  const end = reply.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = reply.slice(0, end).split('\r\n')
  return { status: Number(statusLine!.split(' ')[1]), lines: lines.map((l) => l.toLowerCase()), rest: reply.slice(end + 4) }
}

describe('upstream framing reaches the client corrected', () => {
  test('Transfer-Encoding with Content-Length, the body in a later read: chunked to the client, no Content-Length, and the next answer is its own', async () => {
    // The smuggling shape a helper's sweep found: the decoded body once went out under the
    // upstream's Content-Length: 2, so the client read part of it as a second response.
    const port = oddOrigin('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n', '37\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil\r\n0\r\n\r\n')
    const c = rawClient(proxyTo(port).port)
    c.s.write('GET /odd HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n0\r\n\r\n'), 3000)).toBe(true)
    const first = firstHead(c.got())
    expect(first.status).toBe(200)
    expect(first.lines.filter((l) => l.startsWith('content-length:'))).toEqual([])
    expect(first.lines).toContain('transfer-encoding: chunked')
    // The 0x37 bytes come whole, inside one chunk of the client's framing.
    expect(first.rest).toBe('37\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil\r\n0\r\n\r\n')
    c.s.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('next'), 3000)).toBe(true)
    expect(c.got().split('HTTP/1.1 200 OK\r\n').length - 1).toBe(3) // the first, the one inside its body, /next's
    expect(c.got().slice(c.got().lastIndexOf('HTTP/1.1 '))).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nnext$/)
  })

  test('the same to an HTTP/1.0 client: no Content-Length, the body ends with the connection', async () => {
    const port = oddOrigin('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n')
    const c = rawClient(proxyTo(port).port)
    let closed = false
    c.s.on('close', () => (closed = true))
    c.s.write('GET /odd HTTP/1.0\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => closed, 3000)).toBe(true)
    const first = firstHead(c.got())
    expect(first.lines.filter((l) => l.startsWith('content-length:'))).toEqual([])
    expect(first.lines).toContain('connection: close')
    expect(first.rest).toBe('hello')
  })

  test.each([
    ['a list', 'Content-Length: 5, 5'],
    ['the same line twice', 'Content-Length: 5\r\nX-Mid: 1\r\ncontent-length: 5'],
  ])('Content-Length as %s, the body in a later read: one content-length: 5', async (_, field) => {
    const port = oddOrigin(`HTTP/1.1 200 OK\r\n${field}\r\n\r\n`, 'hello')
    const c = rawClient(proxyTo(port).port)
    c.s.write('GET /odd HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('hello'), 3000)).toBe(true)
    const first = firstHead(c.got())
    expect(first.lines.filter((l) => l.startsWith('content-length'))).toEqual(['content-length: 5'])
    expect(first.lines.some((l) => l.startsWith('transfer-encoding'))).toBe(false)
    expect(first.rest).toBe('hello')
    c.s.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('next'), 3000)).toBe(true)
  })

  test('a list Content-Length on a HEAD answer goes on as its one value', async () => {
    const port = oddOrigin('HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n', '')
    const c = rawClient(proxyTo(port).port)
    c.s.write('HEAD /odd HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
    expect(firstHead(c.got()).lines.filter((l) => l.startsWith('content-length'))).toEqual(['content-length: 7'])
  })

  test('a 204 with a Content-Length: the client gets none (RFC 9110 §8.6), and the next answer is its own', async () => {
    const port = oddOrigin('HTTP/1.1 204 No Content\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n', '')
    const c = rawClient(proxyTo(port).port)
    c.s.write('GET /odd HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
    const first = firstHead(c.got())
    expect(first.status).toBe(204)
    expect(first.lines.filter((l) => l.startsWith('content-length'))).toEqual([])
    expect(first.lines).toContain('x-a: 1')
    c.s.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => c.got().endsWith('next'), 3000)).toBe(true)
  })

  test.each([
    ['a coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'GZIPDATA'],
    ['gzip then chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', '8\r\nGZIPDATA\r\n0\r\n\r\n'],
    ['chunked in an HTTP/1.0 answer', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nhello\r\n0\r\n\r\n'],
  ])('Transfer-Encoding with %s is a 502, not bytes the client cannot read', async (_, head, body) => {
    const port = oddOrigin(head, body)
    const res = await fetch(`http://127.0.0.1:${proxyTo(port).port}/odd`)
    expect(res.status).toBe(502)
    expect(await res.text()).toContain('upstream sent an invalid response')
    // The harness keeps every test's records: this test's is the one with a 502.
    expect(await waitFor(() => h.records.some((r) => r.path === '/odd' && r.status === 502), 3000)).toBe(true)
    expect(h.records.findLast((r) => r.path === '/odd')!.error).toBe('BAD_RESPONSE')
  })
})

test('an HTTP/1.0 answer, keep-alive or not, ends its upstream connection: the next request (a chunked upload perhaps) never goes to a peer that spoke HTTP/1.0 on it (RFC 9112 §6.1; nginx the same; outside review, fourteenth round)', async () => {
  const seen: string[] = []
  let connections = 0
  const origin = Bun.listen<{ id: number }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { id: ++connections }
      },
      data(s, d) {
        const text = Buffer.from(d).toString('latin1')
        if (!/^[A-Z]+ \//.test(text)) return
        seen.push(`${s.data.id} ${text.slice(0, text.indexOf(' HTTP/'))} ${/transfer-encoding: chunked/i.test(text) ? 'chunked' : ''}`.trim())
        s.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok')
      },
    },
  })
  h.track(() => origin.stop(true))
  const proxy = proxyTo(origin.port)
  expect(await (await fetch(`http://127.0.0.1:${proxy.port}/first`)).text()).toBe('ok')
  // A body of unknown length, over the read-ahead: it goes upstream chunked.
  const c = rawClient(proxy.port)
  c.s.write('POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
  c.s.write(`20000\r\n${'x'.repeat(0x20000)}\r\n0\r\n\r\n`)
  expect(await waitFor(() => c.closed(), 4000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  // Before: "2 POST /upload chunked" went on connection 1, after its HTTP/1.0 answer.
  expect(seen).toEqual(['1 GET /first', '2 POST /upload chunked'])
})
