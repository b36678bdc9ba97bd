/**
 * `proxy demo`: the whole story on one machine, with nothing to configure and no internet.
 * It starts a far origin (an HTTPS app behind two "load balancer nodes" that add a round-trip
 * delay), an embedded DNS server that names it, and this proxy nearby; then it benches direct vs
 * through the proxy on cold connections, and rotates the origin's addresses under load counting
 * failed requests; then shows the edge cache (src/demo/cache-part.ts). Everything it starts, it stops.
 */
import type { CAC } from 'cac'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compare, report } from '../bench/aggregate.ts'
import { renderComparison } from '../bench/report.ts'
import { runBench } from '../bench/runner.ts'
import { resolveConfig } from '../config/resolve.ts'
import { createLookup } from '../dns/lookup.ts'
import { DnsServer } from '../dns/server.ts'
import { DEMO_CA, DEMO_CERT, DEMO_KEY } from '../demo/certs.ts'
import { DelayRelay } from '../demo/relay.ts'
import { cacheDemo } from '../demo/cache-part.ts'
import { EdgeCache } from '../proxy/cache/cache.ts'
import { colorsFor } from '../lib/colors.ts'
import { UsageError } from '../lib/errors.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'
import { parseDurationMs } from '../lib/units.ts'
import { ProxyServer } from '../proxy/server.ts'
import { sourceForUpstream } from '../proxy/upstream/sources.ts'

export function registerDemo(cli: CAC, io: CliIo): void {
  cli
    .command('demo', 'Show the win on one machine: a far origin, a nearby proxy, a bench, and an address rotation under load')
    .option('--rtt <duration>', 'Round trip to the far origin (default: 150ms, about Seoul to the US west coast)')
    .option('--origin-time <duration>', 'Time the origin app spends on each request (default: 20ms)')
    .option('-n, --requests <n>', 'Cold requests per side in the comparison (default: 20)')
    .option('--rotation <duration>', 'How long the rotation load runs (default: 4s)')
    .action((opts: Record<string, unknown>) => demoCommand(opts, io))
}

const ORIGIN = 'origin.demo'
/** The demo feed's freshness (part 3): short, so that the demo can show it going stale. */
const FEED_MAX_AGE_S = 3
const PROXY = 'proxy.demo'

function duration(v: unknown, flag: string, def: number): number {
  if (v === undefined) return def
  const ms = parseDurationMs(String(v))
  if (ms === undefined) throw new UsageError(`${flag}: "${String(v)}" is not a duration; use e.g. 150ms`)
  return ms
}

/** Binds the same free port on several loopback addresses (for the two "load balancer nodes"). */
async function relaysOnOnePort(addresses: string[], targetPort: number, oneWayDelayMs: number): Promise<Map<string, DelayRelay>> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const relays = new Map<string, DelayRelay>()
    let port = 0
    try {
      for (const a of addresses) {
        const r = await new DelayRelay({ host: a, port, targetHost: '127.0.0.1', targetPort, oneWayDelayMs }).start()
        port = r.port
        relays.set(a, r)
      }
      return relays
    } catch {
      relays.forEach((r) => r.close())
    }
  }
  throw new Error('could not find a free port on 127.0.0.2 and 127.0.0.3')
}

