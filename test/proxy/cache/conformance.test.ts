/**
 * Cache behaviours found by running the public HTTP cache test suite (cache-tests.fyi) against the
 * proxy, each pinned here without sockets: a fake clock and a fake upstream standing in for the
 * request path, as in cache.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import type { ProxyReply, ProxyRequest } from '../../../src/proxy/message.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const KEY = 'http://example.com/a'

function setup() {
  const clock = { t: T0 }
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, nowMs: () => clock.t })
  return { clock, cache }
}

function request(method = 'GET', headers: Record<string, string> = {}): ProxyRequest {
  return { method, target: '/a', headers: new Headers({ host: 'example.com', ...headers }), body: null }
}

function lookup(cache: EdgeCache, req: ProxyRequest): Promise<CacheExchange> {
  return Promise.resolve(cache.lookup(req, { key: KEY, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
}

const all = (reply: ProxyReply, name: string) => reply.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
const h = (reply: ProxyReply, name: string) => all(reply, name)[0]

async function text(reply: ProxyReply): Promise<string> {
  const b = reply.body
  if (b === null) return ''
  if (typeof b === 'string') return b
  if (b instanceof Uint8Array) return new TextDecoder().decode(b)
  return new Response(b).text()
}

/** Stores a 200 for KEY through one miss, with a Date of the clock's time. */
async function prime(cache: EdgeCache, now: number, headers: [string, string][], body = 'hello') {
  const x = await lookup(cache, request())
  const r = await x.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(now).toUTCString()], ...headers], body })
  expect(h(r, 'cache-status')).toBe('proxy; fwd=uri-miss; stored')
  await text(r)
}

describe('304 updates (RFC 9111 §3.2, §4.3.4)', () => {
  test('the revalidating client gets the 304\'s Set-Cookie in place of the stored one, not both', async () => {
    const { clock, cache } = setup()
    await prime(cache, clock.t, [['cache-control', 'max-age=1'], ['etag', '"v1"'], ['set-cookie', 'a=b']])
    clock.t += 2000
    const x = await lookup(cache, request())
    expect(x.validators).toEqual([['if-none-match', '"v1"']])
    const r = await x.onReply({ status: 304, statusText: '', headers: [['date', new Date(clock.t).toUTCString()], ['etag', '"v1"'], ['set-cookie', 'a=c']], body: null })
    expect(r.status).toBe(200)
    expect(all(r, 'set-cookie')).toEqual(['a=c'])
    expect(await text(r)).toBe('hello')
  })
})
