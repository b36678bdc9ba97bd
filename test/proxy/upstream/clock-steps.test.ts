/**
 * A step of the wall clock (NTP, an operator, a resumed VM) changes no duration: an ejection
 * lasts its time, the last good addresses stay for stale_grace, re-resolution keeps its interval,
 * and /status shows its times by the wall clock of now. The resolver runs on fake clocks whose
 * wall clock steps alone; the pool on the process's own clocks, with Date stepped (setSystemTime).
 */
import { afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { resolveConfig } from '../../../src/config/resolve.ts'
import { DnsError } from '../../../src/dns/client.ts'
import type { LookupResult } from '../../../src/dns/lookup.ts'
import { RequestFailure } from '../../../src/proxy/errors.ts'
import { staticSource } from '../../../src/proxy/upstream/address-source.ts'
import { UpstreamPool } from '../../../src/proxy/upstream/pool.ts'
import { UpstreamResolver } from '../../../src/proxy/upstream/resolver.ts'
import { FakeClock } from '../../support/fake-clock.ts'

const HOUR_MS = 3_600_000
const U = { host: 'origin.test', family: 'auto' as const, resolveIntervalMs: 30_000, resolveMinTtlMs: 5_000, resolveMaxTtlMs: 300_000, resolveTimeoutMs: 1000, staleGraceMs: 60_000 }
const answer: LookupResult = { addresses: [{ address: '127.0.2.1', family: 4 }], ttlMs: 10_000, source: '127.0.0.1:53' }

/** A resolver whose lookups answer once (TTL 10 s: the next refresh 9 s later) and then as `then` says. */
function setup(then: LookupResult | DnsError) {
  const clock = new FakeClock()
  const t0 = clock.monoMs()
  /** When each lookup started, in monotonic ms since the start. */
  const calls: number[] = []
  const lookup = async () => {
    calls.push(clock.monoMs() - t0)
    if (calls.length === 1) return answer
    if (then instanceof DnsError) throw then
    return then
  }
  const r = new UpstreamResolver(U, { lookup, clock, random: () => 0 })
  return { r, clock, calls, t0 }
}

const addressesOf = (r: UpstreamResolver) => r.snapshot().addresses.map((a) => a.address)

describe('stale_grace during a DNS outage is monotonic', () => {
  test.each([
    ['forward 2 h', 2 * HOUR_MS],
    ['back 1 h', -HOUR_MS],
  ])('wall clock stepped %s: the last good addresses stay for stale_grace, then go', async (_name, stepMs) => {
    const { r, clock, t0 } = setup(new DnsError('SERVFAIL', 'server failure'))
    r.start()
    await clock.advance(0)
    await clock.advance(9_000) // the refresh fails: a stale episode starts at 9 s
    expect(r.snapshot().stale).toBe(true)
    clock.stepWall(stepMs)
    await clock.advance(1_000) // the retry fails too, right after the step
    expect(addressesOf(r)).toEqual(['127.0.2.1'])
    // Retries (12, 16, 24 s, then every 10 s: the TTL caps the back-off) find the grace (60 s from
    // 9 s) running up to the one at 64 s...
    await clock.advance(58_000)
    expect(addressesOf(r)).toEqual(['127.0.2.1'])
    // ...and the one at 74 s finds it over, whichever way the wall clock went.
    await clock.advance(6_000)
    expect(addressesOf(r)).toEqual([])
    // /status shows the episode's start by the wall clock of now (65 s ago), not of then.
    expect((r.status() as { stale_since: string }).stale_since).toBe(new Date(clock.wallMs() - (clock.monoMs() - (t0 + 9_000))).toISOString())
    r.close()
  })
})

describe('re-resolution keeps its interval', () => {
  test('a wall clock stepped back 1 h neither delays the early re-resolve nor hides the next refresh', async () => {
    const { r, clock, calls } = setup(answer)
    r.start()
    await clock.advance(0)
    await clock.advance(1_000)
    clock.stepWall(-HOUR_MS)
    // A connect failure re-resolves now (1 s after the last lookup), not an hour from now.
    r.refreshNow('connect failed')
    await clock.advance(0)
    expect(calls).toEqual([0, 1_000])
    // The next refresh is the TTL's, 9 s after that answer: /status says so, and the rescue after
    // a connect failure (which waits for a refresh due within 10 s) finds it.
    expect(r.status().next_refresh_in_ms).toBe(9_000)
    expect(r.nextRefresh(10_000)).toBeDefined()
    await clock.advance(8_999)
    expect(calls).toHaveLength(2)
    await clock.advance(1)
    expect(calls).toEqual([0, 1_000, 10_000])
    r.close()
  })

  test('a wall clock stepped forward 2 h neither runs the refresh early nor lifts the once-a-second limit', async () => {
    const { r, clock, calls } = setup(answer)
    r.start()
    await clock.advance(0)
    await clock.advance(500)
    clock.stepWall(2 * HOUR_MS)
    // 0.5 s after the last lookup: the early re-resolve waits until 1 s after it.
    r.refreshNow('connect failed')
    await clock.advance(0)
    expect(calls).toEqual([0])
    expect(r.status().next_refresh_in_ms).toBe(500)
    await clock.advance(500)
    expect(calls).toEqual([0, 1_000])
    await clock.advance(9_000)
    expect(calls).toEqual([0, 1_000, 10_000])
    r.close()
  })
})

describe('ejection is monotonic (the pool on the process clocks, Date stepped)', () => {
  const pools: UpstreamPool[] = []
  afterEach(() => {
    setSystemTime()
    for (const p of pools.splice(0)) p.close()
  })

  /** A pool over one address with eject_time 100 ms; its address is ejected now. */
  function ejected() {
    const u = resolveConfig(undefined, { upstream: { url: 'http://origin.test:8080', eject_time: '100ms' }, server: { listen: '127.0.0.1:0' }, admin: { listen: 'off' } }).upstreams.default!
    const pool = new UpstreamPool(u, staticSource([{ address: '127.0.2.1', family: 4 }]), { dial: () => Promise.reject(new Error('no dials here')) }).start()
    pools.push(pool)
    const state = pool.addresses.get('127.0.2.1')!
    pool.reportFailure(state, new RequestFailure('CONNECT_REFUSED', 'connect', 'scripted'))
    expect(pool.takesTraffic(state)).toBe(false)
    return { pool, state }
  }

  test('wall clock stepped back 1 h: the address comes back after its 100 ms, not an hour later', async () => {
    const { pool, state } = ejected()
    setSystemTime(new Date(Date.now() - HOUR_MS))
    await Bun.sleep(150)
    expect(pool.takesTraffic(state)).toBe(true)
    expect(pool.pick()).toBe(state)
  })

  test('wall clock stepped forward 2 h: the address stays out for its 100 ms, then comes back', async () => {
    const { pool, state } = ejected()
    setSystemTime(new Date(Date.now() + 2 * HOUR_MS))
    expect(pool.takesTraffic(state)).toBe(false)
    expect(pool.stats()[0]!.ejected_for_ms).toBeGreaterThan(50)
    await Bun.sleep(150)
    expect(pool.takesTraffic(state)).toBe(true)
  })
})
