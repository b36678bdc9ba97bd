/** Active health checks against a real origin on loopback, with a fake set of address states (no pool). */
import { afterEach, describe, expect, test } from 'bun:test'
import type { Server } from 'bun'
import { resolveConfig } from '../../../src/config/resolve.ts'
import { newAddressState, type AddressState } from '../../../src/proxy/upstream/address-state.ts'
import { ActiveHealthChecker, type HealthTargets } from '../../../src/proxy/upstream/health.ts'
import { DialError } from '../../../src/runtime/socket.ts'

const closers: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

interface Seen {
  path: string
  host: string | null
  userAgent: string | null
}

/** An origin whose health answer is `status.value`, recording each request. */
function origin(status: { value: number }, seen: Seen[] = []): Server<unknown> {
  const s = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req) {
      seen.push({ path: new URL(req.url).pathname, host: req.headers.get('host'), userAgent: req.headers.get('user-agent') })
      return new Response('x', { status: status.value })
    },
  })
  closers.push(() => s.stop(true))
  return s as Server<unknown>
}

/**
 * Targets holding one state per address. Each address is reached at 127.0.0.1 on the port
 * `portOf` gives it (default: `port`), so several "addresses" can be distinct loopback origins.
 */
function targets(port: number, addresses: string[], fields: Record<string, unknown> = {}, portOf: (address: string) => number = () => port): HealthTargets & { addresses: Map<string, AddressState> } {
  const upstream = resolveConfig(undefined, {
    upstream: { url: `http://origin.test:${port}`, health_path: '/healthz', health_timeout: '2s', health_interval: '1h', ...fields },
    server: { listen: '127.0.0.1:0' },
    admin: { listen: 'off' },
  }).upstreams.default!
  const map = new Map(addresses.map((a) => [a, newAddressState({ address: a, family: 4 }, port, Date.now())] as const))
  return {
    upstream,
    addresses: map,
    dialOptions: (s) => ({ address: '127.0.0.1', port: portOf(s.address), connectTimeoutMs: upstream.connectTimeoutMs, tls: undefined }),
  }
}

function checker(t: HealthTargets, logs: string[] = []): ActiveHealthChecker {
  const c = new ActiveHealthChecker(t, { log: (level, msg) => logs.push(`${level}: ${msg}`) })
  closers.push(() => c.close())
  return c
}

describe('ActiveHealthChecker.runOnce', () => {
  test('a failing check takes the address out, a passing one brings it back', async () => {
    const status = { value: 500 }
    const seen: Seen[] = []
    const o = origin(status, seen)
    const t = targets(o.port!, ['127.0.0.1'])
    const logs: string[] = []
    const c = checker(t, logs)
    const s = t.addresses.get('127.0.0.1')!
    expect(s.activeHealthy).toBe(true)

    await c.runOnce()
    expect(s.activeHealthy).toBe(false)
    expect(logs).toEqual(['warn: health check failed; address out of rotation'])

    status.value = 200
    await c.runOnce()
    expect(s.activeHealthy).toBe(true)
    expect(logs).toEqual(['warn: health check failed; address out of rotation', 'info: health check passes again'])

    // A steady state logs nothing more.
    await c.runOnce()
    expect(logs).toHaveLength(2)
    expect(c.checks).toBe(3)
    // GET health_path with the upstream's Host.
    expect(seen).toHaveLength(3)
    for (const r of seen) expect(r).toMatchObject({ path: '/healthz', userAgent: 'proxy-health-check' })
    for (const r of seen) expect(r.host).toBe(`origin.test:${o.port}`)
  })

  // For an upstream on a non-default port the Host carries it (RFC 9110 §7.2, RFC 9112 §3.2: the
  // target URI's authority), as an origin with name-based virtual hosts on that port expects.
  test('the Host of a check carries a non-default port (RFC 9110 §7.2)', async () => {
    const seen: Seen[] = []
    const o = origin({ value: 200 }, seen)
    await checker(targets(o.port!, ['127.0.0.1'])).runOnce()
    expect(seen[0]?.host).toBe(`origin.test:${o.port}`)
  })

  test.each([
    [200, true],
    [204, true],
    [301, true],
    [399, true],
    [400, false],
    [404, false],
    [500, false],
    [503, false],
  ])('status %d -> healthy %p', async (code, healthy) => {
    const o = origin({ value: code })
    const t = targets(o.port!, ['127.0.0.1'])
    const s = t.addresses.get('127.0.0.1')!
    // Start from the opposite verdict so that both directions are exercised.
    s.activeHealthy = !healthy
    await checker(t).runOnce()
    expect(s.activeHealthy).toBe(healthy)
  })

  test('a refused connection fails the check', async () => {
    // A port that was just listened on and closed again: nothing accepts there.
    const gone = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = gone.port!
    gone.stop(true)
    const t = targets(port, ['127.0.0.1'])
    await checker(t).runOnce()
    expect(t.addresses.get('127.0.0.1')!.activeHealthy).toBe(false)
  })

  test('a check with no file descriptor for its socket gives no verdict: the address stays as it was', async () => {
    const t = targets(1, ['127.0.2.1', '127.0.2.2'])
    t.addresses.get('127.0.2.2')!.activeHealthy = false
    const logs: string[] = []
    const c = new ActiveHealthChecker(t, { log: (level, msg) => logs.push(`${level}: ${msg}`), dial: () => Promise.reject(new DialError('NO_FILE_DESCRIPTORS', 'scripted')) })
    closers.push(() => c.close())
    await c.runOnce()
    expect(c.checks).toBe(2)
    expect([...t.addresses.values()].map((s) => s.activeHealthy)).toEqual([true, false])
    expect(logs).toEqual([])
  })

  test('an origin that does not answer within health_timeout fails the check', async () => {
    const pending: (() => void)[] = []
    const s = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => new Promise<Response>((resolve) => pending.push(() => resolve(new Response('late')))),
    })
    closers.push(() => s.stop(true))
    closers.push(() => pending.forEach((p) => p()))
    const t = targets(s.port!, ['127.0.0.1'], { health_timeout: '100ms' })
    await checker(t).runOnce()
    expect(t.addresses.get('127.0.0.1')!.activeHealthy).toBe(false)
  })

  test('every address is checked; removed ones are skipped', async () => {
    // Three "addresses", each its own loopback origin: healthy, failing, and removed (healthy, but must not be asked).
    const seenA: Seen[] = []
    const seenB: Seen[] = []
    const seenC: Seen[] = []
    const ports = new Map([
      ['127.0.2.1', origin({ value: 200 }, seenA).port!],
      ['127.0.2.2', origin({ value: 503 }, seenB).port!],
      ['127.0.2.3', origin({ value: 200 }, seenC).port!],
    ])
    const t = targets(ports.get('127.0.2.1')!, [...ports.keys()], {}, (a) => ports.get(a)!)
    t.addresses.get('127.0.2.1')!.activeHealthy = false
    t.addresses.get('127.0.2.3')!.activeHealthy = false
    t.addresses.get('127.0.2.3')!.removed = true
    const c = checker(t)
    await c.runOnce()
    expect(c.checks).toBe(2)
    expect([seenA.length, seenB.length, seenC.length]).toEqual([1, 1, 0])
    expect(t.addresses.get('127.0.2.1')!.activeHealthy).toBe(true)
    expect(t.addresses.get('127.0.2.2')!.activeHealthy).toBe(false)
    expect(t.addresses.get('127.0.2.3')!.activeHealthy).toBe(false)
  })

  test('a round still running is not started twice', async () => {
    const seen: Seen[] = []
    const o = origin({ value: 200 }, seen)
    const t = targets(o.port!, ['127.0.0.1'])
    const c = checker(t)
    await Promise.all([c.runOnce(), c.runOnce()])
    expect(c.checks).toBe(1)
    expect(seen).toHaveLength(1)
  })
})

