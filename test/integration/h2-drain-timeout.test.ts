/**
 * drain_timeout's end over HTTP/2, as over HTTP/1.1 (drain.test.ts): a stream whose request came
 * whole and whose answer has not begun gets the 503 DRAIN_TIMEOUT its record says, with its
 * request id, then the close (the GOAWAY went at the drain's start). A stream whose upload is still
 * coming in gets it too, and the connection's close stops the upload: the RST_STREAM(NO_ERROR) held
 * for it (RFC 9113 §8.1) goes no more (sent with the answer, curl 7.88 dropped the answer: exit 18);
 * one whose answer is under way is reset (nothing can be said on it that the client would read as whole).
 * Before the twenty-second session every stream was reset with the connection, while its record
 * said 503.
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

test('a stream waiting for its answer at drain_timeout gets 503 DRAIN_TIMEOUT with its request id; an upload still coming in gets it too, whole; an answer under way is reset', async () => {
  const origin = h.origin({
    fetch(req) {
      const path = new URL(req.url).pathname
      // /stream: a head and a first piece, then nothing more. The rest never answer.
      if (path === '/stream') return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('first;')) }))
      return new Promise<Response>(() => {})
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/hang'))
  c.send(c.request(3, 'POST', '/up', [['content-length', '100000']], false), c.data(3, new Uint8Array(1000)))
  c.send(c.request(5, 'GET', '/stream'))
  expect(await waitFor(() => proxy.pendingRequests === 3 && c.statuses(5).length === 1, 5000)).toBe(true)
  await proxy.drain(300)
  expect(await waitFor(() => c.ended(1) && c.ended(3) && c.resets(5).length > 0, 5000)).toBe(true)
  expect(c.statuses(1)).toEqual(['503'])
  expect(c.bodyOf(1)).toContain('cut at the end of drain_timeout')
  expect(c.statuses(5)).toEqual(['200'])
  // The upload gets the 503 whole; the connection's close, not a reset, stops the upload.
  expect(c.statuses(3)).toEqual(['503'])
  expect(c.bodyOf(3)).toContain('cut at the end of drain_timeout')
  expect(c.resets(3)).toEqual([])
  expect(c.goaway()).toBe(0) // NO_ERROR, sent when the drain began
  expect(await waitFor(() => h.records.length === 3, 3000)).toBe(true)
  const hang = h.records.find((r) => r.path === '/hang')
  expect(hang).toMatchObject({ status: 503, error: 'DRAIN_TIMEOUT', error_detail: 'cut at the end of drain_timeout', protocol: 'HTTP/2' })
  expect(c.headerOf(1, 'x-request-id')).toBe(hang!.request_id)
  expect(h.records.filter((r) => r.path === '/hang')).toHaveLength(1)
  expect(h.records.find((r) => r.path === '/up')).toMatchObject({ status: 503, error: 'DRAIN_TIMEOUT', error_detail: 'cut at the end of drain_timeout' })
  expect(h.records.find((r) => r.path === '/stream')).toMatchObject({ status: 200, error: 'DRAIN_TIMEOUT' })
}, 30_000)
