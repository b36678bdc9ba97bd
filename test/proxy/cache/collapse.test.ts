/**
 * Collapsed forwarding's bound, without sockets: a leader that never reports its answer (lost to
 * a bug, or slower than the collapse wait) makes requests wait at most once for the collapse
 * wait; after that the key's flight is dropped and the next request leads anew, as nginx's
 * proxy_cache_lock_age lets one more request through. And a leader that fails hands the lead to
 * one waiter, while one whose answer can never be shared releases them all.
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import type { ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const KEY = 'http://example.com/a'

function setup() {
  const clock = { t: T0 }
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, clocks: { monoMs: () => clock.t, wallMs: () => clock.t } })
  return { clock, cache }
}

function request(): ProxyRequest {
  return { method: 'GET', target: '/a', headers: new Headers({ host: 'example.com' }), body: null }
}

function lookup(cache: EdgeCache, maxWaitMs: number, left?: () => boolean): CacheExchange | Promise<CacheExchange> {
  const state = left && {
    get left() {
      return left()
    },
    hostSent: undefined,
  }
  return cache.lookup(request(), { key: KEY, enabled: true, requestId: 'rid', client: { ip: '127.0.0.1', tls: false }, maxWaitMs, state })
}

/** Lets every pending promise callback run (the waiters' looks after a settle are a few hops). */
async function turns(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

const FRESH: [string, string][] = [['cache-control', 'max-age=60'], ['date', new Date(T0).toUTCString()]]

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

describe('collapsed forwarding: a leader without an answer to share', () => {
  /** A leader and three waiters, in that order; `done` lists the waiters whose lookup has ended. */
  function herd(cache: EdgeCache, left: boolean[] = []) {
    const leader = lookup(cache, 60_000) as CacheExchange
    const done: CacheExchange[] = []
    const waiters = [0, 1, 2].map((i) => (lookup(cache, 60_000, () => left[i] === true) as Promise<CacheExchange>).then((x) => (done.push(x), x)))
    return { leader, waiters, done }
  }

  for (const how of ['an upstream failure', 'a 502 answer']) {
    test(`${how}: exactly one waiter leads next, the others wait for it and share its answer`, async () => {
      const { cache } = setup()
      const { leader, waiters, done } = herd(cache)
      expect(cache.status().waiting).toBe(3)
      if (how === 'a 502 answer') await replyText(await leader.onReply({ status: 502, statusText: 'Bad Gateway', headers: [], body: 'down' }))
      else expect(leader.onError()).toBeUndefined()
      await turns()
      expect(done.length).toBe(1)
      const next = done[0]!
      expect([next.hit, next.flight !== undefined]).toEqual([undefined, true])
      expect(cache.status()).toMatchObject({ in_flight: 1, waiting: 2 })
      expect(await replyText(await next.onReply({ status: 200, statusText: 'OK', headers: FRESH, body: 'hello' }))).toBe('hello')
      const rest = await Promise.all(waiters.slice(1))
      expect(rest.map((x) => x.result)).toEqual(['collapsed', 'collapsed'])
      expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
      cache.close()
    })
  }

  test('the lead goes on failing: each waiter in turn, one at a time', async () => {
    const { cache } = setup()
    const { leader, done } = herd(cache)
    let current = leader
    for (let i = 0; i < 3; i++) {
      current.onError()
      await turns()
      expect(done.length).toBe(i + 1)
      current = done[i]!
      expect(current.flight).toBeDefined()
      expect(cache.status().waiting).toBe(2 - i)
    }
    current.onError()
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
    cache.close()
  })

  test('a waiter whose client has left does not lead: it goes on alone, and the next waiter leads', async () => {
    const { cache } = setup()
    const { leader, done } = herd(cache, [true])
    leader.onError()
    await turns()
    expect(done.length).toBe(2)
    expect(done[0]!.flight).toBeUndefined()
    expect(done[1]!.flight).toBeDefined()
    expect(cache.status().waiting).toBe(1)
    done[1]!.onError()
    await turns()
    done[2]!.onError()
    cache.close()
  })

  test('an answer that can never be shared (private): every waiter goes upstream itself, and later requests do not wait', async () => {
    const { cache } = setup()
    const { leader, waiters } = herd(cache)
    await replyText(await leader.onReply({ status: 200, statusText: 'OK', headers: [['cache-control', 'private']], body: 'mine' }))
    const all = await Promise.all(waiters)
    expect(all.map((x) => [x.hit, x.flight])).toEqual(Array(3).fill([undefined, undefined]))
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
    const later = lookup(cache, 60_000)
    expect(later instanceof Promise).toBe(false)
    expect((later as CacheExchange).flight).toBeUndefined()
    cache.close()
  })
})

describe('collapsed forwarding: answers that vary (outside sweep, twentieth session)', () => {
  function lookupWith(cache: EdgeCache, cookie: string): CacheExchange | Promise<CacheExchange> {
    const req: ProxyRequest = { method: 'GET', target: '/a', headers: new Headers({ host: 'example.com', cookie }), body: null }
    return cache.lookup(req, { key: KEY, enabled: true, requestId: 'rid', client: { ip: '127.0.0.1', tls: false }, maxWaitMs: 60_000 })
  }
  const VARIES: [string, string][] = [...FRESH, ['vary', 'Cookie']]

  test('once the answer says Vary, waiters for other variants each go upstream at once (they queued one behind another); one for the same variant shares it', async () => {
    const { cache } = setup()
    const leader = lookupWith(cache, 'u=a') as CacheExchange
    const done: CacheExchange[] = []
    const waiters = ['u=b', 'u=c', 'u=d', 'u=a'].map((c) => (lookupWith(cache, c) as Promise<CacheExchange>).then((x) => (done.push(x), x)))
    expect(cache.status().waiting).toBe(4)
    expect(await replyText(await leader.onReply({ status: 200, statusText: 'OK', headers: VARIES, body: 'for a' }))).toBe('for a')
    await turns()
    // Before: only u=b led next, and u=c and u=d waited for it (and then u=d for u=c).
    expect(done.length).toBe(4)
    const [b, c, d, a] = (await Promise.all(waiters)) as [CacheExchange, CacheExchange, CacheExchange, CacheExchange]
    expect([b, c, d].map((x) => [x.hit, x.flight !== undefined])).toEqual(Array(3).fill([undefined, true]))
    expect(a.result).toBe('collapsed')
    expect(cache.status()).toMatchObject({ in_flight: 3, waiting: 0 })
    // A later request for a variant being fetched waits for that one, and gets its answer.
    const b2 = lookupWith(cache, 'u=b')
    expect(b2 instanceof Promise).toBe(true)
    expect(cache.status().waiting).toBe(1)
    expect(await replyText(await b.onReply({ status: 200, statusText: 'OK', headers: VARIES, body: 'for b' }))).toBe('for b')
    const b2x = await b2
    expect(b2x.result).toBe('collapsed')
    expect(await replyText(b2x.hit!)).toBe("for b")
    c.onError()
    d.onError()
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
    cache.close()
  })
})

describe('keys that stopped collapsing are bounded in bytes', () => {
  test('10,000 keys of 15 KB (a client\'s long targets answered no-store) hold at most 4 MiB, not 150 MB', () => {
    const { cache } = setup()
    const long = 'x'.repeat(15_000)
    let most = 0
    for (let i = 0; i < 10_000; i++) {
      cache.markUncollapsible(`http://example.com/${i}?${long}`)
      most = Math.max(most, cache.uncollapsibleBytes)
    }
    expect(most).toBeLessThanOrEqual(4 * 1024 * 1024)
    expect(most).toBeGreaterThan(3 * 1024 * 1024) // it fills to near the bound before starting again
  })
  test('a key marked twice is charged once; one whose mark ran out is let go', async () => {
    const { clock, cache } = setup()
    cache.markUncollapsible(KEY)
    cache.markUncollapsible(KEY)
    expect(cache.uncollapsibleBytes).toBe(KEY.length + 64)
    clock.t += 6000
    await lookup(cache, 0)
    expect(cache.uncollapsibleBytes).toBe(0)
  })
})
