/** RFC 9111 rules as tables, with times given explicitly (the policy has no clock of its own). */
import { describe, expect, test } from 'bun:test'
import { deltaSeconds, parseDirectives, parseTargetedDirectives } from '../../../src/proxy/cache/directives.ts'
import { parseHttpDate } from '../../../src/lib/http-date.ts'
import {
  currentAgeMs,
  evaluateReuse,
  freshnessLifetimeMs,
  requestDirectives,
  responseDirectives,
  staleIfErrorAllows,
  whyNotStorable,
  type StoredView,
} from '../../../src/proxy/cache/policy.ts'

type H = [string, string][]
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0) // a whole second
const httpDate = (ms: number) => new Date(ms).toUTCString()
const req = (h: Record<string, string> = {}) => new Headers(h)

describe('directives', () => {
  test.each([
    ['max-age=60, public', { 'max-age': '60', public: true }],
    ['Max-Age="60"', { 'max-age': '60' }],
    ['no-cache="set-cookie, x-a", s-maxage=5', { 'no-cache': 'set-cookie, x-a', 's-maxage': '5' }],
    ['max-age=1, max-age=2', { 'max-age': null }],
    ['max-age=1, max-age=1', { 'max-age': '1' }],
    [' , private ,,', { private: true }],
    ['max-age =60, public', { public: true }],
    ['max-age= 60', {}],
    ['foo="max-age=8000", max-age=1', { foo: 'max-age=8000', 'max-age': '1' }],
  ] as [string, Record<string, string | true | null>][])('%p', (raw, want) => {
    expect(Object.fromEntries(parseDirectives(raw))).toEqual(want)
  })

  test.each([
    ['0', 0],
    ['3600', 3600],
    ['99999999999', 2147483648],
    ['-1', undefined],
    ['1.5', undefined],
    ['', undefined],
  ] as [string, number | undefined][])('delta-seconds %p', (raw, want) => {
    expect(deltaSeconds(raw)).toBe(want)
  })

  test.each([
    ['Sun, 06 Nov 1994 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 37)],
    ['Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 37)],
    ['Sun Nov  6 08:49:37 1994', Date.UTC(1994, 10, 6, 8, 49, 37)],
    ['0', undefined],
    ['Sun, 06 Nov 1994 08:49:37', undefined],
    ['tomorrow', undefined],
  ] as [string, number | undefined][])('HTTP-date %p', (raw, want) => {
    expect(parseHttpDate(raw)).toBe(want)
  })
})

describe('storability (§3, §3.5)', () => {
  const cases: [string, string, Record<string, string>, number, H, string | undefined][] = [
    ['max-age 200', 'GET', {}, 200, [['cache-control', 'max-age=60']], undefined],
    ['POST', 'POST', {}, 200, [['cache-control', 'max-age=60']], 'method'],
    ['HEAD is not stored', 'HEAD', {}, 200, [['cache-control', 'max-age=60']], 'method'],
    ['no-store', 'GET', {}, 200, [['cache-control', 'max-age=60, no-store']], 'no-store'],
    ['request no-store', 'GET', { 'cache-control': 'no-store' }, 200, [['cache-control', 'max-age=60']], 'request-no-store'],
    ['private', 'GET', {}, 200, [['cache-control', 'private, max-age=60']], 'private'],
    ['qualified private', 'GET', {}, 200, [['cache-control', 'private="set-cookie", max-age=60']], 'private'],
    ['Authorization without permission', 'GET', { authorization: 'Bearer x' }, 200, [['cache-control', 'max-age=60']], 'authorization'],
    ['Authorization with public', 'GET', { authorization: 'Bearer x' }, 200, [['cache-control', 'public, max-age=60']], undefined],
    ['Authorization with s-maxage', 'GET', { authorization: 'Bearer x' }, 200, [['cache-control', 's-maxage=60']], undefined],
    ['Authorization with must-revalidate', 'GET', { authorization: 'Bearer x' }, 200, [['cache-control', 'must-revalidate, max-age=60']], undefined],
    ['Vary: *', 'GET', {}, 200, [['cache-control', 'max-age=60'], ['vary', 'accept, *']], 'vary-star'],
    ['heuristic status 404 without directives', 'GET', {}, 404, [], undefined],
    ['200 without directives is heuristically cacheable', 'GET', {}, 200, [], undefined],
    ['302 without directives', 'GET', {}, 302, [], 'no-freshness'],
    // One client's cookie: not stored where only a heuristic or a validator would keep it.
    ['Set-Cookie with a Last-Modified only (heuristic)', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['last-modified', httpDate(T0 - 86_400_000)]], 'set-cookie'],
    ['Set-Cookie with an ETag only (stored to be revalidated)', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with max-age', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'max-age=60']], undefined],
    ['Set-Cookie with public (and a heuristic lifetime)', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'public'], ['date', httpDate(T0)], ['last-modified', httpDate(T0 - 86_400_000)]], undefined],
    // Explicit, but only to be revalidated: after a 304, the first client's cookie would go to the next.
    ['Set-Cookie with public and no lifetime', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'public'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with max-age=0', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'max-age=0'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with s-maxage=0', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 's-maxage=0, max-age=60'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with no-cache and max-age', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'no-cache, max-age=60'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with no-cache="set-cookie" and max-age', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['cache-control', 'no-cache="set-cookie", max-age=60'], ['etag', '"a"']], 'set-cookie'],
    ['Set-Cookie with an Expires in the past', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['expires', httpDate(T0 - 60_000)], ['date', httpDate(T0)], ['etag', '"a"']], 'set-cookie'],
    // A request with a Cookie may get a page made for that client (web cache deception: /account/x.css
    // answered with the account page, no Cache-Control): not stored on a heuristic or a validator alone.
    ['Cookie in the request, a Last-Modified only (heuristic)', 'GET', { cookie: 'sid=1' }, 200, [['last-modified', httpDate(T0 - 86_400_000)]], 'cookie'],
    ['Cookie in the request, an ETag only', 'GET', { cookie: 'sid=1' }, 200, [['etag', '"a"']], 'cookie'],
    ['Cookie in the request, a heuristic 404', 'GET', { cookie: 'sid=1' }, 404, [], 'cookie'],
    ['Cookie in the request, max-age', 'GET', { cookie: 'sid=1' }, 200, [['cache-control', 'max-age=60']], undefined],
    ['Cookie in the request, public with a lifetime', 'GET', { cookie: 'sid=1' }, 200, [['cache-control', 'public, max-age=60']], undefined],
    ['Cookie in the request, Expires', 'GET', { cookie: 'sid=1' }, 200, [['expires', httpDate(T0 + 60_000)]], undefined],
    // Kept only to revalidate, it would be served stale-if-error to anyone (second opinion, eighteenth round).
    ['Cookie in the request, max-age=0', 'GET', { cookie: 'sid=1' }, 200, [['cache-control', 'max-age=0'], ['etag', '"a"']], 'cookie'],
    ['Cookie in the request, no-cache and max-age', 'GET', { cookie: 'sid=1' }, 200, [['cache-control', 'no-cache, max-age=60']], 'cookie'],
    ['Cookie in the request, an Expires in the past', 'GET', { cookie: 'sid=1' }, 200, [['expires', httpDate(T0 - 60_000)], ['date', httpDate(T0)], ['etag', '"a"']], 'cookie'],
    ['Cookie in the request, public and no lifetime', 'GET', { cookie: 'sid=1' }, 200, [['cache-control', 'public'], ['etag', '"a"']], 'cookie'],
    ['max-age=0 without Set-Cookie is stored (to be revalidated)', 'GET', {}, 200, [['cache-control', 'max-age=0'], ['etag', '"a"']], undefined],
    ['Set-Cookie with Expires', 'GET', {}, 200, [['set-cookie', 'sid=1'], ['expires', httpDate(T0 + 60_000)]], undefined],
    ['302 with max-age', 'GET', {}, 302, [['cache-control', 'max-age=60']], undefined],
    ['500 with Expires', 'GET', {}, 500, [['expires', httpDate(T0 + 60_000)]], undefined],
    // About one client's request, not the resource: never everyone's answer (cache-poisoned DoS).
    ['400 with max-age', 'GET', {}, 400, [['cache-control', 'public, max-age=60']], 'status'],
    ['413 with max-age', 'GET', {}, 413, [['cache-control', 'max-age=60']], 'status'],
    ['431 with s-maxage', 'GET', {}, 431, [['cache-control', 's-maxage=60']], 'status'],
    // RFC 6585: one client's rate limit (429) or a captive portal's 511 MUST NOT be stored; 428 SHOULD NOT.
    ['429 with max-age', 'GET', {}, 429, [['cache-control', 'max-age=60']], 'status'],
    ['511 with max-age', 'GET', {}, 511, [['cache-control', 'max-age=60']], 'status'],
    ['428 with public', 'GET', {}, 428, [['cache-control', 'public, max-age=60']], 'status'],
    ['411 with Expires', 'GET', {}, 411, [['expires', httpDate(T0 + 60_000)]], 'status'],
    // One client's precondition (If-Match, If-Unmodified-Since) or Range, answered by the origin.
    ['412 with max-age', 'GET', { 'if-match': '"x"' }, 412, [['cache-control', 'max-age=60']], 'status'],
    ['416 with public', 'GET', { range: 'bytes=50-60' }, 416, [['cache-control', 'public, max-age=60'], ['content-range', 'bytes */10']], 'status'],
    ['400 with must-understand', 'GET', {}, 400, [['cache-control', 'must-understand, no-store, max-age=60']], 'status'],
    ['404 with max-age is still stored', 'GET', {}, 404, [['cache-control', 'max-age=60']], undefined],
    // Past 599 is no HTTP status (RFC 9110 §15), whatever its freshness: passed on, never stored.
    ['600 with max-age', 'GET', {}, 600, [['cache-control', 'max-age=60']], 'status'],
    ['999 with public', 'GET', {}, 999, [['cache-control', 'public, max-age=60']], 'status'],
    ['599 with max-age is stored (a 5xx)', 'GET', {}, 599, [['cache-control', 'max-age=60']], undefined],
    ['206 never', 'GET', {}, 206, [['cache-control', 'max-age=60']], 'status'],
    ['304 never', 'GET', {}, 304, [['cache-control', 'max-age=60']], 'status'],
    ['must-understand overrides no-store for a known status', 'GET', {}, 200, [['cache-control', 'must-understand, no-store, max-age=60']], undefined],
    ['must-understand with an unknown status', 'GET', {}, 299, [['cache-control', 'must-understand, no-store, max-age=60']], 'status'],
    ['CDN-Cache-Control private wins over Cache-Control', 'GET', {}, 200, [['cache-control', 'max-age=60'], ['cdn-cache-control', 'private']], 'private'],
    ['CDN-Cache-Control max-age overrides Cache-Control no-store', 'GET', {}, 200, [['cache-control', 'no-store'], ['cdn-cache-control', 'max-age=60']], undefined],
    ['an invalid CDN-Cache-Control is ignored (not a Structured Field)', 'GET', {}, 200, [['cache-control', 'no-store'], ['cdn-cache-control', 'max-age=60, &&&']], 'no-store'],
    ['an invalid CDN-Cache-Control is ignored (a string max-age)', 'GET', {}, 200, [['cache-control', 'no-store'], ['cdn-cache-control', 'max-age="60"']], 'no-store'],
  ]
  test.each(cases)('%s', (_name, method, reqHeaders, status, headers, want) => {
    const r = req(reqHeaders)
    const rd = responseDirectives(headers)
    expect(whyNotStorable(method, r, requestDirectives(r), status, headers, rd, freshnessLifetimeMs(status, headers, rd, T0))).toBe(want as never)
  })
})

