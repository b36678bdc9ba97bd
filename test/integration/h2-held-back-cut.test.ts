/**
 * HTTP/2: send_timeout on replies the client's connection window holds back after the round's
 * output is framed (http2/bun-listener.ts lookAfterFlush). A raw client keeps the connection
 * window at its default 65,535 bytes (no connection WINDOW_UPDATE ever; its stream windows are
 * large) and never leaves: every stream must still end, reset INTERNAL_ERROR and logged with the
 * bytes framed and CLIENT_SEND_TIMEOUT.
 * - Whole replies ended in one round share that window: each fits alone, together they do not,
 *   and DATA is framed only at the flush, in turn across streams (two 40,000-byte cache hits).
 * - A streamed body's tail taken into the stream's queue under its 64 KiB high-water mark is
 *   never waited on by the pump (a 100,000-byte answer streamed in ten pieces).
 */
import { afterEach, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { Setting, settingsFrame } from '../../src/http2/frames.ts'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
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
/** The client's connection window for our DATA, never opened past its initial size (RFC 9113 §6.9.2). */
const CONNECTION_WINDOW = 65_535

/** The proxy over TLS (h2 by ALPN) in front of `originPort`, send_timeout 300ms; its records as they come. */
function startProxy(originPort: number, cache?: EdgeCache): { port: number; records: RequestRecord[] } {
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort}` }, server: { send_timeout: '300ms', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())
  return { port: proxy.port, records }
}

/** A client with large stream windows and the connection window left as it is, asking for `paths` in one write (streams 1, 3, ...). */
async function askWithShutConnectionWindow(port: number, paths: string[]): Promise<RawH2Tls> {
  const c = await RawH2Tls.connect(h, port, certs.ca)
  c.send(Buffer.concat([settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]), ...paths.map((p, i) => c.request(2 * i + 1, 'GET', p))]))
  return c
}

test('two whole replies of one round that together exceed the connection window: send_timeout resets both, logged CLIENT_SEND_TIMEOUT', async () => {
  const BODY_BYTES = 40_000
  let served = 0
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => (served++, new Response(body, { headers: { 'cache-control': 'max-age=600' } })) })
  const cache = new EdgeCache({ maxBytes: 8 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const { port, records } = startProxy(origin.port!, cache)

  // Fill the cache on a connection of its own (one body fits its default windows).
  const fill = await RawH2Tls.connect(h, port, certs.ca)
  fill.send(fill.request(1, 'GET', '/doc'))
  expect(await waitFor(() => fill.ended(1), 5000)).toBe(true)
  expect(fill.bodyOf(1).length).toBe(BODY_BYTES)
  expect(await waitFor(() => records.length === 1, 5000)).toBe(true)

  const c = await askWithShutConnectionWindow(port, ['/doc', '/doc'])
  // The client gives no connection credit and does not leave: every stream must still end.
  expect(await waitFor(() => records.length === 3, 10_000)).toBe(true)
  expect(served).toBe(1)
  const hits = records.slice(1)
  expect(hits.map((r) => [r.status, r.cache, r.error])).toEqual([
    [200, 'hit', 'CLIENT_SEND_TIMEOUT'],
    [200, 'hit', 'CLIENT_SEND_TIMEOUT'],
  ])
  // Framed in turn, the two took the whole connection window between them, and no more.
  expect(hits.reduce((n, r) => n + r.bytes_out, 0)).toBe(CONNECTION_WINDOW)
  expect(c.bodyOf(1).length + c.bodyOf(3).length).toBe(CONNECTION_WINDOW)
  // The records are written as the streams are reset; the RST_STREAM frames reach this client (in
  // the same process) a round or more later.
  await waitFor(() => c.resets(1).length > 0 && c.resets(3).length > 0, 5000)
  expect([c.resets(1), c.resets(3)]).toEqual([[H2Code.INTERNAL_ERROR], [H2Code.INTERNAL_ERROR]])
}, 20_000)

test('a streamed body whose tail waits on a shut connection window after the pump ended: send_timeout resets it, logged CLIENT_SEND_TIMEOUT', async () => {
  const BODY_BYTES = 100_000
  const PIECES = 10
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
  const { port, records } = startProxy(origin.port!)

  const c = await askWithShutConnectionWindow(port, ['/stream'])
  // The client gives no connection credit and does not leave: the stream must still end.
  expect(await waitFor(() => records.length === 1, 10_000)).toBe(true)
  const r = records[0]!
  expect([r.status, r.error]).toEqual([200, 'CLIENT_SEND_TIMEOUT'])
  expect(r.bytes_out).toBe(CONNECTION_WINDOW)
  expect(c.bodyOf(1).length).toBe(CONNECTION_WINDOW)
  await waitFor(() => c.resets(1).length > 0, 5000) // the RST_STREAM comes after the record (above)
  expect(c.resets(1)).toEqual([H2Code.INTERNAL_ERROR])
}, 20_000)
