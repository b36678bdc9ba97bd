/**
 * IPv6 and dual-stack behaviour with real clients on loopback (::1, 127.0.0.1): the client's
 * address as forwarded and logged on a [::] listener, route hosts that are IPv6 literals, and
 * IPv6 addresses in error messages (in brackets where a port follows, RFC 3986 §3.2.2).
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness, rawExchange } from '../support/harness.ts'

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

describe('routes by an IPv6 literal host', () => {
  test('host = "[::1]" (or "::1", "[0:0::1]") matches Host [::1]:PORT and [0:0::1]; other hosts get the default', async () => {
    const a = h.origin({ fetch: () => new Response('a') }).port!
    const b = h.origin({ fetch: () => new Response('b') }).port!
    for (const routeHost of ['[::1]', '::1', '[0:0::1]']) {
      const text = `[server]\nlisten = "[::1]:0"\ndefault_upstream = "a"\n[admin]\nlisten = "off"\n[upstream.a]\nurl = "http://127.0.0.1:${a}"\n[upstream.b]\nurl = "http://127.0.0.1:${b}"\n[[route]]\nhost = "${routeHost}"\nupstream = "b"\n`
      const config = resolveConfig(parseConfigText(text, 'v6.toml'))
      expect(config.routes[0]!.host).toBe('[::1]')
      const proxy = new ProxyServer(config, { sourceFor: (u) => staticSource([{ address: u.host, family: 4 }]) }).start()
      h.track(() => proxy.close())
      const port = Number(new URL(proxy.url).port)
      const body = async (host: string) => (await rawGet(port, host)).split('\r\n\r\n')[1]
      expect(await body(`[::1]:${port}`)).toBe('b')
      expect(await body('[::1]')).toBe('b')
      expect(await body(`[0:0::1]:${port}`)).toBe('b')
      expect(await body(`[::2]:${port}`)).toBe('a')
      expect(await body(`localhost:${port}`)).toBe('a')
    }
  })
})

/** One GET with this Host (and `fields`) over a raw connection to [::1]:port; all it gets until the proxy closes. */
function rawGet(port: number, host: string, fields = 'Connection: close\r\n'): Promise<string> {
  return rawExchange(port, `GET / HTTP/1.1\r\nHost: ${host}\r\n${fields}\r\n`, '::1', (close) => h.track(close))
}

describe('IPv6 addresses in error messages', () => {
  test('a tunnel whose IPv6 upstream refuses: the log names it as [::1]:PORT, the client gets the reason only', async () => {
    const gone = Bun.listen({ hostname: '::1', port: 0, socket: { data() {} } })
    const dead = gone.port
    gone.stop(true)
    const { url } = h.proxy({ upstream: { url: `http://[::1]:${dead}`, retries: '0' }, server: { listen: '[::1]:0' } })
    const port = Number(new URL(url).port)
    const reply = await rawGet(port, `[::1]:${port}`, 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n')
    expect(reply).toStartWith('HTTP/1.1 502 ')
    expect(reply).toContain('\r\n\r\n502 upstream refused the connection (request id ')
    expect(reply).not.toContain(String(dead))
    expect(h.records.at(-1)).toMatchObject({ status: 502, error: 'CONNECT_REFUSED', upstream_addr: `[::1]:${dead}` })
  })
})