describe('freshness lifetime (§4.2.1, §4.2.2)', () => {
  const date: [string, string] = ['date', httpDate(T0)]
  const cases: [string, number, H, number][] = [
    ['s-maxage wins over max-age', 200, [['cache-control', 'max-age=10, s-maxage=20']], 20_000],
    ['max-age', 200, [['cache-control', 'max-age=10'], ['expires', httpDate(T0 + 99_000)], date], 10_000],
    ['Expires - Date', 200, [['expires', httpDate(T0 + 30_000)], date], 30_000],
    ['Expires in the past', 200, [['expires', httpDate(T0 - 30_000)], date], 0],
    ['invalid Expires is already expired', 200, [['expires', '0'], date, ['last-modified', httpDate(T0 - 1e9)]], 0],
    ['two different max-age values: stale', 200, [['cache-control', 'max-age=10, max-age=20']], 0],
    ['invalid max-age: stale', 200, [['cache-control', 'max-age=ten']], 0],
    ['heuristic: 10% since Last-Modified', 200, [date, ['last-modified', httpDate(T0 - 100_000)]], 10_000],
    ['heuristic capped at a day', 200, [date, ['last-modified', httpDate(T0 - 100 * 86400_000)]], 86400_000],
    ['no heuristic for 302', 302, [date, ['last-modified', httpDate(T0 - 100_000)]], 0],
    ['public allows heuristic for 302', 302, [['cache-control', 'public'], date, ['last-modified', httpDate(T0 - 100_000)]], 10_000],
    ['no Last-Modified: no heuristic', 200, [date], 0],
    ['CDN-Cache-Control max-age, Cache-Control ignored', 200, [['cache-control', 'max-age=5'], ['cdn-cache-control', 'max-age=50']], 50_000],
    ['CDN-Cache-Control ignores Expires', 200, [['cdn-cache-control', 'public'], ['expires', httpDate(T0 + 30_000)], date], 0],
  ]
  test.each(cases)('%s', (_name, status, headers, want) => {
    expect(freshnessLifetimeMs(status, headers, responseDirectives(headers), T0)).toBe(want)
  })
})

