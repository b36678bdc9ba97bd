/**
 * An upstream address that is the proxy's own listener (DNS answering with the proxy's address)
 * is not dialled: UPSTREAM_LOOP, an address failure, so the request goes to another address;
 * with none other, a 502 at once. Before, each such request went round through the proxy until
 * Via filled its head (a 431 after ~1,470 hops), or until descriptors ran out with via = "off".
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { listenedAt, reachesListener } from '../../src/proxy/upstream/self-address.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(async () => void (await h.closeAll(), h.records.splice(0)))

describe('reachesListener', () => {
  test.each([
    ['127.0.0.1', 8080, '127.0.0.1', 8080, true],
    ['127.0.0.1', 8081, '127.0.0.1', 8080, false],
    ['127.0.0.2', 8080, '127.0.0.1', 8080, false],
    ['::ffff:127.0.0.1', 8080, '127.0.0.1', 8080, true],
    // The hex form of the same (the resolver writes an AAAA of it so; a second opinion found it looped).
    ['::ffff:7f00:1', 8080, '127.0.0.1', 8080, true],
    ['::ffff:7f00:5', 8080, '0.0.0.0', 8080, true],
    ['0:0:0:0:0:ffff:7f00:1', 8080, '[::]', 8080, true],
    ['::ffff:7f00:2', 8080, '127.0.0.1', 8080, false],
    // The unspecified address as a destination is this host's loopback (Linux): a DNS filter's 0.0.0.0 answer looped (review).
    ['0.0.0.0', 8080, '127.0.0.1', 8080, true],
    ['::', 8080, '[::1]', 8080, true],
    ['0.0.0.0', 8080, '127.0.0.2', 8080, false],
    ['127.0.0.5', 8080, '0.0.0.0', 8080, true],
    ['0.0.0.0', 8080, '0.0.0.0', 8080, true],
    ['::1', 8080, '0.0.0.0', 8080, false],
    ['::1', 8080, '::', 8080, true],
    ['127.0.0.9', 8080, '::', 8080, true],
    ['::1', 8080, '[::1]', 8080, true],
    ['192.0.2.7', 8080, '0.0.0.0', 8080, false],
    ['127.0.0.1', 0, '127.0.0.1', 0, false],
  ] as const)('%s:%d against a listener on %s:%d: %p', (address, port, host, listenPort, want) => {
    expect(reachesListener(address, port, { host, port: listenPort })).toBe(want)
  })
})

/** An origin on 127.0.0.2 and a proxy on 127.0.0.1, both on one port (the upstream's): a few tries for a port free on both. */
async function proxyAndOriginOnOnePort(viaOff: boolean) {
  for (let attempt = 1; ; attempt++) {
    const origin = h.origin({ hostname: '127.0.0.2', fetch: () => new Response('origin') })
    const port = origin.port!
    try {
      const { proxy, source } = h.proxy(
        { server: { listen: `127.0.0.1:${port}`, via: viaOff ? 'off' : 'proxy' }, upstream: { url: `http://origin.test:${port}` } },
        { addresses: [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }] },
      )
      return { proxy, source, port }
    } catch (err) {
      if (attempt >= 5) throw err
    }
  }
}

test('a listen host given as a name is the address it resolves to, not every loopback address (a second opinion: "localhost" refused an origin on 127.0.0.2 at the same port)', async () => {
  const listen = { host: 'localhost', port: 8080 }
  reachesListener('127.0.0.1', 8080, listen) // the first ask starts the lookup
  expect(await waitFor(() => reachesListener('127.0.0.1', 8080, listen), 3000)).toBe(true)
  expect(reachesListener('127.0.0.2', 8080, listen)).toBe(false)
  expect(reachesListener('127.0.0.1', 8081, listen)).toBe(false)
})

test('a listener opening on a name looks it up then (listenedAt), before any dial: a reload onto a name with DNS failing after it looped (review)', async () => {
  const listen = { host: 'localhost', port: 8091 }
  listenedAt({ listen })
  await Bun.sleep(200) // the lookup, started by the listener's opening, not by an ask
  expect(reachesListener('127.0.0.1', 8091, listen)).toBe(true)
  expect(reachesListener('127.0.0.2', 8091, listen)).toBe(false)
})

describe('an upstream address that is the proxy itself', () => {
  test.each([false, true])('beside the origin (via off: %p): every request is answered by the origin, none loops', async (viaOff) => {
    const { proxy, port } = await proxyAndOriginOnOnePort(viaOff)
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/n${i}`, { signal: AbortSignal.timeout(5000) })
      expect([res.status, await res.text()]).toEqual([200, 'origin'])
    }
    // Twelve requests reached the proxy, and no more: none came back to it.
    expect(h.records).toHaveLength(12)
    const self = proxy.pool('default')!.addresses.get('127.0.0.1')!
    expect(self.connectsOpened).toBe(0)
    expect(self.failures).toBeGreaterThan(0)
  })

  test('its health check fails (UPSTREAM_LOOP), not passes through the proxy to the other address; the origin\'s passes', async () => {
    let checks = 0
    const origin = h.origin({ hostname: '127.0.0.2', fetch: (req) => (new URL(req.url).pathname === '/health' && checks++, new Response('origin')) })
    const port = origin.port!
    let proxy
    try {
      proxy = h.proxy({ server: { listen: `127.0.0.1:${port}` }, upstream: { url: `http://origin.test:${port}`, health_path: '/health', health_interval: '1s' } }, { addresses: [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }] }).proxy
    } catch {
      return // the port is taken on 127.0.0.1: nothing to check here (the other tests retry)
    }
    const pool = proxy.pool('default')!
    expect(await waitFor(() => pool.addresses.get('127.0.0.1')!.activeHealthy === false, 5000)).toBe(true)
    expect(pool.addresses.get('127.0.0.2')!.activeHealthy).toBe(true)
    expect(pool.addresses.get('127.0.0.1')!.connectsOpened).toBe(0)
    // Each check of the origin is its own: none came through the proxy on the other address's behalf.
    await Bun.sleep(1500)
    expect(h.records).toHaveLength(0)
    expect(checks).toBeGreaterThan(0)
  })

  test('alone: a 502 UPSTREAM_LOOP at once, one record', async () => {
    const { proxy, source, port } = await proxyAndOriginOnOnePort(false)
    ;(source as unknown as { set(a: { address: string; family: 4 }[]): void }).set([{ address: '127.0.0.1', family: 4 }])
    const res = await fetch(`http://127.0.0.1:${port}/alone`, { signal: AbortSignal.timeout(5000) })
    expect(res.status).toBe(502)
    expect(await res.text()).toContain('upstream address is this proxy itself')
    expect(h.records.map((r) => [r.path, r.status, r.error])).toEqual([['/alone', 502, 'UPSTREAM_LOOP']])
    expect(proxy.pool('default')!.addresses.get('127.0.0.1')!.connectsOpened).toBe(0)
  })
})
