/**
 * A ProxyServer with an edge cache in front of one loopback origin, for the collapsed-forwarding
 * tests: no retries (each attempt is one origin request, which they count), the one address
 * given statically, every record kept. Both are closed with the harness.
 */
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import type { Harness } from './harness.ts'

export interface CachedProxyOptions {
  maxObjectBytes?: number
  /** More [upstream] keys (timeouts). */
  upstream?: Record<string, string>
  server?: Record<string, string>
}

export function startCachedProxy(h: Harness, originPort: number, opts: CachedProxyOptions = {}) {
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: opts.maxObjectBytes ?? 1 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort}`, retries: '0', ...opts.upstream }, server: opts.server })
  const records: RequestRecord[] = []
  const proxy = new ProxyServer(config, {
    sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]),
    hooks: { onRecord: (r) => void records.push({ ...r }), cache },
  }).start()
  h.track(() => proxy.close())
  return { proxy, url: proxy.url, port: proxy.port, cache, records }
}