describe('age (§4.2.3), in milliseconds', () => {
  const cases: [string, H, number, number, number, number][] = [
    // name, headers, requestTime, responseTime, now, want
    ['resident time only', [['date', httpDate(T0)]], T0, T0, T0 + 2500, 2500],
    ['response delay counts', [['date', httpDate(T0)]], T0, T0 + 300, T0 + 300, 300],
    ['Age header plus delay', [['age', '10'], ['date', httpDate(T0)]], T0, T0 + 100, T0 + 100, 10_100],
    ['arriving late in the Date second does not age it', [['date', httpDate(T0)]], T0 + 950, T0 + 950, T0 + 950, 0],
    ['apparent age from a Date 5 s old', [['date', httpDate(T0 - 5000)]], T0, T0, T0 + 1000, 5000 - 999 + 1000],
    ['no Date', [], T0, T0 + 20, T0 + 1020, 1020],
    ['invalid Age ignored', [['age', 'x']], T0, T0, T0 + 1, 1],
    ['negative Age ignored', [['age', '-7200']], T0, T0, T0 + 1, 1],
    ['float Age ignored', [['age', '7200.0']], T0, T0, T0 + 1, 1],
    ['the first of several Age values', [['age', '7200, 0']], T0, T0, T0, 7_200_000],
    ['the first Age line', [['age', '0'], ['age', '7200']], T0, T0, T0, 0],
    ['Age beyond 2^31 is 2^31', [['age', '2147483649']], T0, T0, T0, 2147483648_000],
  ]
  test.each(cases)('%s', (_n, headers, reqT, resT, now, want) => {
    expect(currentAgeMs(headers, { requestTimeMs: reqT, responseTimeMs: resT, responseWallMs: resT }, now)).toBe(want)
  })

  test('max-age=2 is fresh 1.5 s and stale 2.5 s after it was stored, whatever millisecond of its second it arrived in', () => {
    for (const offsetMs of [0, 1, 499, 500, 998, 999]) {
      const stored = T0 + offsetMs
      const headers: H = [['date', httpDate(stored)], ['cache-control', 'max-age=2']]
      const entry = view(headers, stored)
      expect(evaluateReuse(entry, requestDirectives(req()), stored + 1500).reuse).toBe('fresh')
      expect(evaluateReuse(entry, requestDirectives(req()), stored + 2500).reuse).toBe('revalidate')
    }
  })
})

