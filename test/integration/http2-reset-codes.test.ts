/**
 * The RST_STREAM code the proxy sends when it ends a client's HTTP/2 stream itself, by RFC 9113
 * §7's definitions: a response it cannot complete (the upstream's body cut, or stalled past
 * idle_timeout) is INTERNAL_ERROR, as nginx and Go send, not CANCEL ("the stream is no longer
 * needed", which is the client's to say). The send_timeout cases are in send-timeout.test.ts.
 * A raw h2 client on the TLS listener reads the frames; origins are raw TCP on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import type { Socket } from 'bun'
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

/** A raw origin that answers a head promising 1 MB and 1 KiB of it, then does `then` with the socket. */
function shortOrigin(then: (s: Socket<undefined>) => void): number {
  const server = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s) {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n' + 'x'.repeat(1024))
        then(s)
      },
    },
  })
  h.track(() => server.stop(true))
  return server.port
}

test.each([
  ['the upstream connection ends mid-body', 'RESET_MID_BODY', (s: Socket<undefined>) => void setTimeout(() => s.terminate(), 50), {}],
  ['the upstream stalls mid-body past idle_timeout', 'IDLE_TIMEOUT', () => {}, { idle_timeout: '200ms' }],
])('%s: the client stream is reset INTERNAL_ERROR, not CANCEL, and logged %s', async (_, code, then, upstream) => {
  const port = shortOrigin(then)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, ...upstream }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/cut'))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  expect(c.statuses(1)).toEqual(['200'])
  expect(c.bodyOf(1).length).toBe(1024)
  expect(c.resets(1)).toEqual([H2Code.INTERNAL_ERROR])
  expect(await waitFor(() => h.records.some((r) => r.path === '/cut'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/cut')).toMatchObject({ status: 200, error: code, protocol: 'HTTP/2' })
})
