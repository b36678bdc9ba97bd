/**
 * HTTP/2: whole replies ended in the same round share the client's connection window. Each fits
 * that window alone, together they do not, and DATA is framed only when the round's output is
 * flushed: the replies left with unsent bytes must still be watched by send_timeout. A raw client
 * keeps the connection window at its default 65,535 bytes (no connection WINDOW_UPDATE ever;
 * its stream windows are large) and asks in one write for two 40,000-byte cache hits (whole
 * bodies, answered in the same round): both are framed in turn up to the shared window, and
 * send_timeout must reset both, each logged with its bytes framed and CLIENT_SEND_TIMEOUT.
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
const BODY_BYTES = 40_000
/** The client's connection window for our DATA, never opened past its initial size (RFC 9113 §6.9.2). */
const CONNECTION_WINDOW = 65_535

test('two whole replies of one round that together exceed the connection window: send_timeout resets both, logged CLIENT_SEND_TIMEOUT', async () => {
  let served = 0
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => (served++, new Response(body, { headers: { 'cache-control': 'max-age=600' } })) })
  const cache = new EdgeCache({ maxBytes: 8 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 0, nowMs: () => Date.now() })
  h.track(() => cache.close())
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { send_timeout: '300ms', tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }), cache } }).start()
  h.track(() => proxy.close())

  // Fill the cache on a connection of its own (one body fits its default windows).
  const fill = await RawH2Tls.connect(h, proxy.port, certs.ca)
  fill.send(fill.request(1, 'GET', '/doc'))
  expect(await waitFor(() => fill.ended(1), 5000)).toBe(true)
  expect(fill.bodyOf(1).length).toBe(BODY_BYTES)
  expect(await waitFor(() => records.length === 1, 5000)).toBe(true)

  // Large stream windows, the connection window left as it is; both requests in one write.
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(Buffer.concat([settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]), c.request(1, 'GET', '/doc'), c.request(3, 'GET', '/doc')]))
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
  expect([c.resets(1), c.resets(3)]).toEqual([[H2Code.INTERNAL_ERROR], [H2Code.INTERNAL_ERROR]])
}, 20_000)
