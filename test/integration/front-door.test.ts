/**
 * Front-door behaviours on the own listener (issue 14): pipelining, targets kept byte for byte,
 * GET with a body, unknown token methods, and a WebSocket frame sent with the upgrade request.
 * Raw sockets on both sides (test/support/raw-origin.ts records the bytes the origin got); the
 * same probes run against Deno.serve in test/runtime/deno-front-door.test.ts.
 */
import { afterEach, expect, test } from 'bun:test'
import { exchange, getWithBody, method, pipelined, target, upgradeWithFrame, WS_FRAME } from '../support/front-door.ts'
import { Harness } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())

async function setup(): Promise<{ origin: RawOrigin; port: number }> {
  const origin = await RawOrigin.start()
  h.track(() => origin.close())
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  return { origin, port: proxy.port }
}

test('three pipelined GETs in one write: three responses in order, all three reach the origin', async () => {
  const { origin, port } = await setup()
  const r = await pipelined(port, origin)
  expect(r.statuses).toEqual([200, 200, 200])
  expect([...r.reply.matchAll(/GET \/p\d/g)].map((m) => m[0])).toEqual(['GET /p1', 'GET /p2', 'GET /p3'])
  expect(r.seen.map((q) => q.target)).toEqual(['/p1', '/p2', '/p3'])
})

test.each([
  ['dot segments', '/a/../admin'],
  ['encoded dot segments', '/a/%2e%2e/admin'],
  ['an encoded slash and a query with dots', '/a%2F..%2Fb?x=/../y'],
])('the target reaches the origin byte for byte: %s', async (_name, path) => {
  const { origin, port } = await setup()
  const r = await target(port, origin, path)
  expect(r.statuses).toEqual([200])
  expect(r.seen.map((q) => q.target)).toEqual([path])
})

test('HTTP/1.0 without Host: the whole path reaches the origin, with the upstream as Host', async () => {
  const { origin, port } = await setup()
  const r = await target(port, origin, '/x/admin', true)
  expect(r.statuses).toEqual([200])
  expect(r.seen.map((q) => q.target)).toEqual(['/x/admin'])
  expect(origin.header(r.seen[0]!, 'host')).toBe(`127.0.0.1:${origin.port}`)
  // No X-Forwarded-Host claims the client used the upstream's own authority (an origin building
  // URLs from it would hand out the internal address: thirteenth round of review).
  expect(origin.header(r.seen[0]!, 'x-forwarded-host')).toBeUndefined()
  expect(origin.header(r.seen[0]!, 'x-forwarded-for')).toBe('127.0.0.1')
  // With Host, on the same kind of connection, it is there.
  const withHost = await exchange(port, origin, 'GET /y HTTP/1.0\r\nHost: site.example\r\n\r\n')
  expect(origin.header(withHost.seen[0]!, 'x-forwarded-host')).toBe('site.example')
})

test('a raw UTF-8 byte in the target is a 400, nothing forwarded (RFC 9112 §3.2: the target is URI syntax, ASCII only)', async () => {
  const { origin, port } = await setup()
  const r = await target(port, origin, '/caf\xc3\xa9')
  expect(r.statuses).toEqual([400])
  expect(r.seen).toEqual([])
})

test('a GET with a Content-Length body is forwarded with its body, and the next pipelined request is answered', async () => {
  const { origin, port } = await setup()
  const r = await getWithBody(port, origin)
  expect(r.statuses).toEqual([200, 200])
  expect(r.seen.map((q) => `${q.method} ${q.target} ${q.body}`)).toEqual(['GET /gb hello', 'GET /after '])
  expect(origin.header(r.seen[0]!, 'content-length')).toBe('5')
})

test.each(['PURGE', 'PROPFIND', 'MKCOL', 'X-CUSTOM_1'])('the token method %s is forwarded and answered', async (name) => {
  const { origin, port } = await setup()
  const r = await method(port, origin, name)
  expect(r.statuses).toEqual([200])
  expect(r.reply).toEndWith(`${name} /m`)
  expect(r.seen.map((q) => q.method)).toEqual([name])
})

test('a WebSocket upgrade with the first frame in the same write: 101, and the frame reaches the origin', async () => {
  const { origin, port } = await setup()
  const r = await upgradeWithFrame(port, origin)
  expect(r.statuses).toEqual([101])
  expect(r.seen.map((q) => q.target)).toEqual(['/ws'])
  expect(r.seen[0]!.tunnel).toBe(WS_FRAME)
})
