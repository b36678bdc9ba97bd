/**
 * The edge cache against hostile clients through real sockets: a Bun origin, the proxy with its
 * cache on, raw clients. What one client sends must not become what the next one gets.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import type { FlagLayer } from '../../src/config/resolve.ts'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { Harness, rawExchange } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

function start(originPort: number, server: FlagLayer['server'] = {}): { port: number; cache: EdgeCache } {
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort}`, retries: '0' }, server })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { cache } }).start()
  h.track(() => proxy.close())
  return { port: Number(new URL(proxy.url).port), cache }
}

const cacheStatus = (raw: string) => /\r\ncache-status: ([^\r]*)/i.exec(raw)?.[1]
const bodyOf = (raw: string) => raw.slice(raw.indexOf('\r\n\r\n') + 4)

describe('a GET with a body', () => {
  test('its answer is not stored: the next client without one gets the origin\'s own answer', async () => {
    let upstream = 0
    const origin = h.origin({
      async fetch(req) {
        upstream++
        // An origin that reads a GET's form body (as frameworks merging it into the parameters do).
        const form = await req.text()
        return new Response(`hello ${form === '' ? 'world' : form}`, { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    const { port, cache } = start(origin.port!)
    const form = 'name=<script>'
    const fat = await rawExchange(port, `GET /page HTTP/1.1\r\nHost: site\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`, '127.0.0.1', (c) => h.track(c))
    expect(fat).toStartWith('HTTP/1.1 200')
    expect(cacheStatus(fat)).toBe('proxy; fwd=uri-miss')
    expect(cache.store.objects).toBe(0)
    const next = await rawExchange(port, 'GET /page HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(cacheStatus(next)).toBe('proxy; fwd=uri-miss; stored')
    expect(bodyOf(next)).not.toContain('<script>')
    expect(upstream).toBe(2)
  })
})

describe('a field that stands for another URL or method (X-Original-URL, X-HTTP-Method-Override)', () => {
  test('its answer is not stored: the next client gets the URL\'s own page, not the one the field chose', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch(req) {
        upstream++
        // An origin that routes by X-Original-URL when it is there (Symfony, IIS behind a rewriter).
        const path = req.headers.get('x-original-url') ?? new URL(req.url).pathname
        return new Response(path === '/admin' ? 'admin page' : 'home page', { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    // From a peer in trusted_proxies (a load balancer): the field reaches the origin. From anyone
    // else it is dropped (headers.ts SPOOFABLE, since the thirteenth round of review), below.
    const { port, cache } = start(origin.port!, { trusted_proxies: ['127.0.0.0/8'] })
    const planted = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: site\r\nX-Original-URL: /admin\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(bodyOf(planted)).toBe('admin page')
    expect(cacheStatus(planted)).toBe('proxy; fwd=uri-miss')
    expect(cache.store.objects).toBe(0)
    const next = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(bodyOf(next)).toBe('home page')
    expect(cacheStatus(next)).toBe('proxy; fwd=uri-miss; stored')
    // A stored answer still answers such a request: it is the URL's page, nothing the field chose.
    const after = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: site\r\nX-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(bodyOf(after)).toBe('home page')
    expect(cacheStatus(after)).toStartWith('proxy; hit')
    expect(upstream).toBe(2)
  })

  test('spelled with "_" (CGI, PHP and WSGI read X_HTTP_Method_Override as the same variable): not stored either (eighteenth round of review)', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch(req) {
        upstream++
        // An origin that reads fields as a CGI environment does: "_" and "-" are one.
        let method = req.method
        let path = new URL(req.url).pathname
        req.headers.forEach((value, name) => {
          const env = name.replaceAll('_', '-')
          if (env === 'x-http-method-override') method = value
          if (env === 'x-original-url') path = value
        })
        if (method !== 'GET') return new Response('no', { status: 405, headers: { 'cache-control': 'public, max-age=60' } })
        return new Response(path === '/admin' ? 'admin page' : 'home page', { headers: { 'cache-control': 'public, max-age=60' } })
      },
    })
    const { port, cache } = start(origin.port!, { trusted_proxies: ['127.0.0.0/8'] })
    for (const field of ['X_HTTP_Method_Override: DELETE', 'x-http_method-override: DELETE', 'X_Original_URL: /admin', 'X-Rewrite_URL: /admin', 'X_Method_Override: DELETE']) {
      const planted = await rawExchange(port, `GET /p HTTP/1.1\r\nHost: site\r\n${field}\r\nConnection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
      expect(cacheStatus(planted)).toBe('proxy; fwd=uri-miss')
    }
    expect(cache.store.objects).toBe(0)
    const next = await rawExchange(port, 'GET /p HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(next).toStartWith('HTTP/1.1 200')
    expect(bodyOf(next)).toBe('home page')
    expect(upstream).toBe(6)
  })

  test('from a client that is not a trusted proxy the field does not reach the origin at all (thirteenth round of review)', async () => {
    let seen: string | null = 'unset'
    const origin = h.origin({ fetch: (req) => ((seen = req.headers.get('x-original-url')), new Response('home page')) })
    const { port } = start(origin.port!)
    const r = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: site\r\nX-Original-URL: /admin\r\nConnection: close\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(bodyOf(r)).toBe('home page')
    expect(seen).toBeNull()
  })
})

describe('behind a trusted proxy (trusted_proxies): what its X-Forwarded-* tell the origin is keyed', () => {
  // An origin that redirects plain http to https, and builds its links from the forwarded host (as
  // frameworks do behind a load balancer).
  function forwardingOrigin() {
    return h.origin({
      fetch(req) {
        const proto = req.headers.get('x-forwarded-proto')
        const host = req.headers.get('x-forwarded-host')
        if (proto === 'http') return new Response(null, { status: 301, headers: { location: `https://${host}/p`, 'cache-control': 'max-age=60' } })
        return new Response(`<a href="https://${host}/next">`, { headers: { 'cache-control': 'max-age=60' } })
      },
    })
  }

  test('X-Forwarded-Proto: the https client does not get the redirect stored for the http one (a redirect loop)', async () => {
    const { port } = start(forwardingOrigin().port!, { trusted_proxies: ['127.0.0.0/8'] })
    const send = (proto: string) => rawExchange(port, `GET /p HTTP/1.1\r\nHost: site\r\nX-Forwarded-Proto: ${proto}\r\nConnection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const plain = await send('http')
    expect(plain).toStartWith('HTTP/1.1 301')
    expect(cacheStatus(plain)).toBe('proxy; fwd=uri-miss; stored')
    const secure = await send('https')
    expect(secure).toStartWith('HTTP/1.1 200')
    expect(cacheStatus(secure)).toBe('proxy; fwd=uri-miss; stored')
    // Each is then a hit of its own.
    expect(await send('http')).toStartWith('HTTP/1.1 301')
    expect(cacheStatus(await send('https'))).toStartWith('proxy; hit')
  })

  test('X-Forwarded-Host: a client-supplied host passed on by the trusted proxy does not end up in everyone\'s page', async () => {
    const { port } = start(forwardingOrigin().port!, { trusted_proxies: ['127.0.0.0/8'] })
    const send = (extra: string) => rawExchange(port, `GET /p HTTP/1.1\r\nHost: site\r\nX-Forwarded-Proto: https\r\n${extra}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const poisoned = await send('X-Forwarded-Host: evil.example\r\n')
    expect(bodyOf(poisoned)).toBe('<a href="https://evil.example/next">')
    const next = await send('')
    expect(bodyOf(next)).toBe('<a href="https://site/next">')
    const same = await send('X-Forwarded-Host: SITE\r\n')
    expect(cacheStatus(same)).toStartWith('proxy; hit')
  })
})

describe('errors about one client\'s request', () => {
  test('a 400 (or 431) the origin gives one client\'s malformed header, even with max-age, is not what the next client gets', async () => {
    // An origin (or a server in front of it) that refuses a header it dislikes, with the site-wide Cache-Control.
    const origin = h.origin({
      fetch(req) {
        const cc = { 'cache-control': 'public, max-age=300' }
        if (req.headers.get('x-oversized') !== null) return new Response('header too large', { status: 431, headers: cc })
        if (req.headers.get('x-meta') !== null) return new Response('bad request', { status: 400, headers: cc })
        return new Response('page', { headers: cc })
      },
    })
    const { port, cache } = start(origin.port!)
    const send = (path: string, extra = '') => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: site\r\n${extra}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    expect(await send('/a', 'X-Meta: \\\r\n')).toStartWith('HTTP/1.1 400')
    expect(await send('/b', 'X-Oversized: 1\r\n')).toStartWith('HTTP/1.1 431')
    expect(cache.store.objects).toBe(0)
    const a = await send('/a')
    expect(a).toStartWith('HTTP/1.1 200')
    expect(bodyOf(a)).toBe('page')
    expect(await send('/b')).toStartWith('HTTP/1.1 200')
  })
})

describe('answers to one client\'s Range or precondition', () => {
  test('a 416 for its Range and a 412 for its If-Match or If-Unmodified-Since, even with max-age, are not what the next client gets', async () => {
    // An origin that serves ranges and preconditions itself, with the site-wide Cache-Control on every answer.
    let upstream = 0
    const origin = h.origin({
      fetch(req) {
        upstream++
        const headers = { 'cache-control': 'public, max-age=300', etag: '"v1"' }
        if (req.headers.get('range') !== null) return new Response('', { status: 416, headers: { ...headers, 'content-range': 'bytes */4' } })
        if (req.headers.get('if-match') !== null || req.headers.get('if-unmodified-since') !== null) return new Response('', { status: 412, headers })
        return new Response('page', { headers })
      },
    })
    const { port, cache } = start(origin.port!)
    const send = (path: string, extra = '') => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: site\r\n${extra}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    expect(await send('/r', 'Range: bytes=100-200\r\n')).toStartWith('HTTP/1.1 416')
    expect(await send('/m', 'If-Match: "other"\r\n')).toStartWith('HTTP/1.1 412')
    expect(await send('/u', 'If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n')).toStartWith('HTTP/1.1 412')
    expect(cache.store.objects).toBe(0)
    for (const path of ['/r', '/m', '/u']) {
      const plain = await send(path)
      expect(plain).toStartWith('HTTP/1.1 200')
      expect(bodyOf(plain)).toBe('page')
    }
    expect(upstream).toBe(6)
  })
})

