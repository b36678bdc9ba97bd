/**
 * Empty lines (CRLF) before a request line on the own listener: ignored, however many and
 * however they are cut into reads (RFC 9112 §2.2: a server SHOULD ignore at least one; nginx and
 * HAProxy ignore any number), on a new connection and between pipelined requests. Raw clients
 * on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness, rawClient as rawClientOf, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

function proxyWithOrigin() {
  const seen: string[] = []
  const origin = h.origin({
    async fetch(req) {
      seen.push(`${req.method} ${new URL(req.url).pathname} ${await req.text()}`.trim())
      return new Response('ok')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
  return { port: proxy.port, seen }
}

test.each([
  ['two before the first request, in one write', ['\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n']],
  ['three, each in its own write', ['\r\n', '\r\n', '\r\n', 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n']],
  ['a CRLF cut in two', ['\r', '\n\r', '\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n']],
])('empty lines before a request line are ignored: %s', async (_, parts) => {
  const { port, seen } = proxyWithOrigin()
  const c = rawClientOf(h, port)
  for (const p of parts) {
    c.s.write(p)
    await Bun.sleep(20)
  }
  expect(await waitFor(() => c.got().endsWith('ok'), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(seen).toEqual(['GET /a'])
})

test('CRLFCRLF after a request body, before the next request, is ignored; the body is not extended', async () => {
  const { port, seen } = proxyWithOrigin()
  const c = rawClientOf(h, port)
  c.s.write('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.got().split('HTTP/1.1 200 ').length === 3 && c.got().endsWith('ok'), 3000)).toBe(true)
  expect(seen).toEqual(['POST /a abc', 'GET /b'])
  expect(c.closed()).toBe(false)
})
