/**
 * HTTP/2: a whole reply (a small upstream answer, written to its stream at once) whose DATA the
 * client's windows held back is logged as cut when the stream ends first (the client resets it,
 * or leaves): the bytes framed for the client and CLIENT_GONE, not as a reply sent whole. A raw
 * client with the default windows (65,535 bytes for the connection too, RFC 9113 §6.9.2) asks
 * for two 60 KiB bodies and reads without giving credit: the first fits, the second is stuck.
 */
import { afterEach, expect, test } from 'bun:test'
import { frame, FrameType } from '../../src/http2/frames.ts'
import { H2Code } from '../../src/http2/errors.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
const BODY_BYTES = 60 * 1024
/** What the default connection window leaves for the second body. */
const SECOND_SENT = 65_535 - BODY_BYTES

test.each([
  ['resets the stream', (c: RawH2Tls) => c.send(frame(FrameType.RST_STREAM, 0, 3, rstCode(H2Code.CANCEL)))],
  ['drops the connection', (c: RawH2Tls) => c.destroy()],
])('a small whole reply held back by the windows, then the client %s: logged with the bytes framed and CLIENT_GONE', async (_, leave) => {
  let served = 0
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => (served++, new Response(body)) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/first'))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  c.send(c.request(3, 'GET', '/second'))
  expect(await waitFor(() => c.bodyOf(3).length === SECOND_SENT, 5000)).toBe(true)
  expect(served).toBe(2)
  leave(c)
  expect(await waitFor(() => h.records.length === 2, 5000)).toBe(true)
  const byPath = Object.fromEntries(h.records.map((r) => [r.path, [r.status, r.bytes_out, r.error]]))
  expect(byPath).toEqual({ '/first': [200, BODY_BYTES, undefined], '/second': [200, SECOND_SENT, 'CLIENT_GONE'] })
}, 20_000)

test('a small whole reply held back by the windows until send_timeout resets its stream: logged with the bytes framed and CLIENT_SEND_TIMEOUT', async () => {
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => new Response(body) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '1s', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/first'))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  c.send(c.request(3, 'GET', '/second'))
  // The client gives no credit and does not leave: the proxy's send_timeout resets the stream.
  expect(await waitFor(() => h.records.length === 2, 10_000)).toBe(true)
  const byPath = Object.fromEntries(h.records.map((r) => [r.path, [r.status, r.bytes_out, r.error]]))
  expect(byPath).toEqual({ '/first': [200, BODY_BYTES, undefined], '/second': [200, SECOND_SENT, 'CLIENT_SEND_TIMEOUT'] })
}, 20_000)

test('a streamed reply the client resets while its upstream body is still being read: logged with the bytes framed, not those read from the upstream (outside review, thirteenth round)', async () => {
  const piece = new Uint8Array(16 * 1024).fill(122)
  // 64 pieces 5 ms apart: still streaming when the client, its windows shut, resets the stream.
  const origin = h.origin({
    fetch: () =>
      new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            await Bun.sleep(5)
            controller.enqueue(piece)
          },
        }),
      ),
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/stream'))
  expect(await waitFor(() => c.bodyOf(1).length === 65_535, 5000)).toBe(true)
  // Let the proxy read ahead into the stream's queue (under its 64 KiB high-water mark) first.
  await Bun.sleep(200)
  c.send(frame(FrameType.RST_STREAM, 0, 1, rstCode(H2Code.CANCEL)))
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  const r = h.records[0]!
  expect([r.status, r.error]).toEqual([200, 'CLIENT_GONE'])
  expect(r.bytes_out).toBe(65_535)
}, 20_000)

function rstCode(code: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, code)
  return b
}

test('a malformed HTTP/2 request (a control character in a value) is reset and still logged, 400 BAD_REQUEST, and counted malformed, as on HTTP/1.1 (outside review, thirteenth round)', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/bad', [['x-a', 'a\u001b[31mb']]))
  expect(await waitFor(() => c.resets(1).length > 0, 5000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  expect(await waitFor(() => h.records.length === 1, 5000)).toBe(true)
  const r = h.records[0]!
  expect([r.status, r.error, r.path, r.protocol]).toEqual([400, 'BAD_REQUEST', '/bad', 'HTTP/2'])
  expect(proxy.refused.malformed).toBe(1)
}, 20_000)
