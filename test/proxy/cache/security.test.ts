/**
 * The edge cache against hostile clients, without sockets: what one client sends must not decide
 * what others get (poisoning), nor hold memory or CPU the cache's bounds do not count. A fake clock
 * and a fake upstream stand in for the request path, as in cache.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import { MAX_VARY_NAMES } from '../../../src/proxy/cache/vary.ts'
import type { ProxyReply, ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const KEY = 'http://example.com/a'

function setup(maxBytes = 1 << 20) {
  const clock = { t: T0 }
  const cache = new EdgeCache({ maxBytes, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, clocks: { monoMs: () => clock.t, wallMs: () => clock.t } })
  return { clock, cache }
}

function request(headers: Record<string, string> = {}, method = 'GET'): ProxyRequest {
  return { method, target: '/a', headers: new Headers({ host: 'example.com', ...headers }), body: null }
}

function lookup(cache: EdgeCache, req: ProxyRequest, key = KEY): Promise<CacheExchange> {
  return Promise.resolve(cache.lookup(req, { key, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
}

function origin(status: number, headers: [string, string][], body = 'hello'): ProxyReply {
  return { status, statusText: '', headers: [['date', new Date(T0).toUTCString()], ...headers], body }
}

const h = (reply: ProxyReply, name: string) => reply.headers.find(([n]) => n.toLowerCase() === name)?.[1]

/** One request through the cache to the fake upstream; the client's answer, read whole. */
async function exchange(cache: EdgeCache, req: ProxyRequest, answer: ProxyReply): Promise<{ x: CacheExchange; status: number; cacheStatus: string | undefined; body: string }> {
  const x = await lookup(cache, req)
  const reply = x.hit ?? (await x.onReply(answer))
  return { x, status: reply.status, cacheStatus: h(reply, 'cache-status'), body: await replyText(reply) }
}

describe('Vary: what a client chooses is bounded', () => {
  test('the request values a variant is kept for are charged to max_size: 16 KiB cookies cannot hold more than the budget', async () => {
    const maxBytes = 128 << 10
    const { cache } = setup(maxBytes)
    const cookieBytes = 16 << 10
    for (let i = 0; i < 20; i++) {
      const cookie = `u=${i};${'x'.repeat(cookieBytes)}`
      const r = await exchange(cache, request({ cookie }), origin(200, [['cache-control', 'max-age=60'], ['vary', 'Cookie']]))
      expect(r.status).toBe(200)
    }
    // Every stored variant holds its 16 KiB cookie: what the store counts covers it, and stays in max_size.
    expect(cache.store.objects).toBeGreaterThan(0)
    expect(cache.store.bytes).toBeGreaterThanOrEqual(cache.store.objects * cookieBytes)
    expect(cache.store.bytes).toBeLessThanOrEqual(maxBytes)
    expect(cache.store.evictions).toBeGreaterThan(0)
    cache.close()
  })
})

describe('Vary: how many variants one key keeps', () => {
  test('a client sending a new User-Agent each time cannot grow one URL\'s variants (each request compares with all) past the cap; the newest stay', async () => {
    const { cache } = setup(8 << 20)
    const sent = 300
    for (let i = 0; i < sent; i++) {
      const r = await exchange(cache, request({ 'user-agent': `ua-${i}` }), origin(200, [['cache-control', 'max-age=60'], ['vary', 'User-Agent']], `for ua-${i}`))
      expect(r.cacheStatus).toBe(i === 0 ? 'proxy; fwd=uri-miss; stored' : 'proxy; fwd=vary-miss; stored')
    }
    const kept = cache.store.variants(KEY).length
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThanOrEqual(64)
    expect(cache.store.objects).toBe(kept)
    // The newest variant is kept and answers; the first is gone (a miss, not another client's body).
    const newest = await lookup(cache, request({ 'user-agent': `ua-${sent - 1}` }))
    expect(await replyText(newest.hit!)).toBe(`for ua-${sent - 1}`)
    const first = await lookup(cache, request({ 'user-agent': 'ua-0' }))
    expect(first.hit).toBeUndefined()
    expect(first.fwd).toBe('vary-miss')
    cache.close()
  })

  test('the variant evicted past the cap is the least used: one that real clients keep asking for outlives 200 one-off ones', async () => {
    const { cache } = setup(8 << 20)
    const answer = (ua: string) => origin(200, [['cache-control', 'max-age=60'], ['vary', 'User-Agent']], `for ${ua}`)
    await exchange(cache, request({ 'user-agent': 'popular' }), answer('popular'))
    for (let i = 0; i < 200; i++) {
      // The popular variant is asked for between the one-off ones: a hit each time.
      expect((await exchange(cache, request({ 'user-agent': 'popular' }), answer('popular'))).cacheStatus).toStartWith('proxy; hit')
      await exchange(cache, request({ 'user-agent': `one-off-${i}` }), answer(`one-off-${i}`))
    }
    expect(cache.store.variants(KEY).length).toBeLessThanOrEqual(64)
    const popular = await lookup(cache, request({ 'user-agent': 'popular' }))
    expect(await replyText(popular.hit!)).toBe('for popular')
    cache.close()
  })
})

