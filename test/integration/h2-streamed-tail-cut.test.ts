/**
 * HTTP/2: the tail of a streamed body. An upstream answer that streams (chunked, in pieces) is
 * pumped with backpressure, and send_timeout watches the pump while it waits for the client's
 * windows. But a body whose last pieces were taken into the stream's queue without reaching its
 * high-water mark is ended without any wait: if the client then keeps the connection window shut,
 * that tail must still be watched, or the stream (and its request's slot) is held for good. A raw
 * client leaves the connection window at its default 65,535 bytes (no connection WINDOW_UPDATE,
 * large stream windows) and asks for a 100,000-byte streamed answer: ~34 KB stay queued, under
 * the 64 KiB high-water mark.
 */
import { afterEach, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { Setting, settingsFrame } from '../../src/http2/frames.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
const BODY_BYTES = 100_000
const PIECES = 10
/** The client's connection window for our DATA, never opened past its initial size (RFC 9113 §6.9.2). */
const CONNECTION_WINDOW = 65_535

test('a streamed body whose tail waits on a shut connection window after the pump ended: send_timeout resets it, logged CLIENT_SEND_TIMEOUT', async () => {
  const piece = new Uint8Array(BODY_BYTES / PIECES).fill(121)
  // Pieces a few milliseconds apart, so the answer streams (chunked) rather than coming whole.
  const origin = h.origin({
    fetch: () =>
      new Response(
        new ReadableStream<Uint8Array>({
          async start(controller) {
            for (let i = 0; i < PIECES; i++) {
              controller.enqueue(piece)
              await Bun.sleep(5)
            }
            controller.close()
          },
        }),
      ),
  })
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '300ms', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }) } }).start()
  h.track(() => proxy.close())

  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(Buffer.concat([settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]), c.request(1, 'GET', '/stream')]))
  // The client gives no connection credit and does not leave: the stream must still end.
  expect(await waitFor(() => records.length === 1, 10_000)).toBe(true)
  const r = records[0]!
  expect([r.status, r.error]).toEqual([200, 'CLIENT_SEND_TIMEOUT'])
  expect(r.bytes_out).toBe(CONNECTION_WINDOW)
  expect(c.bodyOf(1).length).toBe(CONNECTION_WINDOW)
  expect(c.resets(1)).toEqual([H2Code.INTERNAL_ERROR])
}, 20_000)
