/** Router.matchFor: the Host and path derived from a request only when a route looks at them, with the same answers. */
import { describe, expect, test } from 'bun:test'
import type { ResolvedRoute } from '../../src/config/schema.ts'
import { mergedPath, routePath, Router } from '../../src/proxy/routes.ts'

const route = (upstream: string, host?: string, pathPrefix?: string): ResolvedRoute => ({ host, pathPrefix, upstream, cache: true })
const CATCH_ALL = route('web')
const upstreams = new Map([['api', 'api'], ['web', 'web'], ['static', 'static']])

describe('matchFor with host and path routes', () => {
  const router = new Router([route('api', '*.api.example'), route('static', 'cdn.example', '/assets/'), route('api', undefined, '/api/'), CATCH_ALL], upstreams, 'web')
  test.each([
    ['/x', 'V1.API.example:8443', 'api'],
    ['/x', 'api.example', 'web'],
    ['/assets/a.png?v=1', 'CDN.example', 'static'],
    ['/other?x=/assets/', 'cdn.example', 'web'],
    ['/api/users?q=1', 'www.example', 'api'],
    ['/apix', 'www.example', 'web'],
    ['/x?/api/', 'www.example', 'web'],
    ['/api/x', null, 'api'], // HTTP/1.0 without Host: only the path routes can match
    ['/x', null, 'web'],
  ] as const)('%s (Host %s) -> %s', (target, host, upstream) => {
    expect(router.matchFor(target, host)?.upstream).toBe(upstream)
    expect(router.routeFor(target, host)).toBe(upstream)
  })
})

test('a prefix as the config resolves "/café/" and "/my docs/" matches the path as requests carry it, its hex in either case (outside review, twentieth round)', () => {
  const router = new Router([route('api', undefined, '/caf%C3%A9/'), route('static', undefined, '/my%20docs/'), CATCH_ALL], upstreams, 'web')
  expect(router.routeFor('/caf%C3%A9/x', 'a')).toBe('api')
  expect(router.routeFor('/caf%c3%a9/x', 'a')).toBe('api')
  expect(router.routeFor('/my%20docs/x', 'a')).toBe('static')
  expect(router.routeFor('/cafe/x', 'a')).toBe('web')
})

test('"{", "|", "^" and a "%" that starts no escape: raw or %-encoded in the request, one route (review, twentieth round)', () => {
  const router = new Router([route('api', undefined, '/a%7Bb%7D/'), route('static', undefined, '/100%25/'), CATCH_ALL], upstreams, 'web')
  for (const path of ['/a{b}/x', '/a%7Bb%7D/x', '/a%7bb%7d/x']) expect([path, router.routeFor(path, 'a')]).toEqual([path, 'api'])
  for (const path of ['/100%/x', '/100%25/x']) expect([path, router.routeFor(path, 'a')]).toEqual([path, 'static'])
  for (const path of ['/a%7Bb%7D/x', '/a{b}/x', '/100%/x', '/100%25/x']) expect([path, router.ambiguous(path, 'a')]).toEqual([path, false])
  expect(routePath('/x|y^z`/%zz')).toBe('/x%7Cy%5Ez%60/%25zz')
})

test('an IPv6 Host keeps its brackets and drops its port', () => {
  const router = new Router([route('api', '[::1]'), CATCH_ALL], upstreams, 'web')
  expect(router.routeFor('/', '[::1]:8080')).toBe('api')
  expect(router.routeFor('/', '[::2]:8080')).toBe('web')
})

test('the catch-all alone matches every request, whatever its Host and target', () => {
  const router = new Router([CATCH_ALL], upstreams, 'web')
  for (const [target, host] of [['/', 'a.example'], ['/x?y', null], ['*', 'B.EXAMPLE:1']] as const) expect(router.matchFor(target, host)).toBe(CATCH_ALL)
})