describe('a GET with content (a "fat GET")', () => {
  const withContent = (cache: EdgeCache, req: ProxyRequest) => Promise.resolve(cache.lookup(req, { key: KEY, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000, hasContent: true }))

  test('its answer is not stored: the key does not cover the body an origin may have read', async () => {
    const { cache } = setup()
    const x = await withContent(cache, request({ 'content-type': 'application/x-www-form-urlencoded' }))
    expect(x.hit).toBeUndefined()
    const r = await x.onReply(origin(200, [['cache-control', 'max-age=60']], 'page for q=<script>'))
    expect(h(r, 'cache-status')).toBe('proxy; fwd=uri-miss')
    expect(await replyText(r)).toBe('page for q=<script>')
    expect(cache.store.objects).toBe(0)
    const next = await exchange(cache, request(), origin(200, [['cache-control', 'max-age=60']], 'page'))
    expect(next.body).toBe('page')
    expect(next.cacheStatus).toBe('proxy; fwd=uri-miss; stored')
    cache.close()
  })

  test('it does not lead collapsed forwarding: others do not wait for its answer', async () => {
    const { cache } = setup()
    const fat = await withContent(cache, request())
    expect(fat.flight).toBeUndefined()
    expect(cache.status().in_flight).toBe(0)
    const plain = await lookup(cache, request())
    expect(plain.hit).toBeUndefined()
    expect(plain.flight).toBeDefined()
    await replyText(await fat.onReply(origin(200, [['cache-control', 'max-age=60']], 'from the body')))
    const r = await plain.onReply(origin(200, [['cache-control', 'max-age=60']], 'page'))
    expect(await replyText(r)).toBe('page')
    cache.close()
  })

  test('a stored answer still answers it (it is a GET of the same URI)', async () => {
    const { cache } = setup()
    await exchange(cache, request(), origin(200, [['cache-control', 'max-age=60']], 'page'))
    const x = await withContent(cache, request())
    expect(x.hit).toBeDefined()
    expect(await replyText(x.hit!)).toBe('page')
    cache.close()
  })
})

describe('a request whose answer may not be stored (X-Original-URL, a fat GET) does not revalidate the stored one', () => {
  test('no validators go with it, and a 304 it gets freshens nothing: the next client still sees the stored response as it was', async () => {
    const { clock, cache } = setup()
    await exchange(cache, request(), origin(200, [['cache-control', 'max-age=1'], ['etag', '"v1"'], ['x-page', 'home']], 'home page'))
    clock.t += 2000
    const x = await lookup(cache, request({ 'x-original-url': '/admin' }))
    expect(x.hit).toBeUndefined()
    expect(x.validators).toEqual([])
    // A 304 naming the stored tag, with a day of freshness and a field of the page the override chose.
    const r = await x.onReply({ status: 304, statusText: '', headers: [['date', new Date(clock.t).toUTCString()], ['etag', '"v1"'], ['cache-control', 'max-age=86400'], ['x-page', 'admin']], body: null })
    expect(r.status).toBe(304)
    await replyText(r)
    const next = await lookup(cache, request())
    expect(next.hit).toBeUndefined() // still stale: not freshened for a day
    expect(next.validators).toEqual([['if-none-match', '"v1"']])
    cache.close()
  })
})

