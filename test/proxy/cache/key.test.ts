/**
 * The cache key of a request (proxy/cache/key.ts): behind a trusted proxy, the scheme and host
 * its X-Forwarded-Proto and -Host tell the origin, compared as authorities; and purge by URL
 * and an unsafe method's invalidation reach the keys another forwarded host made; purge by prefix
 * stays within its authority.
 */
import { expect, test } from 'bun:test'
import { EdgeCache } from '../../../src/proxy/cache/cache.ts'
import { requestKey } from '../../../src/proxy/cache/key.ts'
import type { ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const fwd = (fields: Record<string, string>) => new Headers(fields)

test('a forwarded host that is the Host written otherwise (case, the default port) makes no key of its own', () => {
  expect(requestKey(false, 'example.com', '/p', fwd({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'example.com:443' }))).toBe('https://example.com/p')
  expect(requestKey(false, 'Example.COM', '/p', fwd({ 'x-forwarded-host': 'example.com:80' }))).toBe('http://example.com/p')
  expect(requestKey(false, 'example.com', '/p', fwd({ 'x-forwarded-host': 'other.example' }))).toBe('http://example.com/p#x-forwarded-host=other.example')
  expect(requestKey(false, 'example.com', '/p', undefined)).toBe('http://example.com/p')
  // An empty port is the default one (RFC 3986 §6.2.3): one key for "example.com:" and "example.com", a final dot too.
  expect(requestKey(false, 'example.com:', '/p', undefined)).toBe('http://example.com/p')
  expect(requestKey(true, 'Example.com.:', '/p', undefined)).toBe('https://example.com/p')
  expect(requestKey(false, 'example.com', '/p', fwd({ 'x-forwarded-host': 'example.com:' }))).toBe('http://example.com/p')
  // A list keys the scheme the origin is sent: its last member (headers.ts forwardedProto).
  expect(requestKey(false, 'example.com', '/p', fwd({ 'x-forwarded-proto': 'http, https' }))).toBe('https://example.com/p')
  expect(requestKey(false, 'example.com', '/p', fwd({ 'x-forwarded-proto': 'https, http' }))).toBe('http://example.com/p')
  // Fields the request's Connection lists are not forwarded (the origin is sent the proxy's own): not keyed either.
  expect(requestKey(false, 'example.com', '/p', fwd({ connection: 'X-Forwarded-Proto, X-Forwarded-Host', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'other.example' }))).toBe('http://example.com/p')
})

test('purge by URL also drops what another forwarded host stored for it', async () => {
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0 })
  const req: ProxyRequest = { method: 'GET', target: '/p', headers: new Headers({ host: 'example.com' }), body: null }
  for (const key of ['http://example.com/p', 'http://example.com/p#x-forwarded-host=other.example', 'http://example.com/pq']) {
    const x = await Promise.resolve(cache.lookup(req, { key, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
    await replyText(await x.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date().toUTCString()], ['cache-control', 'max-age=60']], body: 'p' }))
  }
  expect(cache.store.objects).toBe(3)
  expect(cache.purgeUrl('http://example.com/p')).toBe(2)
  expect(cache.store.objects).toBe(1) // /pq is another URL
  cache.close()
})

test('purge by prefix stays within the authority it names: not example.com.evil, not another port, not the other scheme', async () => {
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0 })
  const req: ProxyRequest = { method: 'GET', target: '/p', headers: new Headers({ host: 'example.com' }), body: null }
  const keys = [
    'https://example.com/assets/a.css',
    'https://example.com/assets-old/b.css',
    'https://example.com/assets?v=1',
    'https://example.com/other',
    'https://example.com/assets/c.css#x-forwarded-host=cdn.example',
    'https://example.com.evil/assets/a.css',
    'https://example.com:8443/assets/a.css',
    'https://example.company/assets/a.css',
    'http://example.com/assets/a.css',
  ]
  const store = async () => {
    for (const key of keys) {
      const x = await Promise.resolve(cache.lookup(req, { key, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
      await replyText(await x.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date().toUTCString()], ['cache-control', 'max-age=60']], body: 'p' }))
    }
    expect(cache.store.objects).toBe(keys.length)
  }
  const left = () => keys.filter((k) => cache.store.variants(k).length > 0)
  await store()
  // An authority alone: that authority exactly (its default port written or not), every path.
  expect(cache.purgePrefix('https://EXAMPLE.com:443')).toBe(5)
  expect(left()).toEqual(keys.slice(5))
  await store()
  expect(cache.purgePrefix('https://example.com/')).toBe(5)
  await store()
  // A path prefix: a plain string prefix of path and query (as nginx's cache_purge and a Varnish ban do), within the authority.
  expect(cache.purgePrefix('https://example.com/assets')).toBe(4)
  expect(left()).toEqual(['https://example.com/other', ...keys.slice(5)])
  expect(cache.purgePrefix('https://example.com:8443')).toBe(1)
  expect(cache.purgePrefix('https://example.com.evil/')).toBe(1)
  cache.close()
})

