/**
 * A client that leaves before any answer (closes its connection, or resets its HTTP/2 stream)
 * has its upstream request aborted and is logged 499 CLIENT_GONE at once, as nginx does (with
 * proxy_ignore_client_abort off, its default), instead of the exchange running to its end and
 * being logged with the status nobody received. Raw clients on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import tls from 'node:tls'
import { Flag, frame, FrameType, PREFACE, rstStreamFrame, settingsFrame } from '../../src/http2/frames.ts'
import { H2Code } from '../../src/http2/errors.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { concatBytes } from '../../src/lib/bytes.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An origin that answers after `ms`, and counts the requests whose client (the proxy) went away first. */
function slowOrigin(ms: number) {
  const seen = { aborted: 0, answered: 0 }
  const origin = h.origin({
    fetch: async (req) => {
      let aborted = false
      req.signal.addEventListener('abort', () => {
        aborted = true
        seen.aborted++
      })
      await Bun.sleep(ms)
      if (!aborted) seen.answered++
      return new Response('late')
    },
  })
  return { origin, seen }
}

test('HTTP/1.1: a client that closes before the answer is logged 499 at once and the upstream request is aborted', async () => {
  const { origin, seen } = slowOrigin(3000)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const s = connect(proxy.port, '127.0.0.1')
  h.track(() => void s.destroy())
  s.on('error', () => {})
  s.write('GET /left HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  s.destroy()
  expect(await waitFor(() => h.records.some((r) => r.path === '/left'), 2000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/left')!
  expect([rec.status, rec.error]).toEqual([499, 'CLIENT_GONE'])
  expect(rec.duration_ms).toBeLessThan(3000)
  expect(await waitFor(() => seen.aborted === 1, 2000)).toBe(true)
  const state = [...proxy.pool('default')!.addresses.values()][0]!
  expect(state.inFlight).toBe(0)
  // Not held against the address: the client's leaving is not the upstream's failure.
  expect(state.failures).toBe(0)
})

test('HTTP/2: a stream the client resets before the answer is logged 499 and its upstream request aborted; the connection goes on', async () => {
  const { origin, seen } = slowOrigin(3000)
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  h.track(() => void sock.destroy())
  sock.on('error', () => {})
  await new Promise<void>((r) => sock.once('secureConnect', () => r()))
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/reset']])
  sock.write(concatBytes([PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  sock.write(rstStreamFrame(1, H2Code.CANCEL))
  expect(await waitFor(() => h.records.some((r) => r.path === '/reset'), 2000)).toBe(true)
  expect(h.records.find((r) => r.path === '/reset')).toMatchObject({ status: 499, error: 'CLIENT_GONE' })
  expect(await waitFor(() => seen.aborted === 1, 2000)).toBe(true)
  expect(sock.destroyed).toBe(false)
})