function view(headers: H, storedAt: number, status = 200): StoredView {
  const rd = responseDirectives(headers)
  return { status, headers, rd, requestTimeMs: storedAt, responseTimeMs: storedAt, responseWallMs: storedAt, lifetimeMs: freshnessLifetimeMs(status, headers, rd, storedAt) }
}

describe('reuse of a stored response (§4.2.4, §5.2.1, RFC 5861)', () => {
  const cases: [string, string, Record<string, string>, number, string][] = [
    // name, response Cache-Control, request headers, seconds after storing, verdict
    ['fresh', 'max-age=60', {}, 10, 'fresh'],
    ['stale', 'max-age=60', {}, 61, 'revalidate'],
    ['response no-cache', 'max-age=60, no-cache', {}, 1, 'revalidate'],
    ['request no-cache', 'max-age=60', { 'cache-control': 'no-cache' }, 1, 'revalidate-request'],
    ['Pragma: no-cache without Cache-Control', 'max-age=60', { pragma: 'no-cache' }, 1, 'revalidate-request'],
    ['Pragma ignored when Cache-Control is present', 'max-age=60', { pragma: 'no-cache', 'cache-control': 'max-stale=0' }, 1, 'fresh'],
    ['request max-age exceeded', 'max-age=60', { 'cache-control': 'max-age=5' }, 10, 'revalidate-request'],
    ['request max-age met', 'max-age=60', { 'cache-control': 'max-age=15' }, 10, 'fresh'],
    ['request max-age=0', 'max-age=60', { 'cache-control': 'max-age=0' }, 1, 'revalidate-request'],
    ['min-fresh not met', 'max-age=60', { 'cache-control': 'min-fresh=55' }, 10, 'revalidate-request'],
    ['min-fresh met', 'max-age=60', { 'cache-control': 'min-fresh=30' }, 10, 'fresh'],
    ['max-stale with a bound, within', 'max-age=60', { 'cache-control': 'max-stale=10' }, 65, 'stale-ok'],
    ['max-stale with a bound, beyond', 'max-age=60', { 'cache-control': 'max-stale=10' }, 75, 'revalidate'],
    ['max-stale without a bound', 'max-age=60', { 'cache-control': 'max-stale' }, 9999, 'stale-ok'],
    ['max-stale vs must-revalidate', 'max-age=60, must-revalidate', { 'cache-control': 'max-stale' }, 65, 'revalidate'],
    ['max-stale vs proxy-revalidate', 'max-age=60, proxy-revalidate', { 'cache-control': 'max-stale' }, 65, 'revalidate'],
    ['max-stale vs s-maxage (implies proxy-revalidate)', 's-maxage=60', { 'cache-control': 'max-stale' }, 65, 'revalidate'],
    ['stale-while-revalidate, within', 'max-age=60, stale-while-revalidate=30', {}, 80, 'stale-while-revalidate'],
    ['stale-while-revalidate, beyond', 'max-age=60, stale-while-revalidate=30', {}, 91, 'revalidate'],
    ['stale-while-revalidate vs must-revalidate', 'max-age=60, stale-while-revalidate=30, must-revalidate', {}, 80, 'revalidate'],
    ['stale-while-revalidate vs request max-age', 'max-age=60, stale-while-revalidate=30', { 'cache-control': 'max-age=100' }, 80, 'revalidate'],
  ]
  test.each(cases)('%s', (_n, cc, reqHeaders, afterS, want) => {
    const entry = view([['cache-control', cc], ['date', httpDate(T0)]], T0)
    expect(evaluateReuse(entry, requestDirectives(req(reqHeaders)), T0 + afterS * 1000).reuse).toBe(want as never)
  })

  const sie: [string, string, Record<string, string>, number, number, boolean][] = [
    // name, response Cache-Control, request headers, seconds after storing, configured default ms, allowed
    ['response stale-if-error, within', 'max-age=10, stale-if-error=60', {}, 30, 0, true],
    ['response stale-if-error, beyond', 'max-age=10, stale-if-error=60', {}, 71, 0, false],
    ['none anywhere', 'max-age=10', {}, 11, 0, false],
    ['configured default', 'max-age=10', {}, 30, 60_000, true],
    ['the response value wins over the default', 'max-age=10, stale-if-error=5', {}, 30, 60_000, false],
    ['request stale-if-error', 'max-age=10', { 'cache-control': 'stale-if-error=60' }, 30, 0, true],
    ['must-revalidate forbids it', 'max-age=10, stale-if-error=60, must-revalidate', {}, 30, 60_000, false],
    ['no-cache forbids it', 'max-age=10, stale-if-error=60, no-cache', {}, 30, 60_000, false],
  ]
  test.each(sie)('stale-if-error: %s', (_n, cc, reqHeaders, afterS, defMs, want) => {
    const entry = view([['cache-control', cc], ['date', httpDate(T0)]], T0)
    expect(staleIfErrorAllows(entry, requestDirectives(req(reqHeaders)), T0 + afterS * 1000, defMs)).toBe(want)
  })
})

describe('CDN-Cache-Control as a Structured Field Dictionary (RFC 9213, RFC 8941)', () => {
  test.each([
    ['max-age=60', { 'max-age': '60' }],
    ['max-age=60, private', { 'max-age': '60', private: true }],
    ['no-store;foo=1, max-age=0', { 'no-store': true, 'max-age': '0' }],
    ['private=?0, max-age=5', { 'max-age': '5' }],
    ['x-ext="a b", max-age=5', { 'x-ext': '"a b"', 'max-age': '5' }],
    ['private="set-cookie"', undefined], // a known directive with the wrong type
    ['MaX-AgE=5', undefined],
    ['max-age = 5', undefined],
    ['max-age=-5', undefined],
    ['max-age=5,', undefined],
    ['', undefined],
  ] as [string, Record<string, string | true> | undefined][])('%p', (raw, want) => {
    const d = parseTargetedDirectives(raw)
    expect(d === undefined ? undefined : Object.fromEntries(d)).toEqual(want)
  })
})
