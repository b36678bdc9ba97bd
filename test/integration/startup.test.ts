/**
 * Start-up and the resolver: the proxy waits for its first DNS answer (up to resolve_timeout)
 * before it accepts connections, so its first requests never get "has not resolved yet" while
 * DNS is healthy; with DNS down it starts anyway after resolve_timeout and answers 503.
 * A real UDP DNS server of the project's own on loopback (src/dns/server.ts) answers.
 */
import { afterEach, expect, test } from 'bun:test'
import { createLogger } from '../../src/lib/logger.ts'
import { DnsServer } from '../../src/dns/server.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { sourceForUpstream } from '../../src/proxy/upstream/sources.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const HOST = 'origin.startup.test'

async function dns(): Promise<DnsServer> {
  const d = await new DnsServer().start(0)
  h.track(() => d.close())
  return d
}

function proxyFor(dnsPort: number, originPort: number, resolveTimeout: string): ProxyServer {
  const config = h.config({ upstream: { url: `http://${HOST}:${originPort}`, resolvers: [`127.0.0.1:${dnsPort}`], resolve_timeout: resolveTimeout } })
  const log = createLogger(() => {}, 'info')
  const proxy = new ProxyServer(config, { sourceFor: (u) => sourceForUpstream(u, log), log })
  h.track(() => proxy.close())
  return proxy
}

test('a slow first DNS answer: the listener opens after it, and the first request is served', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const d = await dns()
  d.set(HOST, { a: ['127.0.0.1'], ttl: 30 })
  // The answer takes 300 ms: a listener opened at once would answer 503 "has not resolved yet".
  d.answerDelayMs = 300
  for (let i = 0; i < 3; i++) {
    const proxy = await proxyFor(d.port, origin.port!, '2s').startResolved()
    const res = await fetch(`${proxy.url}/first`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ok')
    proxy.close()
  }
})

test('DNS down: it starts after resolve_timeout and answers 503 until an answer arrives', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const d = await dns()
  d.set(HOST, 'DROP')
  const proxy = await proxyFor(d.port, origin.port!, '300ms').startResolved()
  const res = await fetch(`${proxy.url}/x`)
  expect(res.status).toBe(503)
  expect(await res.text()).toContain('has not resolved yet')
  expect(res.headers.get('retry-after')).toBe('1')
})

test('a lost query (the first datagram gets no answer): it is sent again within resolve_timeout, and the first request is served (outside review, thirteenth round)', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const d = await dns()
  d.set(HOST, { a: ['127.0.0.1'], ttl: 30 })
  // The first A query and the first AAAA query (family auto asks both at once) are lost.
  d.dropQueries = 2
  const started = performance.now()
  const proxy = await proxyFor(d.port, origin.port!, '600ms').startResolved()
  const res = await fetch(`${proxy.url}/first`)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('ok')
  expect(d.queries).toBe(4)
  // Within the one lookup's timeout, not after a failed lookup and the retry a second later.
  expect(performance.now() - started).toBeLessThan(5_000)
})