test('a route that bypasses the cache is what matchFor gives, before the catch-all', () => {
  const noCache: ResolvedRoute = { host: undefined, pathPrefix: '/live/', upstream: 'api', cache: false }
  const router = new Router([noCache, CATCH_ALL], upstreams, 'web')
  expect(router.matchFor('/live/feed?x=1', 'a.example')?.cache).toBe(false)
  expect(router.matchFor('/other', 'a.example')?.cache).toBe(true)
})

test('routes after one that matches anything are never reached', () => {
  const shadowed = route('static', 'cdn.example')
  const router = new Router([route('api', undefined, '/api/'), CATCH_ALL, shadowed], upstreams, 'web')
  expect(router.matchFor('/x', 'cdn.example')).toBe(CATCH_ALL)
  expect(router.matchFor('/api/x', 'cdn.example')?.upstream).toBe('api')
})

test('without a catch-all, an unmatched request gets the default upstream', () => {
  const router = new Router([route('api', undefined, '/api/')], upstreams, 'static')
  expect(router.matchFor('/x', 'a.example')).toBeUndefined()
  expect(router.routeFor('/x', 'a.example')).toBe('static')
  expect(new Router([], upstreams, 'web').routeFor('/api/x', null)).toBe('web')
})

describe('a path takes the route of the resource it names (RFC 3986 §6.2.2), not of its spelling', () => {
  // An origin that normalizes (nginx, Bun.serve, python's http.server) serves "/api/x" for each of these.
  const noCache: ResolvedRoute = { host: undefined, pathPrefix: '/account/', upstream: 'web', cache: false }
  const router = new Router([route('api', undefined, '/api/'), noCache, CATCH_ALL], upstreams, 'web')
  test.each([
    ['/%61pi/x', 'api'],
    ['/%41PI/x', 'web'], // paths are case-sensitive: "/API/" is not "/api/"
    ['/web/../api/x', 'api'],
    ['/web/%2e%2e/api/x', 'api'],
    ['/web/.%2E/api/x?q=/', 'api'],
    ['/./api/x', 'api'],
    ['/api/../web/x', 'web'],
    ['/api/%2e%2e/web/x', 'web'],
    ['/api%2fx', 'web'], // "%2F" is not "/" (RFC 3986 §2.2)
    ['/api/x?../../web', 'api'],
  ] as const)('%s -> %s', (target, upstream) => {
    expect(router.routeFor(target, 'a.example')).toBe(upstream)
  })
  test('a route that bypasses the cache is not escaped by another spelling of its paths', () => {
    for (const target of ['/%61ccount/me', '/static/../account/me', '/static/%2e%2e/account/me', '/account/./me']) expect(router.matchFor(target, 'a.example')?.cache).toBe(false)
  })
})

test.each([
  ['/a/b/c/./../../g', '/a/g'], // RFC 3986 §5.2.4's example
  ['/mid/content=5/../6', '/mid/6'],
  ['/a/..', '/'],
  ['/a/.', '/a/'],
  ['/..', '/'],
  ['/../../x', '/x'],
  ['//x/../y', '//y'],
  ['/a//../b', '/a/b'],
  ['/%7Euser/%2E%2e/', '/'],
  ['/a%2Fb/%00/%zz/%', '/a%2Fb/%00/%25zz/%25'], // a "%" that starts no escape is the character: "%25" (twentieth round)
  ['/app.js', '/app.js'],
  ['/.well-known/x', '/.well-known/x'],
  ['*', '*'],
] as const)('routePath(%s) is %s', (path, normal) => {
  expect(routePath(path)).toBe(normal)
})

test('a Host with a final dot (an absolute DNS name) takes the route of the name without it', () => {
  const router = new Router([route('api', 'api.example'), route('static', '*.cdn.example.'), CATCH_ALL], upstreams, 'web')
  expect(router.routeFor('/', 'api.example.')).toBe('api')
  expect(router.routeFor('/', 'API.EXAMPLE.:8080')).toBe('api')
  expect(router.routeFor('/', 'a.cdn.example.')).toBe('static')
  expect(router.routeFor('/', 'a.cdn.example')).toBe('static')
  expect(router.routeFor('/', 'api.example..')).toBe('web') // not a DNS name: no route
  expect(router.routeFor('/', '.')).toBe('web')
})