describe('a Vary member that is not a field name', () => {
  // The request's fields as the runtime front (Deno.serve) gives them: a fetch Headers, whose get() throws on such a name.
  test.each(['Accept Encoding', 'Accept-Encoding, a:b', '"Cookie"', 'Accept-Encoding;q=1'])('Vary: %s: passed on, not stored, and nothing left waiting for it', async (vary) => {
    const { cache } = setup()
    const r = await exchange(cache, request({ 'accept-encoding': 'gzip' }), origin(200, [['cache-control', 'max-age=60'], ['vary', vary]], 'page'))
    expect(r.status).toBe(200)
    expect(r.body).toBe('page')
    expect(r.cacheStatus).toBe('proxy; fwd=uri-miss')
    expect(cache.store.objects).toBe(0)
    expect(cache.status().in_flight).toBe(0)
    // The next request for the URI goes upstream at once (no flight to wait for), and is answered.
    const next = await exchange(cache, request(), origin(200, [['cache-control', 'max-age=60']], 'again'))
    expect(next.body).toBe('again')
    cache.close()
  })
})

describe('a Vary that names many fields', () => {
  test(`up to ${MAX_VARY_NAMES} distinct names (repeats not counted) the response is stored; past them it is passed on and not stored`, async () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `x-f${i}`)
    const { cache } = setup()
    const ok = await exchange(cache, request(), origin(200, [['cache-control', 'max-age=60'], ['vary', [...names(MAX_VARY_NAMES), ...names(MAX_VARY_NAMES)].join(', ')]], 'page'))
    expect(ok.cacheStatus).toBe('proxy; fwd=uri-miss; stored')
    expect(cache.store.variants(KEY)[0]!.vary.names.length).toBe(MAX_VARY_NAMES)
    cache.close()
    const { cache: other } = setup()
    // What an origin can fit in a 64 KiB head: 12,000 names.
    const huge = await exchange(other, request(), origin(200, [['cache-control', 'max-age=60'], ['vary', names(12_000).join(',')]], 'page'))
    expect(huge.body).toBe('page')
    expect(huge.cacheStatus).toBe('proxy; fwd=uri-miss')
    expect(other.store.objects).toBe(0)
    other.close()
  })
})

describe('a 304 that changes what the stored response varies on', () => {
  test('Vary: Accept-Encoding revalidated with a 304 saying Vary: Accept-Encoding, Cookie: that client is answered, the next cookie is not served the stored one', async () => {
    const { clock, cache } = setup()
    const fresh = (vary: string): [string, string][] => [['date', new Date(clock.t).toUTCString()], ['cache-control', 'max-age=60'], ['etag', '"v1"'], ['vary', vary]]
    await exchange(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=a' }), { status: 200, statusText: '', headers: fresh('Accept-Encoding'), body: 'page' })
    clock.t += 61_000
    const x = await lookup(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=b' }))
    expect(x.validators).toEqual([['if-none-match', '"v1"']])
    const r = await x.onReply({ status: 304, statusText: '', headers: fresh('Accept-Encoding, Cookie'), body: null })
    expect(r.status).toBe(200)
    expect(await replyText(r)).toBe('page')
    // §4.1: the stored response now names Cookie, whose value in the request it was stored for is not known.
    const next = await lookup(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=c' }))
    expect(next.hit).toBeUndefined()
    cache.close()
  })

  test('the same names in another order or case change nothing: the refreshed response keeps answering', async () => {
    const { clock, cache } = setup()
    const fresh = (vary: string): [string, string][] => [['date', new Date(clock.t).toUTCString()], ['cache-control', 'max-age=60'], ['etag', '"v1"'], ['vary', vary]]
    await exchange(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=a' }), { status: 200, statusText: '', headers: fresh('Accept-Encoding, Cookie'), body: 'page' })
    clock.t += 61_000
    const x = await lookup(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=a' }))
    await replyText(await x.onReply({ status: 304, statusText: '', headers: fresh('cookie,accept-encoding'), body: null }))
    const next = await lookup(cache, request({ 'accept-encoding': 'gzip', cookie: 'u=a' }))
    expect(next.result).toBe('hit')
    cache.close()
  })
})
