/**
 * The cache's two clocks, without sockets: ages, residence and collapse deadlines run on the
 * monotonic clock, dates on the wall clock, so a step of the wall clock (NTP, an operator, a VM
 * resumed) neither keeps a stale response fresh, nor makes a fresh one stale, nor scatters a
 * herd that waits for one upstream answer (an outside review, twenty-second round).
 */
import { describe, expect, test } from 'bun:test'
import { EdgeCache, type CacheExchange } from '../../../src/proxy/cache/cache.ts'
import type { ProxyRequest } from '../../../src/proxy/message.ts'
import { replyText } from '../../support/reply.ts'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const HOUR_MS = 3_600_000

function setup() {
  const clock = { mono: 1_000, wall: T0 }
  const cache = new EdgeCache({ maxBytes: 1 << 20, maxObjectBytes: 1 << 16, staleIfErrorMs: 0, clocks: { monoMs: () => clock.mono, wallMs: () => clock.wall } })
  /** `ms` pass: both clocks move. */
  const pass = (ms: number) => {
    clock.mono += ms
    clock.wall += ms
  }
  return { clock, cache, pass }
}

function lookup(cache: EdgeCache, path = '/a'): CacheExchange | Promise<CacheExchange> {
  const req: ProxyRequest = { method: 'GET', target: path, headers: new Headers({ host: 'example.com' }), body: null }
  return cache.lookup(req, { key: `http://example.com${path}`, enabled: true, requestId: 'rid', client: { ip: '127.0.0.1', tls: false }, maxWaitMs: 5000 })
}

async function store(cache: EdgeCache, wallMs: number, cacheControl: string): Promise<void> {
  const x = await lookup(cache)
  expect(x.hit).toBeUndefined()
  const headers: [string, string][] = [['cache-control', cacheControl], ['date', new Date(wallMs).toUTCString()]]
  expect(await replyText(await x.onReply({ status: 200, statusText: 'OK', headers, body: 'hello' }))).toBe('hello')
}

const ageOf = (x: CacheExchange) => x.hit!.headers.find(([n]) => n === 'age')?.[1]

describe('freshness across a wall-clock step', () => {
  test('stepped back an hour: a max-age=5 response is stale once 6 s have passed, not an hour later', async () => {
    const { clock, cache, pass } = setup()
    await store(cache, clock.wall, 'max-age=5')
    expect((await lookup(cache)).result).toBe('hit')
    clock.wall -= HOUR_MS
    pass(6_000)
    const x = await lookup(cache)
    expect(x.result).not.toBe('hit')
    expect(x.hit).toBeUndefined()
    cache.close()
  })

  test('stepped forward an hour: a max-age=600 response 1 s old is still a hit, with Age 1', async () => {
    const { clock, cache, pass } = setup()
    await store(cache, clock.wall, 'max-age=600')
    clock.wall += HOUR_MS
    pass(1_000)
    const x = await lookup(cache)
    expect(x.result).toBe('hit')
    expect(ageOf(x)).toBe('1')
    cache.close()
  })

  test('a step while the response is on its way does not count as response_delay: it is stored and a hit next', async () => {
    const { clock, cache, pass } = setup()
    const x = (await lookup(cache)) as CacheExchange
    pass(2_000)
    clock.wall += HOUR_MS
    // No Date from the origin: the cache adds the time it arrived (the wall clock's).
    await replyText(await x.onReply({ status: 200, statusText: 'OK', headers: [['cache-control', 'max-age=600']], body: 'hello' }))
    const hit = await lookup(cache)
    expect(hit.result).toBe('hit')
    expect(ageOf(hit)).toBe('2')
    cache.close()
  })

  test('the Date an origin sends is still compared with the wall clock: an hour behind, a max-age=60 answer arrives stale (apparent_age, RFC 9111 §4.2.3)', async () => {
    const { clock, cache } = setup()
    await store(cache, clock.wall - HOUR_MS, 'max-age=60')
    expect((await lookup(cache)).hit).toBeUndefined()
    cache.close()
  })
})

describe('collapsed forwarding across a wall-clock step', () => {
  test('stepped forward an hour while the leader is out: the next requests still wait for it, and share its answer', async () => {
    const { clock, cache, pass } = setup()
    const leader = lookup(cache) as CacheExchange
    expect(leader instanceof Promise).toBe(false)
    clock.wall += HOUR_MS
    pass(500)
    const waiters = [0, 1, 2, 3].map(() => lookup(cache))
    expect(waiters.every((w) => w instanceof Promise)).toBe(true)
    expect(cache.status()).toMatchObject({ in_flight: 1, waiting: 4 })
    await replyText(await leader.onReply({ status: 200, statusText: 'OK', headers: [['cache-control', 'max-age=60']], body: 'hello' }))
    expect((await Promise.all(waiters)).map((x) => x.result)).toEqual(['collapsed', 'collapsed', 'collapsed', 'collapsed'])
    cache.close()
  })

  test('stepped back an hour after a private answer: the key collapses again once its 5 s are over', async () => {
    const { clock, cache, pass } = setup()
    const first = lookup(cache) as CacheExchange
    await replyText(await first.onReply({ status: 200, statusText: 'OK', headers: [['cache-control', 'private']], body: 'mine' }))
    clock.wall -= HOUR_MS
    pass(6_000)
    const leader = lookup(cache) as CacheExchange
    expect(leader.flight).toBeDefined()
    const waiter = lookup(cache)
    expect(waiter instanceof Promise).toBe(true)
    leader.onError()
    ;(await waiter).onError()
    cache.close()
  })
})