test('an unsafe method invalidates every key and Vary variant of its URI, and of its Location, whichever forwarded host keyed them', async () => {
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0 })
  const send = async (method: string, key: string, headers: Record<string, string>, answer: [string, string][], status = 200) => {
    const req: ProxyRequest = { method, target: '/p', headers: new Headers({ host: 'example.com', ...headers }), body: null }
    const x = await Promise.resolve(cache.lookup(req, { key, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
    await replyText(await x.onReply({ status, statusText: '', headers: [['date', new Date().toUTCString()], ...answer], body: method === 'GET' ? 'p' : null }))
  }
  const P = 'http://example.com/p'
  const B = 'http://example.com/b'
  const keys = [P, `${P}#x-forwarded-host=other.example`, B, `${B}#x-forwarded-host=cdn.example`, 'http://example.com/pq']
  const store = async () => {
    for (const key of keys) for (const enc of ['gzip', 'br']) await send('GET', key, { 'accept-encoding': enc }, [['cache-control', 'max-age=60'], ['vary', 'Accept-Encoding']])
    expect(cache.store.objects).toBe(keys.length * 2)
  }
  const left = () => keys.filter((k) => cache.store.variants(k).length > 0)
  await store()
  // A POST as it came without a forwarded host: the URI's own key, its forwarded-host keys, every variant.
  await send('POST', P, {}, [['location', '/b']], 201)
  expect(left()).toEqual(['http://example.com/pq'])
  await store()
  // The same through a trusted balancer that forwarded another host: its key is suffixed, the URI the same.
  await send('DELETE', `${P}#x-forwarded-host=other.example`, {}, [['content-location', '/b']], 204)
  expect(left()).toEqual(['http://example.com/pq'])
  cache.close()
})

test('a Location the origin built from the forwarded host it was told is same-origin for invalidation; another host is not', async () => {
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0 })
  const send = async (method: string, key: string, answer: [string, string][], status = 200) => {
    const req: ProxyRequest = { method, target: '/p', headers: new Headers({ host: 'example.com' }), body: null }
    const x = await Promise.resolve(cache.lookup(req, { key, enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
    await replyText(await x.onReply({ status, statusText: '', headers: [['date', new Date().toUTCString()], ...answer], body: method === 'GET' ? 'p' : null }))
  }
  const B = 'https://example.com/b'
  const C = 'https://example.com/c'
  for (const key of [B, `${B}#x-forwarded-host=www.example`, C]) await send('GET', key, [['cache-control', 'max-age=60']])
  // The balancer told the origin "www.example"; the origin answers with absolute URLs on it.
  await send('POST', 'https://example.com/p#x-forwarded-host=www.example', [['location', 'https://WWW.example:443/b'], ['content-location', 'https://third.example/c']], 201)
  expect(cache.store.variants(B).length + cache.store.variants(`${B}#x-forwarded-host=www.example`).length).toBe(0)
  expect(cache.store.variants(C).length).toBe(1)
  cache.close()
})

test('a Host with a final dot is the same authority in the key (as routing reads it), so purge and invalidation reach what it stored', async () => {
  expect(requestKey(false, 'Example.COM.', '/d', undefined)).toBe('http://example.com/d')
  expect(requestKey(false, 'example.com.:8080', '/d', undefined)).toBe('http://example.com:8080/d')
  expect(requestKey(true, 'example.com.:443', '/d', undefined)).toBe('https://example.com/d')
  expect(requestKey(false, 'example.com..', '/d', undefined)).toBe('http://example.com./d') // no DNS name: one dot only
  expect(requestKey(false, '[::1]:8080', '/d', undefined)).toBe('http://[::1]:8080/d')
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0 })
  const req: ProxyRequest = { method: 'GET', target: '/d', headers: new Headers({ host: 'example.com.' }), body: null }
  const x = await Promise.resolve(cache.lookup(req, { key: requestKey(false, 'example.com.', '/d', undefined), enabled: true, requestId: 'rid', client: {}, maxWaitMs: 5000 }))
  await replyText(await x.onReply({ status: 200, statusText: 'OK', headers: [['date', new Date().toUTCString()], ['cache-control', 'max-age=60']], body: 'd' }))
  expect(cache.store.objects).toBe(1)
  expect(cache.purgePrefix('http://example.com')).toBe(1)
  expect(cache.store.objects).toBe(0)
  cache.close()
})
