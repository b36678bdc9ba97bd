/** The resolver's policy with an injected lookup and a fake clock: no real time passes. */
import { describe, expect, test } from 'bun:test'
import { DnsError } from '../../../src/dns/client.ts'
import type { LookupResult } from '../../../src/dns/lookup.ts'
import type { AddressChange } from '../../../src/proxy/upstream/address-source.ts'
import { JITTER_TTL_SHARE, REFRESH_AT_TTL_SHARE, UpstreamResolver } from '../../../src/proxy/upstream/resolver.ts'
import { FakeClock, flush } from '../../support/fake-clock.ts'

const U = { host: 'origin.test', family: 'auto' as const, resolveIntervalMs: 30_000, resolveMinTtlMs: 5_000, resolveMaxTtlMs: 300_000, resolveTimeoutMs: 1000, staleGraceMs: 60_000 }

function answer(addresses: string[], ttlMs: number | undefined = 60_000): LookupResult {
  return { addresses: addresses.map((address) => ({ address, family: 4 as const })), ttlMs, source: '127.0.0.1:53' }
}

/** A scripted lookup: each call takes the next step (a result or an error), the last step repeats. */
function scripted(steps: (LookupResult | DnsError)[]) {
  const calls: number[] = []
  let i = 0
  const clock = new FakeClock()
  const lookup = async () => {
    calls.push(clock.monoMs())
    const step = steps[Math.min(i++, steps.length - 1)]!
    if (step instanceof DnsError) throw step
    return step
  }
  return { lookup, calls, clock }
}

function setup(steps: (LookupResult | DnsError)[], opts: { random?: () => number; upstream?: Partial<typeof U> } = {}) {
  const { lookup, calls, clock } = scripted(steps)
  const warnings: string[] = []
  const r = new UpstreamResolver({ ...U, ...opts.upstream }, { lookup, clock, random: opts.random ?? (() => 0), log: (level, msg) => level !== 'debug' && level !== 'info' && warnings.push(msg) })
  const changes: AddressChange[] = []
  r.onChange((c) => changes.push(c))
  return { r, calls, clock, warnings, changes }
}

describe('refresh timing', () => {
  test.each([
    [60_000, 0, 60_000 * REFRESH_AT_TTL_SHARE],
    [60_000, 0.999999, 60_000 * (REFRESH_AT_TTL_SHARE - JITTER_TTL_SHARE) + 0.06],
    [1_000, 0, 5_000 * REFRESH_AT_TTL_SHARE], // clamped up to resolve_min_ttl
    [3_600_000, 0, 300_000 * REFRESH_AT_TTL_SHARE], // clamped down to resolve_max_ttl
    [0, 0, 5_000 * REFRESH_AT_TTL_SHARE],
    [undefined, 0.5, 30_000], // no TTL (hosts, literal): resolve_interval, no jitter
  ])('ttl %p, random %p -> next refresh in %p ms', (ttl, rnd, want) => {
    const { r } = setup([], { random: () => rnd })
    expect(r.nextRefreshMs(ttl)).toBeCloseTo(want, 0)
  })

  test('resolve_min_ttl = 0 with a TTL of 0 (dnsmasq hosts, Consul): refreshed once a second, not back to back', () => {
    const { r } = setup([], { upstream: { resolveMinTtlMs: 0 } })
    expect(r.nextRefreshMs(0)).toBe(1000)
    expect(r.nextRefreshMs(500)).toBe(1000)
  })

  test('jitter stays within its bound over many draws', () => {
    let x = 0.123
    const { r } = setup([], { random: () => (x = (x * 9301 + 49297) % 233280 / 233280) })
    for (let i = 0; i < 1000; i++) {
      const ms = r.nextRefreshMs(60_000)
      expect(ms).toBeLessThanOrEqual(60_000 * REFRESH_AT_TTL_SHARE)
      expect(ms).toBeGreaterThanOrEqual(60_000 * (REFRESH_AT_TTL_SHARE - JITTER_TTL_SHARE))
    }
  })

  test('re-resolves ahead of the TTL and picks up changes', async () => {
    const { r, calls, clock, changes } = setup([answer(['127.0.2.1'], 10_000), answer(['127.0.2.2'], 10_000)])
    r.start()
    await clock.advance(0)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.1'])
    await clock.advance(8_999)
    expect(calls).toHaveLength(1)
    await clock.advance(1)
    expect(calls).toHaveLength(2)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.2'])
    expect(changes.at(-1)!.added.map((a) => a.address)).toEqual(['127.0.2.2'])
    expect(changes.at(-1)!.removed.map((a) => a.address)).toEqual(['127.0.2.1'])
    r.close()
  })
})

