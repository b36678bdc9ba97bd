/**
 * IPv6 and dual-stack behaviour with real clients on loopback (::1, 127.0.0.1): the client's
 * address as forwarded and logged on a [::] listener, route hosts that are IPv6 literals, and
 * IPv6 addresses in error messages (in brackets where a port follows, RFC 3986 §3.2.2).
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An origin that answers with the X-Forwarded-For it received. */
function xffOrigin(): number {
  return h.origin({ fetch: (req) => new Response(req.headers.get('x-forwarded-for') ?? '') }).port!
}

describe('a dual-stack [::] listener', () => {
  test('an IPv4 client is 127.0.0.1 in X-Forwarded-For and the access log, not ::ffff:127.0.0.1', async () => {
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${xffOrigin()}` }, server: { listen: '[::]:0' } })
    const port = new URL(url).port
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('127.0.0.1')
    expect(await (await fetch(`http://[::1]:${port}/`)).text()).toBe('::1')
    expect(h.records.map((r) => r.client)).toEqual(['127.0.0.1', '::1'])
  })

  test('trusted_proxies 127.0.0.0/8 trusts an IPv4 peer on [::], whose address is appended as IPv4', async () => {
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${xffOrigin()}` }, server: { listen: '[::]:0', trusted_proxies: ['127.0.0.0/8'] } })
    const port = new URL(url).port
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-forwarded-for': '2001:db8::7' } })
    expect(await res.text()).toBe('2001:db8::7, 127.0.0.1')
  })
})
