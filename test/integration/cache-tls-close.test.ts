/**
 * A body an https origin delimits by closing the connection is not stored (RFC 9112 §8: an
 * incomplete close, a bare FIN without TLS close_notify, leaves it incomplete; RFC 9111 §3.3: a
 * cache stores no incomplete response). Bun's TLS socket reports a close_notify and a bare FIN
 * alike, so no such body can be told whole: one cut on the path by a FIN was served to every
 * later client as a hit (the twenty-first round of outside reviews). A body with a length, from
 * the same origin, is stored as before; so is a close-delimited one over plain HTTP.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer as tlsServer, type TLSSocket } from 'node:tls'
import { createServer as tcpServer, type Socket } from 'node:net'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['origin.test'], ['127.0.0.1'])

/** An origin answering each request with a cacheable 200: close-delimited (`framing` 'close'), or with Content-Length; counts the requests. */
async function origin(tls: boolean, framing: 'close' | 'length') {
  const seen = { requests: 0 }
  const sockets = new Set<Socket>()
  const onSocket = (s: Socket | TLSSocket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.once('data', () => {
      seen.requests++
      const body = 'x'.repeat(5000)
      s.end(framing === 'close' ? `HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nConnection: close\r\n\r\n${body}` : `HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
    })
  }
  const server = tls ? tlsServer({ cert: certs.cert, key: certs.key }, onSocket) : tcpServer(onSocket)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, seen }
}

test.each([
  ['https, close-delimited: not stored', true, 'close', 2],
  ['https, with Content-Length: stored', true, 'length', 1],
  ['http, close-delimited: stored', false, 'close', 1],
] as const)('%s', async (_what, tls, framing, originRequests) => {
  const o = await origin(tls, framing)
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const { url } = h.proxy({ upstream: { url: `${tls ? 'https' : 'http'}://origin.test:${o.port}`, ...(tls ? { ca_file: certs.caFile } : {}), retries: '0' } }, { addresses: [{ address: '127.0.0.1', family: 4 }], cache })
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${url}/page`, { signal: AbortSignal.timeout(5000) })
    expect([res.status, (await res.text()).length]).toEqual([200, 5000])
  }
  expect(o.seen.requests).toBe(originRequests)
})
