/**
 * Collapsed forwarding when the leader's upstream request fails, through real sockets: the
 * waiters do not all go upstream at once (a thundering herd on an origin already failing). As
 * nginx's proxy_cache_lock waiters retry the lock, one waiter leads next and the others wait for
 * it; each leader's client gets its own attempt's answer (the failure, or the 200 the others
 * then share). The origin counts request heads; the collapse wait stays longer than any test.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import type { Socket } from 'node:net'
import { startCachedProxy } from '../support/cached-proxy.ts'
import { countingOrigin } from '../support/counting-origin.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const OK = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfine'
const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown'

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.text() }
}

/** How many answers had each status, e.g. { 200: 47, 502: 3 }. */
function tally(got: { status: number }[]): Record<number, number> {
  const t: Record<number, number> = {}
  for (const g of got) t[g.status] = (t[g.status] ?? 0) + 1
  return t
}

describe('a failed leader hands the lead on: one waiter goes upstream next, the others keep waiting', () => {
  for (const failure of ['502', 'close'] as const) {
    test(`50 concurrent misses; the origin fails the first 3 (${failure === '502' ? '502, not stored' : 'closes without answering'}), then answers 200: 4 origin requests, not 50`, async () => {
      let first!: Socket
      const origin = await countingOrigin(h, (s, n) => {
        if (n === 1) first = s
        else if (n <= 3) failure === '502' ? s.end(BAD_GATEWAY) : s.destroy()
        else s.end(OK)
      })
      const { proxy, url, cache, records } = startCachedProxy(h, origin.port)
      const all = Array.from({ length: 50 }, () => get(`${url}/herd`))
      // Every request is in: one leads, 49 wait for it.
      expect(await waitFor(() => origin.requests() === 1 && proxy.pendingRequests === 50)).toBe(true)
      failure === '502' ? first.end(BAD_GATEWAY) : first.destroy()
      const got = await Promise.all(all)
      expect(origin.requests()).toBe(4)
      if (failure === '502') {
        // Each of the three leaders that failed got its own failure; the fourth's 200 answered the rest.
        expect(tally(got)).toEqual({ 200: 47, 502: 3 })
      } else {
        // A GET whose connection closed before any answer is sent once more on a new connection
        // (the attempt loop's own retry): the first leader's two requests failed (502), the second's
        // retry got the 200 the rest share.
        expect(tally(got)).toEqual({ 200: 49, 502: 1 })
        // The try on a new connection goes to the same address: no retry in the log (retries: attempts on other addresses; it counted one until the sixteenth round of outside reviews).
        expect(records.filter((r) => r.cache === 'miss').map((r) => [r.status, r.retries])).toEqual([[502, 0], [200, 0]])
      }
      expect(got.filter((g) => g.status === 200).every((g) => g.body === 'fine')).toBe(true)
      expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
      const hit = await fetch(`${url}/herd`)
      expect([await hit.text(), hit.headers.get('cache-status')?.startsWith('proxy; hit;')]).toEqual(['fine', true])
      expect(origin.requests()).toBe(4)
    })
  }

  test('the leader\'s client leaves before the answer: its request is aborted, one waiter leads, the rest share its answer', async () => {
    let first!: Socket
    const origin = await countingOrigin(h, (s, n) => {
      if (n === 1) first = s
      else s.end(OK)
    })
    const { proxy, url, cache, records } = startCachedProxy(h, origin.port)
    const leader = rawClient(h, proxy.port)
    leader.s.write(`GET /left HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)
    expect(await waitFor(() => origin.requests() === 1)).toBe(true)
    const waiters = Array.from({ length: 20 }, () => get(`${url}/left`))
    expect(await waitFor(() => proxy.pendingRequests === 21)).toBe(true)
    let aborted = false
    first.on('close', () => (aborted = true))
    leader.s.destroy()
    const got = await Promise.all(waiters)
    expect(tally(got)).toEqual({ 200: 20 })
    expect(origin.requests()).toBe(2)
    expect(await waitFor(() => aborted)).toBe(true)
    expect(await waitFor(() => records.some((r) => r.status === 499))).toBe(true)
    expect(records.find((r) => r.status === 499)?.error).toBe('CLIENT_GONE')
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
  })

  test('the leader times out (header_timeout): it gets 504, one waiter leads, the rest share its 200', async () => {
    const origin = await countingOrigin(h, (s, n) => {
      // The first request is never answered.
      if (n > 1) s.end(OK)
    })
    // The collapse wait is connect_timeout + header_timeout: the leader's timeout ends first.
    const { url, cache, records } = startCachedProxy(h, origin.port, { upstream: { header_timeout: '1s', connect_timeout: '60s' } })
    const got = await Promise.all(Array.from({ length: 21 }, () => get(`${url}/slow`)))
    expect(tally(got)).toEqual({ 200: 20, 504: 1 })
    expect(origin.requests()).toBe(2)
    expect(records.find((r) => r.status === 504)?.error).toBe('HEADER_TIMEOUT')
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
  })

  test('with a stale response stale-if-error allows, the waiters of a failed leader get it at once: 1 origin request for 21 clients, not 21', async () => {
    const STALE_OK = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=1, stale-if-error=300\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept'
    let held!: Socket
    const origin = await countingOrigin(h, (s, n) => {
      if (n === 1) s.end(STALE_OK)
      else if (n === 2) held = s
      else s.end(BAD_GATEWAY)
    })
    const { proxy, url, cache, records } = startCachedProxy(h, origin.port)
    expect(await (await fetch(`${url}/kept`)).text()).toBe('kept')
    // max-age=1: stale after a second (Date has whole seconds, so wait past two).
    await Bun.sleep(2100)
    const all = Array.from({ length: 21 }, () => get(`${url}/kept`))
    expect(await waitFor(() => origin.requests() === 2 && proxy.pendingRequests === 21)).toBe(true)
    held.end(BAD_GATEWAY)
    const got = await Promise.all(all)
    expect(tally(got)).toEqual({ 200: 21 })
    expect(got.every((g) => g.body === 'kept')).toBe(true)
    expect(origin.requests()).toBe(2)
    expect(records.filter((r) => r.cache === 'stale').length).toBe(21)
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
  })

  test('a waiter whose client left does not lead, nor stall the others: the next waiter leads', async () => {
    let first!: Socket
    const origin = await countingOrigin(h, (s, n) => {
      if (n === 1) first = s
      else s.end(OK)
    })
    const { proxy, url, cache, records } = startCachedProxy(h, origin.port)
    const leading = get(`${url}/gone`)
    expect(await waitFor(() => origin.requests() === 1)).toBe(true)
    // The first waiter (the next to lead, as waiters are woken in order) is a raw client that leaves.
    const quitter = rawClient(h, proxy.port)
    quitter.s.write(`GET /gone HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)
    expect(await waitFor(() => proxy.pendingRequests === 2)).toBe(true)
    const waiters = Array.from({ length: 10 }, () => get(`${url}/gone`))
    expect(await waitFor(() => proxy.pendingRequests === 12)).toBe(true)
    quitter.s.destroy()
    expect(await waitFor(() => proxy.pendingRequests === 11)).toBe(true)
    first.end(BAD_GATEWAY)
    expect((await leading).status).toBe(502)
    expect(tally(await Promise.all(waiters))).toEqual({ 200: 10 })
    expect(origin.requests()).toBe(2)
    expect(await waitFor(() => records.some((r) => r.status === 499))).toBe(true)
    expect(records.find((r) => r.status === 499)?.error).toBe('CLIENT_GONE')
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
  })
})