test('a refresh is never scheduled past a timer\'s longest delay (2^31-1 ms), whatever the TTL and resolve_max_ttl', async () => {
  // A TTL of 2^31-1 s under resolve_max_ttl = 60 days: 0.9 of that is past 24.8 days.
  const { r, clock, calls } = setup([answer(['127.0.2.1'], (2 ** 31 - 1) * 1000)], { upstream: { resolveMaxTtlMs: 60 * 86_400_000 } })
  r.start()
  await clock.advance(0)
  expect(r.status().next_refresh_in_ms).toBeLessThanOrEqual(2 ** 31 - 1)
  expect(r.status().next_refresh_in_ms).toBeGreaterThan(20 * 86_400_000)
  expect(calls).toHaveLength(1)
  r.close()
})

describe('single flight and rate limit', () => {
  test('concurrent refreshes share one lookup', async () => {
    let resolveLookup!: (v: LookupResult) => void
    let count = 0
    const clock = new FakeClock()
    const r = new UpstreamResolver(U, { lookup: () => (count++, new Promise((res) => (resolveLookup = res))), clock })
    const a = r.refresh()
    const b = r.refresh()
    r.refreshNow('connect failed')
    r.refreshNow('connect failed')
    expect(count).toBe(1)
    resolveLookup(answer(['127.0.2.1']))
    await Promise.all([a, b])
    expect(r.snapshot().ready).toBe(true)
    r.close()
  })

  test('a re-resolve asked for during a lookup runs after it: the lookup in flight may answer with the address that failed', async () => {
    const answers = [answer(['127.0.2.1']), answer(['127.0.2.2'])]
    const pending: ((v: LookupResult) => void)[] = []
    const clock = new FakeClock()
    const r = new UpstreamResolver(U, { lookup: () => new Promise((res) => pending.push(res)), clock })
    void r.refresh()
    // A connect failure while that lookup is out (a slow DNS server): the waiters wait for the next one.
    r.refreshNow('connect failed')
    let rescued = false
    void r.nextRefresh(10_000)!.then(() => (rescued = true))
    pending[0]!(answers[0]!)
    await flush()
    expect(rescued).toBe(false)
    await clock.advance(1000) // the once-a-second limit, from the first lookup's start
    expect(pending).toHaveLength(2)
    pending[1]!(answers[1]!)
    await flush()
    expect(rescued).toBe(true)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.2'])
    r.close()
  })

  test('refreshNow runs at most once per second', async () => {
    const { r, calls, clock } = setup([answer(['127.0.2.1'])])
    r.start()
    await clock.advance(0)
    expect(calls).toHaveLength(1)
    for (let i = 0; i < 10; i++) {
      r.refreshNow('x')
      await clock.advance(100)
    }
    // 1 s of time passed with 10 requests: one extra lookup at most (plus the first).
    expect(calls.length).toBeLessThanOrEqual(2)
    await clock.advance(1000)
    r.refreshNow('x')
    await clock.advance(0)
    expect(calls.length).toBeLessThanOrEqual(3)
    r.close()
  })
})

