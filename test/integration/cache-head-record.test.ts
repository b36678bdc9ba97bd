/**
 * What the access log records for a HEAD answered from the cache: no body is sent, so bytes_out
 * is 0, as for a HEAD that goes to the origin (its exchange reads no body), whatever the stored
 * body's length; a GET hit of the same response logs the body's bytes. Small bodies (one write)
 * and large ones (sent in slices) alike.
 */
import { afterEach, expect, test } from 'bun:test'
import { startCachedProxy } from '../support/cached-proxy.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test.each([
  ['a small body', 11],
  ['a body larger than one write (64 KiB)', 200_000],
])('HEAD hit of %s: bytes_out 0, as a proxied HEAD logs; the GET hit logs the body', async (_, bodyBytes) => {
  const body = 'x'.repeat(bodyBytes)
  const origin = h.origin({ fetch: (req) => new Response(body, { headers: { 'cache-control': new URL(req.url).pathname === '/fresh' ? 'no-store' : 'max-age=600' } }) })
  const p = startCachedProxy(h, origin.port!)
  const ask = async (method: string, path: string) => {
    const res = await fetch(`${p.url}${path}`, { method })
    await res.arrayBuffer()
    return res
  }
  // A proxied HEAD (not stored): the convention.
  expect((await ask('HEAD', '/fresh')).status).toBe(200)
  // Stored by a GET, then a HEAD hit and a GET hit.
  expect((await ask('GET', '/stored')).status).toBe(200)
  const head = await ask('HEAD', '/stored')
  expect(head.headers.get('cache-status')).toMatch(/^proxy; hit/)
  expect(head.headers.get('content-length')).toBe(String(bodyBytes))
  expect((await ask('GET', '/stored')).headers.get('cache-status')).toMatch(/^proxy; hit/)
  expect(await waitFor(() => p.records.length === 4, 3000)).toBe(true)
  const rows = p.records.map((r) => [r.method, r.path, r.cache, r.status, r.bytes_out])
  expect(rows).toEqual([
    ['HEAD', '/fresh', 'miss', 200, 0],
    ['GET', '/stored', 'miss', 200, bodyBytes],
    ['HEAD', '/stored', 'hit', 200, 0],
    ['GET', '/stored', 'hit', 200, bodyBytes],
  ])
})
