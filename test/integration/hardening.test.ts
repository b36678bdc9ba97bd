/**
 * Malformed and ambiguous requests, sent as raw bytes: each is refused before anything reaches
 * the upstream. Most are refused by Bun's parser; Host checks and CONNECT by request-checks.ts.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const H = 'Host: a.example\r\n'
const CASES: [name: string, raw: string, status: RegExp][] = [
  ['Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`, /^400$/],
  ['two Content-Length values that disagree', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`, /^400$/],
  ['a Content-Length list that disagrees', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 5\r\n\r\nabcde`, /^400$/],
  ['Transfer-Encoding gzip only', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, /^400$/],
  ['chunked not last', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /^400$/],
  ['unknown coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /^400$/],
  ['space before the colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /^400$/],
  ['invalid header name', `GET / HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`, /^400$/],
  ['control character in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`, /^400$/],
  ['NUL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, /^400$/],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, /^400$/],
  ['bare CR', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, /^400$/],
  ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', /^400$/],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: b.example\r\n\r\n`, /^400$/],
  ['bad chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, /^400$/],
  ['negative Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, /^400$/],
  ['signed Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, /^400$/],
  ['over-long request line', `GET /${'a'.repeat(70000)} HTTP/1.1\r\n${H}\r\n`, /^(414|431)$/],
  ['over-large headers', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(70000)}\r\n\r\n`, /^431$/],
  ['CONNECT', 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', /^405$/],
]

function send(port: number, raw: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    const done = () => {
      clearTimeout(timer)
      resolve(got)
    }
    const timer = setTimeout(() => {
      s.destroy()
      done()
    }, 2000)
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', done)
    s.on('error', done)
    s.write(raw, 'latin1')
  })
}

test.each(CASES)('%s is refused before the upstream', async (name, raw, status) => {
  let reached = 0
  let complete = 0
  const origin = h.origin({
    async fetch(req) {
      reached++
      await req.arrayBuffer()
      complete++
      return new Response('reached')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await send(proxy.port, raw)
  await Bun.sleep(50)
  const first = /^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? '(none)'
  expect(first).toMatch(status)
  // A bad chunk inside a streamed body is found only after the head went upstream (as with
  // nginx's proxy_request_buffering off): the upstream then sees an aborted, incomplete request.
  if (name !== 'bad chunk size') expect(reached).toBe(0)
  expect(complete).toBe(0)
  // Nothing smuggled behind the first request reached the upstream either.
  expect(reply).not.toContain('reached')
})

test('an HTTP/1.0 request without Host gets the upstream host name', async () => {
  let host = ''
  const origin = h.origin({ fetch: (req) => ((host = req.headers.get('host') ?? ''), new Response('ok')) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await send(proxy.port, 'GET / HTTP/1.0\r\n\r\n')
  expect(reply).toMatch(/^HTTP\/1\.[01] 200/)
  expect(host).toBe(`127.0.0.1:${origin.port}`)
})
