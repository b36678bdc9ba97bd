/**
 * Cache behaviours found by running the public HTTP cache test suite (cache-tests.fyi) against the
 * proxy, each pinned here without sockets: a fake clock and a fake upstream standing in for the
 * request path, as in cache.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import type { ProxyReply, ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const KEY = 'http://example.com/a'

function setup() {
  const clock = { t: T0 }
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, clocks: { monoMs: () => clock.t, wallMs: () => clock.t } })
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

const text = replyText

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

describe('a response with Set-Cookie', () => {
  // A dynamic page: a session cookie, an ETag, no Cache-Control. Stored for revalidation, the 304
  // (which carries no Set-Cookie) made the cache answer the next client with the first one's cookie.
  test('without explicit freshness it is not stored: the next client never gets the first one\'s cookie', async () => {
    const { clock, cache } = setup()
    const first = await lookup(cache, request())
    const r1 = await first.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['etag', '"v1"'], ['set-cookie', 'sid=alice']], body: 'page' })
    expect(h(r1, 'cache-status')).toBe('proxy; fwd=uri-miss')
    expect(all(r1, 'set-cookie')).toEqual(['sid=alice'])
    await text(r1)
    clock.t += 1000
    const second = await lookup(cache, request())
    expect(second.hit).toBeUndefined()
    expect(second.validators).toEqual([])
    const r2 = await second.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['etag', '"v1"'], ['set-cookie', 'sid=bob']], body: 'page' })
    expect(all(r2, 'set-cookie')).toEqual(['sid=bob'])
    await text(r2)
  })

  test('stale on arrival (an upstream cache\'s Age past its max-age) it is not stored: it could only be served after a 304', async () => {
    const { clock, cache } = setup()
    const first = await lookup(cache, request())
    const r1 = await first.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['cache-control', 'max-age=60'], ['age', '600'], ['etag', '"v1"'], ['set-cookie', 'sid=alice']], body: 'page' })
    expect(h(r1, 'cache-status')).toBe('proxy; fwd=uri-miss')
    await text(r1)
    const second = await lookup(cache, request())
    expect(second.validators).toEqual([])
  })

  test('with a heuristic lifetime (Last-Modified only) it is not stored either', async () => {
    const { clock, cache } = setup()
    const first = await lookup(cache, request())
    const r1 = await first.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['last-modified', new Date(T0 - 86_400_000).toUTCString()], ['set-cookie', 'sid=alice']], body: 'page' })
    await text(r1)
    const second = await lookup(cache, request())
    expect(second.hit).toBeUndefined()
  })

  // "Always revalidate" said explicitly: stored, a 304 without Set-Cookie answered the next client
  // with the first one's cookie.
  test.each([['max-age=0'], ['no-cache, max-age=60'], ['no-cache="set-cookie", max-age=60'], ['s-maxage=0']])('with %s it is not stored: after a 304 the next client does not get the first one\'s cookie', async (cc) => {
    const { clock, cache } = setup()
    const first = await lookup(cache, request())
    const r1 = await first.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['cache-control', cc], ['etag', '"v1"'], ['set-cookie', 'sid=alice']], body: 'page' })
    expect(h(r1, 'cache-status')).toBe('proxy; fwd=uri-miss')
    await text(r1)
    clock.t += 1000
    const second = await lookup(cache, request())
    expect(second.hit).toBeUndefined()
    expect(second.validators).toEqual([])
    const r2 = await second.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date(clock.t).toUTCString()], ['cache-control', cc], ['etag', '"v1"'], ['set-cookie', 'sid=bob']], body: 'page' })
    expect(all(r2, 'set-cookie')).toEqual(['sid=bob'])
    await text(r2)
  })

  test('with max-age it is stored (the origin made it cacheable), Set-Cookie and all', async () => {
    const { clock, cache } = setup()
    await prime(cache, clock.t, [['cache-control', 'max-age=60'], ['set-cookie', 'a=b']])
    const x = await lookup(cache, request())
    expect(x.hit).toBeDefined()
    expect(all(x.hit!, 'set-cookie')).toEqual(['a=b'])
    await text(x.hit!)
  })
})

describe('byte ranges of a stored 200 (RFC 9110 §14)', () => {
  const BODY = '01234567890'
  const stored: [string, string][] = [['cache-control', 'max-age=3600'], ['etag', '"v1"'], ['last-modified', new Date(T0 - 60_000).toUTCString()], ['x-a', '1']]

  async function ask(headers: Record<string, string>, method = 'GET') {
    const { cache, clock } = setup()
    await prime(cache, clock.t, stored, BODY)
    const x = await lookup(cache, request(method, headers))
    expect(x.result).toBe('hit')
    return x.hit!
  }

  test('one range is a 206 with that part, its Content-Range and Content-Length, and the stored fields', async () => {
    const r = await ask({ range: 'bytes=0-1' })
    expect(r.status).toBe(206)
    expect(await text(r)).toBe('01')
    expect(h(r, 'content-range')).toBe('bytes 0-1/11')
    expect(h(r, 'content-length')).toBe('2')
    expect(h(r, 'x-a')).toBe('1')
    expect(h(r, 'etag')).toBe('"v1"')
    expect(h(r, 'cache-status')).toBe('proxy; hit; ttl=3600')
  })

  test('an open end and a suffix; a last position past the end is cut to it', async () => {
    for (const [range, part, cr] of [['bytes=1-', '1234567890', 'bytes 1-10/11'], ['bytes=-1', '0', 'bytes 10-10/11'], ['bytes=-50', BODY, 'bytes 0-10/11'], ['bytes=9-99', '90', 'bytes 9-10/11']] as const) {
      const r = await ask({ range })
      expect(r.status).toBe(206)
      expect(await text(r)).toBe(part)
      expect(h(r, 'content-range')).toBe(cr)
    }
  })

  test('several ranges, another unit, bad syntax or a first position past the end get the whole 200', async () => {
    for (const range of ['bytes=0-1,3-4', 'items=0-1', 'bytes=1-0', 'bytes=11-', 'bytes=-0', 'bytes=x-1']) {
      const r = await ask({ range })
      expect(r.status).toBe(200)
      expect(await text(r)).toBe(BODY)
      expect(h(r, 'content-range')).toBeUndefined()
    }
  })

  test('If-Range: the strong stored tag or the Last-Modified date gives the range; anything else the whole 200', async () => {
    const lm = new Date(T0 - 60_000).toUTCString()
    expect((await ask({ range: 'bytes=0-1', 'if-range': '"v1"' })).status).toBe(206)
    expect((await ask({ range: 'bytes=0-1', 'if-range': lm })).status).toBe(206)
    expect((await ask({ range: 'bytes=0-1', 'if-range': '"v2"' })).status).toBe(200)
    expect((await ask({ range: 'bytes=0-1', 'if-range': 'W/"v1"' })).status).toBe(200)
    expect((await ask({ range: 'bytes=0-1', 'if-range': new Date(T0).toUTCString() })).status).toBe(200)
  })

  test('HEAD has no ranges: a 200 without a body', async () => {
    const r = await ask({ range: 'bytes=0-1' }, 'HEAD')
    expect(r.status).toBe(200)
    expect(r.body).toBeNull()
    expect(h(r, 'content-length')).toBe('11')
  })

  test('a client If-None-Match that matches still gets a 304, before any range', async () => {
    const r = await ask({ range: 'bytes=0-1', 'if-none-match': '"v1"' })
    expect(r.status).toBe(304)
  })
})

// An outside RFC audit (nineteenth round): a stored "new" answered a resumed download's
// `Range` + `If-Match: "old"` with a 206 of the new bytes, where the origin (and nginx) say 412.
describe('If-Match and If-Unmodified-Since: a stored response that fails them is not served (RFC 9110 §13.1.1, §13.1.4)', () => {
  const LM = new Date(T0 - 60_000)
  const stored: [string, string][] = [['cache-control', 'max-age=3600'], ['etag', '"v1"'], ['last-modified', LM.toUTCString()]]

  async function ask(headers: Record<string, string>, primed: [string, string][] = stored) {
    const { cache, clock } = setup()
    await prime(cache, clock.t, primed, '0123456789')
    return lookup(cache, request('GET', headers))
  }

  test('a failing If-Match or If-Unmodified-Since goes to the origin as it came, with no validators of the cache', async () => {
    for (const headers of <Record<string, string>[]>[
      { 'if-match': '"v0"' },
      { 'if-match': '"v0"', range: 'bytes=2-4' },
      { 'if-match': 'W/"v1"' }, // the strong comparison: a weak tag matches nothing
      { 'if-match': 'v1' }, // no entity-tag at all
      { 'if-unmodified-since': new Date(LM.getTime() - 10 * 86_400_000).toUTCString(), range: 'bytes=2-4' },
      { 'if-match': '"v0"', 'if-unmodified-since': new Date(T0).toUTCString() }, // If-Match first (§13.2.2)
    ]) {
      const x = await ask(headers)
      expect([headers, x.hit]).toEqual([headers, undefined])
      expect(x.validators).toEqual([])
      const r = await x.onReply({ status: 412, statusText: 'Precondition Failed', headers: [['date', new Date(T0).toUTCString()]], body: null })
      expect(r.status).toBe(412)
    }
  })

  test('one that holds is answered from the store: the tag among several, "*", a date at or after Last-Modified', async () => {
    for (const headers of <Record<string, string>[]>[
      { 'if-match': '"v0", "v1"', range: 'bytes=2-4' },
      { 'if-match': '*' },
      { 'if-unmodified-since': LM.toUTCString(), range: 'bytes=2-4' },
      { 'if-unmodified-since': 'not a date' }, // an invalid date is no condition (§13.1.4)
    ]) {
      const x = await ask(headers)
      expect([headers, x.result]).toEqual([headers, 'hit'])
      expect([headers, x.hit!.status]).toEqual([headers, headers.range ? 206 : 200])
    }
  })

  test('without a tag every If-Match fails but "*"; without a Last-Modified If-Unmodified-Since is no condition', async () => {
    const untagged: [string, string][] = [['cache-control', 'max-age=3600']]
    expect((await ask({ 'if-match': '"v1"' }, untagged)).hit).toBeUndefined()
    expect((await ask({ 'if-match': '*' }, untagged)).result).toBe('hit')
    expect((await ask({ 'if-unmodified-since': new Date(T0 - 86_400_000).toUTCString() }, untagged)).result).toBe('hit')
  })

  test('a stored status other than 2xx ignores them (§13.2.1)', async () => {
    const { cache, clock } = setup()
    const miss = await lookup(cache, request())
    await text(await miss.onReply({ status: 404, statusText: 'Not Found', headers: [['date', new Date(clock.t).toUTCString()], ['cache-control', 'max-age=60'], ['etag', '"v1"']], body: 'no' }))
    const x = await lookup(cache, request('GET', { 'if-match': '"v0"' }))
    expect([x.result, x.hit?.status]).toEqual(['hit', 404])
  })
})
