/** The Location / Refresh / Set-Cookie rewrite rules, as tables (src/proxy/rewrite.ts). */
import { describe, expect, test } from 'bun:test'
import { resolveConfig } from '../../src/config/resolve.ts'
import { parseResponseHead } from '../../src/http1/response-head.ts'
import { clientOriginOf, responseRewriterFor, rewriteResponseHeaders, rewrites, rewriteSetCookie, type ClientView, type ResponseRewriter } from '../../src/proxy/rewrite.ts'

function rewriter(upstream: Record<string, unknown>): ResponseRewriter | undefined {
  return responseRewriterFor(resolveConfig(undefined, { upstream }).upstreams.default!)
}

function view(headers: Record<string, string>, opts: { tls?: boolean; trustedPeer?: boolean } = {}): ClientView {
  const h = new Headers(headers)
  return { tls: opts.tls ?? false, trustedPeer: opts.trustedPeer ?? false, headers: { get: (n) => h.get(n), forEach: (fn) => h.forEach(fn) } }
}

function location(rw: ResponseRewriter, value: string, client = view({ host: 'www.example.com' }, { tls: true })): string {
  const headers: [string, string][] = [['Location', value]]
  rewriteResponseHeaders(headers, rw, client)
  return headers[0]![1]
}

describe('proxy_redirect default', () => {
  const rw = rewriter({ url: 'http://origin.internal:8080' })!

  test.each([
    // at the upstream itself: the client's scheme and Host replace scheme://host:port
    ['http://origin.internal:8080/login?next=/a#top', 'https://www.example.com/login?next=/a#top'],
    ['HTTP://ORIGIN.internal:8080/x', 'https://www.example.com/x'],
    ['http://origin.internal:8080', 'https://www.example.com'],
    ['http://origin.internal:8080?q=1', 'https://www.example.com?q=1'],
    // elsewhere: untouched
    ['http://origin.internal/x', 'http://origin.internal/x'], // port 80, not 8080
    ['https://origin.internal:8080/x', 'https://origin.internal:8080/x'], // another scheme
    ['http://other.example:8080/x', 'http://other.example:8080/x'],
    ['http://origin.internal.evil:8080/x', 'http://origin.internal.evil:8080/x'],
    ['http://user@origin.internal:8080/x', 'http://user@origin.internal:8080/x'],
    // relative references (RFC 9110 §10.2.2) already point at the client's URL
    ['/login', '/login'],
    ['login', 'login'],
    ['//origin.internal:8080/x', '//origin.internal:8080/x'],
  ])('%s -> %s', (from, to) => {
    expect(location(rw, from)).toBe(to)
  })

  test('default ports compare equal to an absent or empty port', () => {
    const https = rewriter({ url: 'https://origin.internal' })!
    const client = view({ host: 'edge.example:8443' }, { tls: true })
    expect(location(https, 'https://origin.internal/a', client)).toBe('https://edge.example:8443/a')
    expect(location(https, 'https://origin.internal:443/a', client)).toBe('https://edge.example:8443/a')
    expect(location(https, 'https://origin.internal:/a', client)).toBe('https://edge.example:8443/a')
    expect(location(https, 'https://origin.internal:444/a', client)).toBe('https://origin.internal:444/a')
  })

  test('an IPv6 upstream', () => {
    const v6 = rewriter({ url: 'http://[::1]:9000' })!
    expect(location(v6, 'http://[::1]:9000/a', view({ host: 'e.example' }))).toBe('http://e.example/a')
  })

  test('Content-Location and Refresh too; other headers never', () => {
    const headers: [string, string][] = [
      ['content-location', 'http://origin.internal:8080/doc'],
      ['Refresh', '5; url=http://origin.internal:8080/next'],
      ['refresh', "0;URL='http://origin.internal:8080/q'"],
      ['link', '<http://origin.internal:8080/style.css>; rel=preload'],
      ['x-location', 'http://origin.internal:8080/'],
    ]
    rewriteResponseHeaders(headers, rw, view({ host: 'www.example.com' }))
    expect(headers).toEqual([
      ['content-location', 'http://www.example.com/doc'],
      ['Refresh', '5; url=http://www.example.com/next'],
      ['refresh', "0;URL='http://www.example.com/q'"],
      ['link', '<http://origin.internal:8080/style.css>; rel=preload'],
      ['x-location', 'http://origin.internal:8080/'],
    ])
  })

  test('no Host (HTTP/1.0): the client URL is unknown, the value is left alone', () => {
    expect(location(rw, 'http://origin.internal:8080/x', view({}))).toBe('http://origin.internal:8080/x')
  })
})