describe('a leader whose client left is no failure of the origin', () => {
  test('with a stale response stale-if-error allows, neither the leader whose client left nor its waiters get it: one waiter leads, and all get the fresh answer', async () => {
    const STALE_OK = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=1, stale-if-error=300\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept'
    const origin = await countingOrigin(h, (s, n) => {
      if (n === 1) s.end(STALE_OK)
      else if (n > 2) s.end(OK)
      // n === 2: the leader's request, never answered (its client leaves)
    })
    const { proxy, url, cache, records } = startCachedProxy(h, origin.port)
    expect(await (await fetch(`${url}/left`)).text()).toBe('kept')
    // max-age=1: stale after a second (Date has whole seconds, so wait past two).
    await Bun.sleep(2100)
    const leader = rawClient(h, proxy.port)
    leader.s.write(`GET /left HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)
    expect(await waitFor(() => origin.requests() === 2)).toBe(true)
    const waiters = Array.from({ length: 5 }, () => get(`${url}/left`))
    expect(await waitFor(() => proxy.pendingRequests === 6)).toBe(true)
    leader.s.destroy()
    const got = await Promise.all(waiters)
    expect(got.map((g) => g.body)).toEqual(['fine', 'fine', 'fine', 'fine', 'fine'])
    expect(origin.requests()).toBe(3)
    // None was served stale: not the waiters, nor the leader, whose client left (499, not a 200 it never got).
    expect(records.filter((r) => r.cache === 'stale').length).toBe(0)
    expect(await waitFor(() => records.some((r) => r.status === 499))).toBe(true)
    expect(records.find((r) => r.status === 499)).toMatchObject({ error: 'CLIENT_GONE', cache: 'miss' })
    expect(cache.status()).toMatchObject({ in_flight: 0, waiting: 0 })
  })
})
