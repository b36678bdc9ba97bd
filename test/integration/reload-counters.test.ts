/**
 * Counters across a reload (proxy/server.ts build): an upstream whose pool or resolver is made
 * anew keeps counting from where the parts it replaces were (Prometheus: a counter goes down only
 * at a restart). Real sockets on loopback; the reload is ProxyServer.reload, as SIGHUP calls it.
 */
import { afterEach, expect, test } from 'bun:test'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource, type AddressSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('connections opened and DNS refreshes go on counting when a reload makes the upstream\'s pool and resolver anew (outside sweep, twentieth session)', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  // Each source counts 4 refreshes of its own and records what it was given to carry.
  const carried: Record<string, number>[] = []
  const sourceFor = (): AddressSource => {
    const s = staticSource([{ address: '127.0.0.1', family: 4 }])
    return Object.assign(s, { metrics: () => ({ answerAgeMs: undefined, refreshes: { ok: 4 } }), takeOver: (prev: AddressSource) => void carried.push(prev.metrics!().refreshes) })
  }
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}`, header_timeout: '60s', resolve_interval: '30s' } }
  const proxy = new ProxyServer(h.config(flags), { sourceFor }).start()
  h.track(() => proxy.close())
  await (await fetch(`${proxy.url}/a`, { headers: { connection: 'close' } })).text()
  await (await fetch(`${proxy.url}/b`, { headers: { connection: 'close' } })).text()
  const opened = proxy.upstreams()[0]!.pool.connectsTotal
  expect(opened).toBeGreaterThanOrEqual(1)
  // header_timeout: a new pool (same resolver); resolve_interval: a new resolver too.
  await proxy.reload(h.config({ upstream: { ...flags.upstream, header_timeout: '30s', resolve_interval: '20s' } }))
  // Before: 0 and nothing carried (the series fell back to zero at each such reload).
  expect(proxy.upstreams()[0]!.pool.connectsTotal).toBe(opened)
  expect(carried).toEqual([{ ok: 4 }])
})