describe('a Host spelled otherwise than the key has it', () => {
  test('upper case, a final dot or the default port: its answer is not what the next client gets, and a stored answer still serves it', async () => {
    // An app matching its virtual hosts exactly (as the key's normal form does not), with a site-wide Cache-Control.
    const seen: string[] = []
    const origin = h.origin({
      fetch(req) {
        const host = req.headers.get('host')!
        seen.push(host)
        const headers = { 'cache-control': 'public, max-age=300' }
        return host === 'site' ? new Response('page', { headers }) : new Response(`unknown host ${host}`, { status: 404, headers })
      },
    })
    const { port, cache } = start(origin.port!)
    const send = (path: string, host: string) => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const odd = ['SITE', 'site.', 'site:80']
    for (const [i, host] of odd.entries()) expect(await send(`/${i}`, host)).toStartWith('HTTP/1.1 404')
    expect(cache.store.objects).toBe(0)
    for (const i of odd.keys()) {
      const plain = await send(`/${i}`, 'site')
      expect(plain).toStartWith('HTTP/1.1 200')
      expect(bodyOf(plain)).toBe('page')
    }
    expect(cache.store.objects).toBe(3)
    // The key's own answer serves every spelling of the host once it is stored.
    const hit = await send('/0', 'SITE')
    expect(cacheStatus(hit)).toStartWith('proxy; hit')
    expect(bodyOf(hit)).toBe('page')
    expect(seen).toEqual(['SITE', 'site.', 'site:80', 'site', 'site', 'site'])
  })
})

