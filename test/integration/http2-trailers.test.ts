/**
 * HTTP/2 request trailers through the proxy: a trailer section above the header-list cap
 * (max_header_size) cuts the request. The origin never gets the body as if it were whole, with the
 * trailers lost: a small body (read ahead) is not sent at all, a streamed one is cut mid-way; the
 * client gets 431, as for a head too large (RFC 9113 §10.5.1). Trailers within the cap change
 * nothing. A raw h2 client on the TLS listener sends the frames.
 */
import { afterEach, expect, test } from 'bun:test'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** An origin that reads each body to its end and records "PATH whole N" or "PATH cut". */
function origin() {
  const seen: string[] = []
  const server = h.origin({
    async fetch(req) {
      const path = new URL(req.url).pathname
      let n = 0
      try {
        for await (const chunk of req.body!) n += chunk.byteLength
      } catch {
        seen.push(`${path} cut`)
        return new Response('cut')
      }
      seen.push(`${path} whole ${n}`)
      return new Response(`whole ${n}`)
    },
  })
  return { server, seen }
}

test.each([
  ['a small body (read whole before anything is sent upstream)', 10_000],
  ['a streamed body (longer than the read-ahead)', 250_000],
])('trailers above max_header_size after %s: 431, and the origin never sees the request whole', async (_, bodyBytes) => {
  const { server, seen } = origin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${server.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, max_header_size: '4KiB' } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'POST', '/up', [['content-type', 'application/octet-stream']], false))
  // Within the windows the proxy gives, as a real client sends (a stream starts at 64 KiB).
  await c.sendBody(1, bodyBytes, false)
  c.send(c.headers(1, [['x-checksum', 'abc'], ['x-big', 'b'.repeat(8000)]], true))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  expect(c.statuses(1)).toEqual(['431'])
  // Whatever the origin got (nothing, or a body cut), never the body whole.
  await waitFor(() => seen.length > 0, 1000)
  expect(seen.filter((s) => s.includes('whole'))).toEqual([])
  // The connection goes on; trailers within the cap pass.
  c.send(c.request(3, 'POST', '/ok', [], false), c.data(3, 'hello'), c.headers(3, [['x-checksum', 'abc']], true))
  expect(await waitFor(() => c.ended(3), 5000)).toBe(true)
  expect(c.statuses(3)).toEqual(['200'])
  expect(c.bodyOf(3)).toBe('whole 5')
  expect(c.goaway()).toBeUndefined()
})
