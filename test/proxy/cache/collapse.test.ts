/**
 * Collapsed forwarding's bound, without sockets: a leader that never reports its answer (lost to
 * a bug, or slower than the collapse wait) makes requests wait at most once for the collapse
 * wait; after that the key's flight is dropped and the next request leads anew, as nginx's
 * proxy_cache_lock_age lets one more request through.
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import type { ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const KEY = 'http://example.com/a'

function setup() {
  const clock = { t: T0 }
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, nowMs: () => clock.t })
  return { clock, cache }
}

function request(): ProxyRequest {
  return { method: 'GET', target: '/a', headers: new Headers({ host: 'example.com' }), body: null }
}

function lookup(cache: EdgeCache, maxWaitMs: number): CacheExchange | Promise<CacheExchange> {
  return cache.lookup(request(), { key: KEY, enabled: true, requestId: 'rid', client: { ip: '127.0.0.1', tls: false }, maxWaitMs })
}

describe('collapsed forwarding: a lost leader', () => {
  test('past the collapse wait, the flight is dropped: a new request does not wait and leads', async () => {
    const { clock, cache } = setup()
    const lost = lookup(cache, 5000)
    expect(lost instanceof Promise).toBe(false)
    expect(cache.status().in_flight).toBe(1)
    clock.t += 5000
    const next = lookup(cache, 5000)
    expect(next instanceof Promise).toBe(false)
    const x = next as CacheExchange
    expect(x.hit).toBeUndefined()
    expect(x.flight).toBeDefined()
    // It leads: its answer is stored and shared as usual.
    const r = await x.onReply({ status: 200, statusText: 'OK', headers: [['cache-control', 'max-age=60'], ['date', new Date(T0).toUTCString()]], body: 'hello' })
    expect(await replyText(r)).toBe('hello')
    expect((await lookup(cache, 5000)).result).toBe('hit')
    cache.close()
  })

  test('a waiter that gives up drops the flight, so later requests do not wait for it again', async () => {
    const { cache } = setup()
    lookup(cache, 20)
    const waiter = await lookup(cache, 20)
    // It went upstream itself, leading a new flight.
    expect(waiter.hit).toBeUndefined()
    expect(waiter.flight).toBeDefined()
    expect(cache.status().in_flight).toBe(1)
    waiter.onError()
    expect(cache.status().in_flight).toBe(0)
    expect(lookup(cache, 20) instanceof Promise).toBe(false)
    cache.close()
  })
})
