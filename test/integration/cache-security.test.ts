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
