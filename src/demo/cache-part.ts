/**
 * Part 3 of `proxy demo`: the edge cache in front of the far origin. Concurrent first requests
 * for one feed make one origin request, later ones are answered at the edge, and when the
 * origin goes away the stored feed keeps being served within its stale-if-error. The origin,
 * relays and DNS belong to demo.ts; this part gets a cache-enabled proxy's URL and a switch that
 * takes the origin away.
 */
import type { Colors } from '../lib/colors.ts'

export interface CacheDemoDeps {
  say(s?: string): void
  c: Colors
  /** Base URL of a proxy with the cache on, and what fetch needs to reach it. */
  proxyUrl: string
  init: RequestInit
  /** Requests the origin app has answered for the feed. */
  originFeedRequests(): number
  /** The feed's max-age, in ms: after it the feed is stale. */
  maxAgeMs: number
  /** Takes the origin away (its load balancer nodes stop). */
  stopOrigin(): void
}

const CONCURRENT = 50
const HITS = 200

async function get(d: CacheDemoDeps, path: string): Promise<{ status: number; cacheStatus: string; ms: number }> {
  const start = performance.now()
  const res = await fetch(`${d.proxyUrl}${path}`, d.init)
  await res.arrayBuffer()
  return { status: res.status, cacheStatus: res.headers.get('cache-status') ?? '', ms: performance.now() - start }
}

/** Runs the part; true when it showed what it should. */
export async function cacheDemo(d: CacheDemoDeps): Promise<boolean> {
  const { say, c } = d
  say(c.bold(`3. The edge cache (--cache): ${CONCURRENT} users ask for a new feed at once, then it is served at the edge, then the origin goes down`))
  const before = d.originFeedRequests()
  const startedAt = performance.now()
  const first = await Promise.all(Array.from({ length: CONCURRENT }, () => get(d, '/feed')))
  const originRequests = d.originFeedRequests() - before
  const slowest = Math.max(...first.map((r) => r.ms))
  say(`   ${CONCURRENT} concurrent misses: ${originRequests === 1 ? c.green('1 origin request') : c.red(`${originRequests} origin requests`)}; the slowest answer took ${slowest.toFixed(0)} ms`)
  const times: number[] = []
  for (let i = 0; i < HITS; i++) times.push((await get(d, '/feed')).ms)
  times.sort((a, b) => a - b)
  const last = await get(d, '/feed')
  say(`   ${HITS} requests after it: median ${times[HITS >> 1]!.toFixed(2)} ms at the edge, origin requests still ${d.originFeedRequests() - before}  (${last.cacheStatus})`)
  d.stopOrigin()
  // Wait until the feed is stale: now only stale-if-error lets the edge answer.
  await Bun.sleep(Math.max(0, d.maxAgeMs + 200 - (performance.now() - startedAt)))
  const stale = await get(d, '/feed')
  const servedStale = stale.status === 200 && stale.cacheStatus.includes('stale-if-error')
  say(`   origin down, feed stale: ${servedStale ? c.green(`still ${stale.status}`) : c.red(`${stale.status}`)} from the edge  (${stale.cacheStatus})`)
  say()
  return originRequests === 1 && servedStale
}