describe('the URL the client used', () => {
  test.each([
    [{ host: 'a.example' }, {}, 'http://a.example'],
    [{ host: 'a.example:8443' }, { tls: true }, 'https://a.example:8443'],
    // an untrusted peer's X-Forwarded-* are ignored
    [{ host: 'a.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' }, {}, 'http://a.example'],
    // a trusted proxy (TLS ended there) says what its client used
    [{ host: 'a.internal', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example.com' }, { trustedPeer: true }, 'https://www.example.com'],
    // ... but only a single, well-formed value
    [{ host: 'a.internal', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'a.example, b.example' }, { trustedPeer: true }, 'http://a.internal'],
    // As the upstream is told and the cache keys it (second opinion, eighteenth round): a list's
    // last member (a balancer's line added after the client's), nothing from Connection-listed fields.
    [{ host: 'a.internal', 'x-forwarded-proto': 'x, https' }, { trustedPeer: true }, 'https://a.internal'],
    [{ host: 'a.internal', connection: 'X-Forwarded-Host', 'x-forwarded-host': 'evil.example' }, { trustedPeer: true }, 'http://a.internal'],
    [{ host: 'a.internal', connection: 'keep-alive, x-forwarded-proto', 'x-forwarded-proto': 'https' }, { trustedPeer: true }, 'http://a.internal'],
  ] as const)('%o %o', (headers, opts, origin) => {
    expect(clientOriginOf(view(headers as Record<string, string>, opts))).toBe(origin)
  })
})

describe('proxy_redirect pairs and off', () => {
  test('pairs replace a prefix, first match wins, "default" may follow', () => {
    const rw = rewriter({ url: 'http://origin.internal:8080', proxy_redirect: ['http://origin.internal:8080/two/ https://www.example.com/one/', 'http://legacy.example/ /', 'default'] })!
    expect(location(rw, 'http://origin.internal:8080/two/x')).toBe('https://www.example.com/one/x')
    expect(location(rw, 'http://legacy.example/a')).toBe('/a')
    expect(location(rw, 'http://origin.internal:8080/three')).toBe('https://www.example.com/three')
  })

  test('pairs alone: no default', () => {
    const rw = rewriter({ url: 'http://origin.internal:8080', proxy_redirect: 'http://legacy.example/ /' })!
    expect(location(rw, 'http://origin.internal:8080/x')).toBe('http://origin.internal:8080/x')
  })

  test('off, with no cookie rules: nothing to do at all', () => {
    expect(rewriter({ url: 'http://origin.internal:8080', proxy_redirect: 'off' })).toBeUndefined()
  })

  test('bad values name the key', () => {
    expect(() => rewriter({ url: 'http://o', proxy_redirect: 'sometimes' })).toThrow(/proxy_redirect: "sometimes" is not one of/)
    expect(() => rewriter({ url: 'http://o', proxy_redirect: ['off', 'default'] })).toThrow(/"off" stands alone/)
    expect(() => rewriter({ url: 'http://o', proxy_cookie_domain: 'default' })).toThrow(/proxy_cookie_domain/)
  })
})

describe('proxy_cookie_domain and proxy_cookie_path (off by default)', () => {
  test('off by default: Set-Cookie untouched', () => {
    const rw = rewriter({ url: 'http://origin.internal:8080' })!
    const headers: [string, string][] = [['set-cookie', 'a=1; Domain=origin.internal; Path=/app']]
    rewriteResponseHeaders(headers, rw, view({ host: 'www.example.com' }))
    expect(headers[0]![1]).toBe('a=1; Domain=origin.internal; Path=/app')
  })

  const rw = rewriter({ url: 'http://origin.internal:8080', proxy_cookie_domain: ['origin.internal example.com'], proxy_cookie_path: ['/app/ /'] })!
  test.each([
    ['a=1; Domain=origin.internal; Path=/app/x; HttpOnly', 'a=1; Domain=example.com; Path=/x; HttpOnly'],
    ['a=1; domain=.ORIGIN.internal', 'a=1; domain=.example.com'],
    ['a=1;Path=/app/;Secure', 'a=1;Path=/;Secure'],
    // whole-domain match only; path is a case-sensitive prefix
    ['a=1; Domain=sub.origin.internal; Path=/App/x', 'a=1; Domain=sub.origin.internal; Path=/App/x'],
    // the cookie's own value is never an attribute
    ['domain=origin.internal; Max-Age=60', 'domain=origin.internal; Max-Age=60'],
  ])('%s -> %s', (from, to) => {
    expect(rewriteSetCookie(from, rw)).toBe(to)
  })

  test('each Set-Cookie line separately', () => {
    const headers: [string, string][] = [
      ['Set-Cookie', 'a=1; Domain=origin.internal'],
      ['Set-Cookie', 'b=2; Path=/app/b'],
    ]
    rewriteResponseHeaders(headers, rw, view({ host: 'www.example.com' }))
    expect(headers).toEqual([
      ['Set-Cookie', 'a=1; Domain=example.com'],
      ['Set-Cookie', 'b=2; Path=/b'],
    ])
  })
})

describe('which responses the rules can touch (fields still as bytes)', () => {
  const fields = (lines: string[]) => parseResponseHead(['HTTP/1.1 200 OK', ...lines].join('\r\n'), 'GET').raw!

  test('redirect rules: Location, Content-Location and Refresh, in any case; nothing else', () => {
    const rw = rewriter({ url: 'http://origin.internal:8080' })!
    expect(rewrites(fields(['Content-Type: text/plain', 'Content-Length: 5', 'Set-Cookie: a=1']), rw)).toBe(false)
    expect(rewrites(fields(['LOCATION: /x']), rw)).toBe(true)
    expect(rewrites(fields(['content-location: /x']), rw)).toBe(true)
    expect(rewrites(fields(['Refresh: 0; url=/x']), rw)).toBe(true)
    // Same lengths, other names.
    expect(rewrites(fields(['Locatiom: /x', 'X-Cookie-: 1', 'Refresx: 1']), rw)).toBe(false)
  })

  test('cookie rules: Set-Cookie too', () => {
    const rw = rewriter({ url: 'http://origin.internal:8080', proxy_cookie_domain: 'origin.internal www.example.com' })!
    expect(rewrites(fields(['set-cookie: a=1; Domain=origin.internal']), rw)).toBe(true)
  })
})