describe('a field the request\'s Connection lists (hop-by-hop for it: not forwarded)', () => {
  test('the answer is keyed as the origin saw the request, without that field: a client sending the field gets its own variant (eighteenth round of review)', async () => {
    const seen: (string | null)[] = []
    const origin = h.origin({
      fetch(req) {
        const ua = req.headers.get('user-agent')
        seen.push(ua)
        const headers = { 'cache-control': 'public, max-age=60', vary: 'User-Agent' }
        return new Response(ua?.startsWith('Mozilla/') ? 'welcome, browser' : 'unsupported client', { headers })
      },
    })
    const { port, cache } = start(origin.port!)
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0'
    const send = (extra: string) => rawExchange(port, `GET /ua HTTP/1.1\r\nHost: site\r\nUser-Agent: ${ua}\r\n${extra}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const planted = await send('Connection: keep-alive, User-Agent\r\n')
    expect(bodyOf(planted)).toBe('unsupported client')
    expect(cache.store.objects).toBe(1)
    const victim = await send('')
    expect(bodyOf(victim)).toBe('welcome, browser')
    expect(cacheStatus(victim)).toBe('proxy; fwd=vary-miss; stored')
    // Each variant answers the requests the origin would see alike: the hop-by-hop one hits the first.
    const again = await send('Connection: User-Agent\r\n')
    expect(bodyOf(again)).toBe('unsupported client')
    expect(cacheStatus(again)).toStartWith('proxy; hit')
    const hit = await send('')
    expect(bodyOf(hit)).toBe('welcome, browser')
    expect(cacheStatus(hit)).toStartWith('proxy; hit')
    expect(seen).toEqual([null, ua])
  })
})

describe('a request with a Cookie (web cache deception)', () => {
  test('an answer with no lifetime from the origin is not stored for it; one stored for a request without a Cookie is refreshed by its 304, not dropped (eighteenth round of review)', async () => {
    const seen: string[] = []
    const lastModified = new Date(Date.now() - 10_000).toUTCString()
    const origin = h.origin({
      fetch(req) {
        const cookie = req.headers.get('cookie')
        seen.push(`${new URL(req.url).pathname} ${cookie ?? '-'} ${req.headers.get('if-modified-since') === null ? 'plain' : 'conditional'}`)
        if (req.headers.get('if-modified-since') === lastModified) return new Response(null, { status: 304, headers: { 'last-modified': lastModified } })
        // An app that ignores the path's suffix: the account page, with a Last-Modified and no Cache-Control (a heuristic lifetime of 1 s).
        return new Response(cookie ? `account of ${cookie}` : 'please log in', { headers: { 'last-modified': lastModified } })
      },
    })
    const { port, cache } = start(origin.port!)
    const send = (path: string, cookie?: string) => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: site\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const victim = await send('/account/settings.css', 'sid=victim')
    expect(bodyOf(victim)).toBe('account of sid=victim')
    expect(cacheStatus(victim)).toBe('proxy; fwd=uri-miss')
    const attacker = await send('/account/settings.css')
    expect(bodyOf(attacker)).toBe('please log in')
    expect(cacheStatus(attacker)).toBe('proxy; fwd=uri-miss; stored')
    expect(cache.store.objects).toBe(1)
    // Stale after its second of heuristic lifetime; a client with a Cookie revalidates it, the origin says 304.
    await Bun.sleep(1200)
    const revalidated = await send('/account/settings.css', 'sid=other')
    expect(revalidated).toStartWith('HTTP/1.1 200')
    expect(bodyOf(revalidated)).toBe('please log in')
    expect(cache.store.objects).toBe(1)
    const hit = await send('/account/settings.css')
    expect(cacheStatus(hit)).toStartWith('proxy; hit')
    expect(seen).toEqual(['/account/settings.css sid=victim plain', '/account/settings.css - plain', '/account/settings.css sid=other conditional'])
  })
})

describe('a redirect the proxy rewrites to the client\'s URL (proxy_redirect default), behind a trusted balancer', () => {
  test('is built from the X-Forwarded-* the cache keys: a Connection-listed X-Forwarded-Host or a list\'s first member is no one\'s redirect target (second opinion, eighteenth round)', async () => {
    let originPort = 0
    const origin = h.origin({ fetch: () => new Response(null, { status: 301, headers: { location: `http://127.0.0.1:${originPort}/new`, 'cache-control': 'max-age=60' } }) })
    originPort = origin.port!
    const { port } = start(origin.port!, { trusted_proxies: ['127.0.0.0/8'] })
    const send = (path: string, extra: string) => rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: site\r\n${extra}Connection: close\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
    const locationOf = (raw: string) => /\r\nlocation: ([^\r]*)/i.exec(raw)?.[1]
    // The field its Connection lists is not forwarded, nor keyed: the redirect names Host.
    const planted = await rawExchange(port, 'GET /a HTTP/1.1\r\nHost: site\r\nX-Forwarded-Host: evil.example\r\nConnection: close, X-Forwarded-Host\r\n\r\n', '127.0.0.1', (c) => h.track(c))
    expect(locationOf(planted)).toBe('http://site/new')
    const victim = await send('/a', '')
    expect(locationOf(victim)).toBe('http://site/new')
    // An appending balancer's last member says https: the redirect, and its key, say https.
    const listed = await send('/b', 'X-Forwarded-Proto: x, https\r\n')
    expect(locationOf(listed)).toBe('https://site/new')
    const secure = await send('/b', 'X-Forwarded-Proto: https\r\n')
    expect(cacheStatus(secure)).toStartWith('proxy; hit')
    expect(locationOf(secure)).toBe('https://site/new')
  })
})