export async function demoCommand(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  const rttMs = duration(opts.rtt, '--rtt', 150)
  const originMs = duration(opts.originTime, '--origin-time', 20)
  const rotationMs = duration(opts.rotation, '--rotation', 4000)
  const requests = opts.requests !== undefined ? Number(opts.requests) : 20
  if (!Number.isInteger(requests) || requests < 2) throw new UsageError('-n/--requests: use a whole number of 2 or more')
  const c = colorsFor(io.stdoutIsTTY, io.env)
  const say = (s = '') => io.out(`${s}\n`)
  const closers: (() => unknown)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'proxy-demo-'))
  closers.push(() => rmSync(dir, { recursive: true, force: true }))
  // Ctrl-C or a TERM mid-run: its key and certificates go too (they were left behind), then the
  // process ends as the signal asks (the servers and relays end with it).
  const onSignal = (code: number) => () => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(code)
  }
  const [onInt, onTerm] = [onSignal(ExitCode.INTERRUPTED), onSignal(143)]
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  closers.push(() => (process.off('SIGINT', onInt), process.off('SIGTERM', onTerm)))
  try {
    say(c.bold('proxy demo: a far origin, a nearby proxy, and an address change under load'))
    say(c.dim('Everything runs on loopback and stops at the end; nothing reaches the internet.'))
    say()

    // The origin app: HTTPS, spends originMs per request. Its /feed may be cached (part 3).
    let feedRequests = 0
    const app = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      tls: { cert: DEMO_CERT, key: DEMO_KEY },
      async fetch(req) {
        await Bun.sleep(originMs)
        const path = new URL(req.url).pathname
        if (path !== '/feed') return Response.json({ ok: true, path, served_at: new Date().toISOString() })
        feedRequests++
        return Response.json({ feed: ['a', 'b', 'c'], served_at: new Date().toISOString() }, { headers: { 'cache-control': `max-age=${FEED_MAX_AGE_S}, stale-if-error=300` } })
      },
    })
    closers.push(() => app.stop(true))
    // Two "load balancer nodes" in the far region: user-space relays adding the round trip.
    const relays = await relaysOnOnePort(['127.0.0.2', '127.0.0.3'], app.port!, rttMs / 2)
    closers.push(() => relays.forEach((r) => r.close()))
    const originPort = relays.get('127.0.0.2')!.port
    // The cloud DNS: names both the origin and the proxy.
    const dns = await new DnsServer().start(0)
    closers.push(() => dns.close())
    dns.set(ORIGIN, { a: ['127.0.0.2'], ttl: 2 })
    dns.set(PROXY, { a: ['127.0.0.1'], ttl: 60 })
    say(`far origin   https://${ORIGIN}:${originPort}  (round trip ${rttMs} ms, origin work ${originMs} ms per request)`)
    say(`DNS          127.0.0.1:${dns.port} (embedded): ${ORIGIN} -> 127.0.0.2, TTL 2 s`)
    say(c.yellow('network      user-space delay relay: TLS handshakes and requests pay the round trip, but the TCP'))
    say(c.yellow('             handshake (CONNECT) to the relay is local, so the CONNECT saving is not shown here.'))
    say(c.yellow('             (A real far user also pays one more round trip for CONNECT, which the proxy removes too.)'))

    // The nearby proxy, terminating TLS, with warm connections to the origin.
    for (const [name, text] of [['ca.pem', DEMO_CA], ['cert.pem', DEMO_CERT], ['key.pem', DEMO_KEY]] as const) writeFileSync(join(dir, name), text, { mode: 0o600 })
    const config = resolveConfig(undefined, {
      server: { listen: '127.0.0.1:0', tls_cert: join(dir, 'cert.pem'), tls_key: join(dir, 'key.pem') },
      upstream: { url: `https://${ORIGIN}:${originPort}`, ca_file: join(dir, 'ca.pem'), resolvers: [`127.0.0.1:${dns.port}`], resolve_min_ttl: '1s', prewarm: '4' },
      admin: { listen: 'off' },
    })
    const quiet = createLogger(() => {}, 'error')
    const proxy = new ProxyServer(config, { sourceFor: (u) => sourceForUpstream(u, quiet), log: quiet }).start()
    closers.push(() => proxy.close())
    const proxyPort = new URL(proxy.url).port
    say(`proxy        https://${PROXY}:${proxyPort}  (near the user; upstream connections pre-warmed)`)
    const source = proxy.source('default')!
    for (let i = 0; i < 100 && !source.snapshot().ready; i++) await Bun.sleep(20)
    await Bun.sleep(rttMs * 2 + 50) // let the pre-warmed TLS connections finish their handshakes
    say()

    // 1. Cold connections, as a new user has them: direct vs through the proxy, interleaved.
    say(c.bold(`1. ${requests} new users each way (cold connections), direct (A) vs through the proxy (B)`))
    const lookup = createLookup({ resolvers: [{ host: '127.0.0.1', port: dns.port }] })
    const target = (host: string, port: number) => ({ scheme: 'https' as const, host, port, path: '/api/items', connectHost: host, connectPort: port, pinnedAddress: undefined })
    const run = await runBench({
      targets: [target(ORIGIN, originPort), target(PROXY, Number(proxyPort))],
      spec: { method: 'GET', headers: [], body: undefined },
      client: { timeoutMs: 10_000 + rttMs * 4, insecure: false, ca: DEMO_CA, lookup },
      requests,
      durationMs: undefined,
      concurrency: 1,
      ratePerS: undefined,
      keepAlive: false,
    })
    const a = run.samples.filter((s) => s.side === 'a')
    const b = run.samples.filter((s) => s.side === 'b')
    const cmp = compare(a, b)
    say(renderComparison(report(`https://${ORIGIN}:${originPort}/api/items`, a, run.elapsedMs), report(`https://${PROXY}:${proxyPort}/api/items`, b, run.elapsedMs), cmp, c))
    say()

    // 2. The origin's addresses rotate under load: .2 -> .3, then .2 goes away.
    say(c.bold(`2. The origin's address changes under load (16 clients through the proxy for ${(rotationMs / 1000).toFixed(1)} s)`))
    let ok = 0
    let failed = 0
    let running = true
    const loops = Array.from({ length: 16 }, async () => {
      for (let i = 0; running && i < 100_000; i++) {
        try {
          const res = await fetch(`https://127.0.0.1:${proxyPort}/api/rotate`, { tls: { ca: DEMO_CA, serverName: PROXY }, headers: { host: `${PROXY}:${proxyPort}` } } as RequestInit)
          await res.arrayBuffer()
          if (res.status === 200) ok++
          else failed++
        } catch {
          failed++
        }
      }
    })
    const third = rotationMs / 4
    await Bun.sleep(third)
    dns.set(ORIGIN, { a: ['127.0.0.3'], ttl: 2 })
    say(`   t=${(third / 1000).toFixed(1)}s  DNS now answers ${ORIGIN} -> 127.0.0.3`)
    await Bun.sleep(Math.max(2500, third))
    relays.get('127.0.0.2')!.close()
    say(`   t=${((third + Math.max(2500, third)) / 1000).toFixed(1)}s  127.0.0.2 is gone (the old node was removed)`)
    await Bun.sleep(Math.max(1000, rotationMs - third - Math.max(2500, third)))
    running = false
    await Promise.all(loops)
    const stats = proxy.pool('default')!.stats()
    const servedBy = (addr: string) => stats.find((s) => s.address === addr)?.requests ?? 0
    say(`   requests: ${ok + failed}, ${failed === 0 ? c.green('failed: 0') : c.red(`failed: ${failed}`)}; the proxy sent ${servedBy('127.0.0.3')} to 127.0.0.3 after the change`)
    say()

    // 3. A second nearby proxy, with the edge cache on.
    const cache = new EdgeCache({ maxBytes: 64 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 0 })
    closers.push(() => cache.close())
    const cached = new ProxyServer(config, { sourceFor: (u) => sourceForUpstream(u, quiet), log: quiet, hooks: { cache } }).start()
    closers.push(() => cached.close())
    const cachedSource = cached.source('default')!
    for (let i = 0; i < 100 && !cachedSource.snapshot().ready; i++) await Bun.sleep(20)
    const cachedPort = new URL(cached.url).port
    const cacheOk = await cacheDemo({
      say,
      c,
      proxyUrl: `https://127.0.0.1:${cachedPort}`,
      init: { tls: { ca: DEMO_CA, serverName: PROXY }, headers: { host: `${PROXY}:${cachedPort}` } } as RequestInit,
      originFeedRequests: () => feedRequests,
      maxAgeMs: FEED_MAX_AGE_S * 1000,
      stopOrigin: () => relays.forEach((r) => r.close()),
    })

    const faster = (cmp.phases.total?.ci95?.[0] ?? 0) > 1
    const good = faster && failed === 0 && cacheOk
    say(good ? c.green('The proxy cut the time of a new user, not one request failed while the origin moved, and the edge cache answered for the origin.') : c.red('The demo did not show what it should; see the figures above.'))
    return good ? ExitCode.OK : ExitCode.DEMO_FAILED
  } finally {
    for (const close of closers.reverse()) {
      try {
        await close()
      } catch {
        // keep closing the rest
      }
    }
  }
}