describe('ActiveHealthChecker.start', () => {
  test('checks at once, then only every health_interval; close() stops it', async () => {
    const seen: Seen[] = []
    const o = origin({ value: 500 }, seen)
    const t = targets(o.port!, ['127.0.0.1'])
    const c = checker(t)
    c.start()
    c.start()
    const s = t.addresses.get('127.0.0.1')!
    for (let i = 0; i < 200 && s.activeHealthy; i++) await Bun.sleep(10)
    expect(s.activeHealthy).toBe(false)
    expect(seen).toHaveLength(1)
    c.close()
  })

  test('without health_path, start() checks nothing', async () => {
    const seen: Seen[] = []
    const o = origin({ value: 500 }, seen)
    const t = targets(o.port!, ['127.0.0.1'], { health_path: undefined })
    expect(t.upstream.healthPath).toBeUndefined()
    const c = checker(t)
    c.start()
    await Bun.sleep(20)
    expect(c.checks).toBe(0)
    expect(seen).toHaveLength(0)
  })
})

describe('an address DNS adds later (outside sweep, twentieth session)', () => {
  test('is checked at once, takes no traffic until that check passes, and stays out when it fails; a state made again for a re-added address is no exception', async () => {
    const up = origin({ value: 200 })
    const down = origin({ value: 503 })
    const t = targets(up.port!, ['127.0.0.21'], {}, (a) => (a === '127.0.0.29' ? down.port! : up.port!))
    let listener: ((c: { added: { address: string; family: 4 }[]; removed: never[] }) => void) | undefined
    const source = { onChange: (l: typeof listener) => ((listener = l), () => (listener = undefined)) }
    const logs: string[] = []
    const c = checker({ ...t, source } as unknown as HealthTargets, logs)
    c.start()
    await Bun.sleep(50) // the start-up round (interval 1 h: no other until the test ends)
    const add = (address: string) => {
      t.addresses.set(address, newAddressState({ address, family: 4 }, up.port!, Date.now())) // as the pool does first
      listener!({ added: [{ address, family: 4 }], removed: [] })
      return t.addresses.get(address)!
    }
    const bad = add('127.0.0.29')
    const good = add('127.0.0.22')
    // Before: both were healthy (taking traffic) until the next interval's round, an hour here.
    expect([bad.activeHealthy, good.activeHealthy]).toEqual([false, false])
    for (let i = 0; i < 100 && !(good.activeHealthy && logs.some((l) => l.includes('health check failed'))); i++) await Bun.sleep(20)
    expect([bad.activeHealthy, good.activeHealthy]).toEqual([false, true])
    expect(logs.filter((l) => l.startsWith('warn: health check failed'))).toHaveLength(1)
    // Dropped and re-added: a new state, out until checked again.
    const again = add('127.0.0.29')
    expect(again).not.toBe(bad)
    expect(again.activeHealthy).toBe(false)
    c.close()
    expect(listener).toBeUndefined()
  })
})