test('escapes kept in a path compare in either case (RFC 3986 §6.2.2.1), in a prefix and in a request', () => {
  const r = new Router([route('api', undefined, '/a%2fb/'), route('static', undefined, '/%7Euser/'), CATCH_ALL], upstreams, 'web')
  expect(r.routeFor('/a%2Fb/c', 'x')).toBe('api')
  expect(r.routeFor('/a%2fb/c', 'x')).toBe('api')
  expect(r.routeFor('/~user/c', 'x')).toBe('static')
  expect(routePath('/x/%3f%3F%zz')).toBe('/x/%3F%3F%25zz')
})

describe('a path whose route depends on how its origin reads it is ambiguous (refused with 400)', () => {
  const r = new Router([route('account', undefined, '/account/'), route('static', undefined, '/static/'), CATCH_ALL], upstreams, 'web')
  test.each([
    ['/static//../account/me', 'RFC 3986: /static/account/me; merged slashes: /account/me'],
    ['/static/..%2Faccount/me', 'an escaped slash decoded makes a dot segment'],
    ['/static/%2e%2e%2faccount/me', 'the same, all escaped'],
    ['//account/me', 'merged slashes: /account/me'],
    ['/%2Faccount/me?x=1', 'an escaped slash decoded, then merged'],
  ])('%s (%s)', (target) => {
    expect(r.ambiguous(target, 'x')).toBe(true)
  })
  test.each([
    ['/static/../account/me'], // both readings: /account/me
    ['/account//me'], // both readings take the account route
    ['/static/a%2Fb'], // both readings: static
    ['/x//y/../z'], // both readings: the default
    ['/plain/path'],
    ['*'],
  ])('%s is not', (target) => {
    expect(r.ambiguous(target, 'x')).toBe(false)
  })
  test('without path routes nothing is ambiguous', () => {
    const hostOnly = new Router([route('api', 'api.example'), CATCH_ALL], upstreams, 'web')
    expect(hostOnly.ambiguous('/static//../account/me', 'api.example')).toBe(false)
  })
})

test('mergedPath reads a path as an origin that decodes escapes and merges slashes', () => {
  expect(mergedPath('/static//../account/me')).toBe('/account/me')
  expect(mergedPath('/static/..%2Faccount/me')).toBe('/account/me')
  expect(mergedPath('//a///b/./c/')).toBe('/a/b/c/')
})

test('a prefix spelled with an escape or a double slash is read the same way as the path in both readings: its own requests are not ambiguous', () => {
  const r = new Router([route('docs', undefined, '/my%20docs/'), route('cafe', undefined, '/caf%C3%A9/'), route('legacy', undefined, '/old//api/'), CATCH_ALL], upstreams, 'web')
  // Each reading takes the route its prefix has in that reading: these went to it, and were refused as ambiguous.
  for (const target of ['/my%20docs/readme', '/caf%C3%A9/menu', '/caf%c3%a9/menu', '/old//api/v1', '/my%20docs/a/../b']) {
    expect(r.ambiguous(target, 'x')).toBe(false)
    expect(r.matchFor(target, 'x')?.upstream).not.toBe('web')
  }
  // A path that leaves such a route once merged is still caught.
  expect(r.ambiguous('/my%20docs/..%2F..%2Fx', 'x')).toBe(true)
})

test('".example.com" matches example.com and every name under it, as nginx\'s server_name .example.com (eighteenth round of review)', () => {
  const router = new Router([route('api', '.example.com'), CATCH_ALL], upstreams, 'web')
  for (const host of ['example.com', 'www.example.com', 'a.b.EXAMPLE.com:8443', 'example.com.']) expect([host, router.routeFor('/', host)]).toEqual([host, 'api'])
  for (const host of ['notexample.com', 'example.com.evil', 'example.co']) expect([host, router.routeFor('/', host)]).toEqual([host, 'web'])
})