describe('stale episodes', () => {
  test('failures keep the last good set, warn once, end at the next answer', async () => {
    const fail = new DnsError('SERVFAIL', 'server failure')
    const { r, clock, warnings, changes } = setup([answer(['127.0.2.1'], 10_000), fail, fail, fail, answer(['127.0.2.1'], 10_000)])
    r.start()
    await clock.advance(0)
    await clock.advance(9_000) // first failure
    expect(r.snapshot().stale).toBe(true)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.1'])
    expect(r.snapshot().lastError!.code).toBe('SERVFAIL')
    await clock.advance(1_000) // second failure (1 s backoff)
    await clock.advance(2_000) // third (2 s)
    expect(warnings.filter((w) => w.includes('serving the last good'))).toHaveLength(1)
    await clock.advance(4_000) // answer again
    expect(r.snapshot().stale).toBe(false)
    expect(changes).toHaveLength(1) // only the initial set: failures changed nothing
    r.close()
  })

  test.each(['NXDOMAIN', 'NODATA', 'TIMEOUT', 'UNREACHABLE', 'REFUSED'] as const)('%s also keeps the set', async (codeName) => {
    const { r, clock } = setup([answer(['127.0.2.1'], 10_000), new DnsError(codeName, codeName)])
    r.start()
    await clock.advance(0)
    await clock.advance(20_000)
    expect(r.snapshot().addresses).toHaveLength(1)
    expect(r.snapshot().stale).toBe(true)
    r.close()
  })

  test('the retries after a failure are capped by the TTL as resolve_max_ttl clamps it, not by the raw TTL (outside review, fifteenth round: a 60 s TTL under resolve_max_ttl = 2s kept DNS unasked 8-30 s after it was back)', async () => {
    const fail = new DnsError('SERVFAIL', 'x')
    const { r, calls, clock } = setup([answer(['127.0.2.1'], 60_000), fail, fail, fail, fail, fail, fail, answer(['127.0.2.2'], 60_000)], { upstream: { resolveMinTtlMs: 0, resolveMaxTtlMs: 2_000 } })
    r.start()
    await clock.advance(0)
    await clock.advance(1_800) // the first refresh (90 % of the clamped 2 s): SERVFAIL
    expect(calls).toHaveLength(2)
    // Retries at 1 s, then 2 s each (the clamped TTL), not doubling to 4, 8, 16 s.
    await clock.advance(1_000)
    await clock.advance(2_000)
    await clock.advance(2_000)
    await clock.advance(2_000)
    await clock.advance(2_000)
    expect(calls).toHaveLength(7)
    await clock.advance(2_000)
    expect(calls).toHaveLength(8)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.2'])
    r.close()
  })

  test('after stale_grace the addresses are dropped', async () => {
    const { r, clock, changes } = setup([answer(['127.0.2.1'], 10_000), new DnsError('SERVFAIL', 'x')], { upstream: { staleGraceMs: 20_000 } })
    r.start()
    await clock.advance(0)
    await clock.advance(60_000)
    expect(r.snapshot().addresses).toHaveLength(0)
    expect(changes.at(-1)!.removed.map((a) => a.address)).toEqual(['127.0.2.1'])
    r.close()
  })

  test('not ready until the first answer; retries with backoff meanwhile', async () => {
    const down = new DnsError('TIMEOUT', 'no answer')
    const { r, calls, clock } = setup([down, down, down, answer(['127.0.2.3'])])
    r.start()
    await clock.advance(0)
    expect(r.snapshot().ready).toBe(false)
    expect(r.snapshot().lastError!.code).toBe('TIMEOUT')
    await clock.advance(1_000 + 2_000 + 4_000)
    expect(calls).toHaveLength(4)
    expect(r.snapshot().ready).toBe(true)
    expect(r.snapshot().addresses[0]!.address).toBe('127.0.2.3')
    r.close()
  })

  test('one family failing while the other answers keeps the last good set (family auto)', async () => {
    const both: LookupResult = { addresses: [{ address: '127.0.2.1', family: 4 }, { address: '::1', family: 6 }], ttlMs: 10_000, source: '127.0.0.1:53' }
    // The A query times out, the AAAA one answers: the A address must not be dropped.
    const v6Only: LookupResult = { addresses: [{ address: '::1', family: 6 }], ttlMs: 10_000, source: '127.0.0.1:53', failedFamily: { family: 4, error: new DnsError('TIMEOUT', 'no answer') } }
    const { r, clock, warnings, changes } = setup([both, v6Only, v6Only, both])
    r.start()
    await clock.advance(0)
    await clock.advance(9_000)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.1', '::1'])
    expect(r.snapshot().stale).toBe(true)
    expect(r.snapshot().lastError!.code).toBe('TIMEOUT')
    expect(warnings.filter((w) => w.includes('serving the last good'))).toHaveLength(1)
    await clock.advance(1_000 + 2_000)
    expect(r.snapshot().stale).toBe(false)
    expect(changes).toHaveLength(1)
    r.close()
  })

  test('one family failing while the other\'s answer moved: the move is followed, the failing family\'s last good addresses stay (outside review, thirteenth round)', async () => {
    const both: LookupResult = { addresses: [{ address: '127.0.2.5', family: 4 }, { address: '::1', family: 6 }], ttlMs: 1_000, source: '127.0.0.1:53' }
    // The A record moved to .3; the AAAA queries time out.
    const moved: LookupResult = { addresses: [{ address: '127.0.2.3', family: 4 }], ttlMs: 1_000, source: '127.0.0.1:53', failedFamily: { family: 6, error: new DnsError('TIMEOUT', 'no answer') } }
    const { r, clock, changes } = setup([both, moved])
    r.start()
    await clock.advance(0)
    // One refresh (the TTL, clamped by resolve_min_ttl), and not the retry after it.
    for (let i = 0; i < 100 && (r.status().refreshes as Record<string, number>).TIMEOUT === undefined; i++) await clock.advance(100)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['127.0.2.3', '::1'])
    expect(r.snapshot().stale).toBe(true)
    expect(r.snapshot().lastError!.code).toBe('TIMEOUT')
    expect(changes.slice(1).map((c) => [c.added.map((a) => a.address), c.removed.map((a) => a.address)])).toEqual([[['127.0.2.3'], ['127.0.2.5']]])
    r.close()
  })

  test('a family that keeps failing past stale_grace loses its addresses; the other family\'s answer stays', async () => {
    const both: LookupResult = { addresses: [{ address: '127.0.2.1', family: 4 }, { address: '::1', family: 6 }], ttlMs: 10_000, source: '127.0.0.1:53' }
    const v6Only: LookupResult = { addresses: [{ address: '::1', family: 6 }], ttlMs: 10_000, source: '127.0.0.1:53', failedFamily: { family: 4, error: new DnsError('SERVFAIL', 'x') } }
    const { r, clock, changes } = setup([both, v6Only], { upstream: { staleGraceMs: 20_000 } })
    r.start()
    await clock.advance(0)
    await clock.advance(60_000)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['::1'])
    // Never an empty set on the way: only the A address was removed.
    expect(changes.slice(1).map((c) => [c.added.map((a) => a.address), c.removed.map((a) => a.address)])).toEqual([[[], ['127.0.2.1']]])
    r.close()
  })

  test('a family that failed and never had addresses does not hold back the other', async () => {
    const v6Only: LookupResult = { addresses: [{ address: '::1', family: 6 }], ttlMs: 10_000, source: '127.0.0.1:53', failedFamily: { family: 4, error: new DnsError('SERVFAIL', 'x') } }
    const { r, clock } = setup([v6Only])
    r.start()
    await clock.advance(0)
    expect(r.snapshot().ready).toBe(true)
    expect(r.snapshot().addresses.map((a) => a.address)).toEqual(['::1'])
    r.close()
  })

  test('an empty successful answer does not wipe the set', async () => {
    const { r, clock } = setup([answer(['127.0.2.1'], 10_000), answer([], 10_000)])
    r.start()
    await clock.advance(0)
    await clock.advance(9_000)
    expect(r.snapshot().addresses).toHaveLength(1)
    expect(r.snapshot().stale).toBe(true)
    r.close()
  })
})

