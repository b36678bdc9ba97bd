/**
 * "Expect: 100-continue" on the own listener and client_body_timeout: the 100 is sent when the
 * request path first reads the body (client-connection.ts), so a client that waits for it sends
 * nothing until then, and the body's timer must not run before it.
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('a client waiting for its 100 while the upstream connection is not ready yet is not timed by client_body_timeout', async () => {
  const origin = h.origin({
    fetch: async (req) => {
      const path = new URL(req.url).pathname
      if (path === '/busy') await Bun.sleep(2000)
      return new Response(`${path} ${(await req.arrayBuffer()).byteLength}`)
    },
  })
  // One upstream connection, held by /busy for 2 s: the upload's request waits for it (up to connect_timeout, 5 s).
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: 1 }, server: { listener: 'own', client_body_timeout: '1s' } })
  const busy = fetch(`${url}/busy`).then((r) => r.text())
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  const c = rawClient(h, proxy.port)
  // Over the read-ahead (64 KiB): the body streams, read once the upstream connection is there.
  const length = 100_000
  c.s.write(`POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`)
  expect(await waitFor(() => c.got() !== '', 4000, 20)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 100 Continue\r\n\r\n')
  c.s.write('a'.repeat(length))
  expect(await waitFor(() => c.closed(), 4000)).toBe(true)
  expect(c.got()).toContain('HTTP/1.1 200 ')
  expect(c.got()).toEndWith(`/up ${length}`)
  expect(await busy).toBe('/busy 0')
})