test('set diffing reports only what changed; status says where answers came from', async () => {
  const { r, clock, changes } = setup([answer(['127.0.2.1', '127.0.2.2'], 10_000), answer(['127.0.2.2', '127.0.2.3'], 10_000), answer(['127.0.2.3', '127.0.2.2'], 10_000)])
  r.start()
  await clock.advance(0)
  await clock.advance(9_000)
  expect(changes).toHaveLength(2)
  expect(changes[1]!.added.map((a) => a.address)).toEqual(['127.0.2.3'])
  expect(changes[1]!.removed.map((a) => a.address)).toEqual(['127.0.2.1'])
  await clock.advance(9_000) // same set, other order: no change
  expect(changes).toHaveLength(2)
  const st = r.status() as { source: string; refreshes: Record<string, number>; changes: number; ttl_ms: number }
  expect(st.source).toBe('127.0.0.1:53')
  expect(st.refreshes.ok).toBe(3)
  expect(st.changes).toBe(2)
  expect(st.ttl_ms).toBe(10_000)
  r.close()
  await flush()
})

test('close stops everything', async () => {
  const { r, calls, clock } = setup([answer(['127.0.2.1'], 10_000)])
  r.start()
  await clock.advance(0)
  r.close()
  await clock.advance(1_000_000)
  expect(calls).toHaveLength(1)
  expect(clock.nextAt()).toBeUndefined()
})

test('every line names its upstream: two upstreams of one host name log their changes apart (eighteenth round of review)', async () => {
  const lines: Record<string, unknown>[] = []
  const { lookup, clock } = scripted([answer(['127.0.0.2']), answer(['127.0.0.3'])])
  const r = new UpstreamResolver({ ...U, name: 'ws' }, { lookup, clock, random: () => 0, log: (_level, msg, fields) => lines.push({ msg, ...fields }) })
  r.start()
  await clock.advance(0)
  // The next refresh, at the TTL's share (60 s answers).
  await clock.advance(60_000)
  r.close()
  expect(lines.find((l) => l.msg === 'upstream addresses changed')).toMatchObject({ upstream: 'ws', host: 'origin.test', added: '127.0.0.3', removed: '127.0.0.2' })
})
