/**
 * The pool with an injected dial that hands out fake Conns (no sockets) and an injected clock.
 * Real timers only for the per-address wait (connect_timeout of a few ms), bounded by a guard.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { resolveConfig } from '../../../src/config/resolve.ts'
import type { ResolvedUpstream } from '../../../src/config/schema.ts'
import { RequestFailure } from '../../../src/proxy/errors.ts'
import { staticSource, type Address, type AddressChange } from '../../../src/proxy/upstream/address-source.ts'
import type { Http1Connection } from '../../../src/proxy/upstream/connection.ts'
import { toRequestFailure } from '../../../src/proxy/upstream/dialled.ts'
import { UpstreamPool, type AcquiredConnection } from '../../../src/proxy/upstream/pool.ts'
import { DialError, NOOP_HANDLERS, type Conn, type ConnHandlers, type DialErrorCode, type DialOptions } from '../../../src/runtime/socket.ts'
import { flush } from '../../support/fake-clock.ts'

const T0 = 1_000_000

function upstream(fields: Record<string, unknown> = {}): ResolvedUpstream {
  return resolveConfig(undefined, { upstream: { url: 'http://origin.test:8080', ...fields }, server: { listen: '127.0.0.1:0' }, admin: { listen: 'off' } }).upstreams.default!
}

const A: Address = { address: '127.0.2.1', family: 4 }
const B: Address = { address: '127.0.2.2', family: 4 }

/** A Conn that records what is written; destroy() closes it as a socket would (close handler once). */
class FakeConn implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  destroyed = false
  readonly written: string[] = []
  readonly timings = { startAt: 0, connectAt: 0, tlsAt: undefined }
  constructor(
    readonly remoteAddress: string,
    readonly createdAtMonoMs: number,
  ) {}
  write(data: Uint8Array | string): boolean {
    this.written.push(typeof data === 'string' ? data : new TextDecoder().decode(data))
    return true
  }
  pause(): void {}
  resume(): void {}
  end(): void {
    this.destroy()
  }
  destroy(): void {
    this.destroyed = true
    this.peerClose()
  }
  /** What the kernel would say of the peer before the close handler runs (socket-poll.ts). */
  news = false
  peerHasNews(): boolean {
    return this.news
  }
  /** The other side closed the connection. */
  peerClose(): void {
    if (this.closed) return
    this.closed = true
    this.handlers.close(undefined)
  }
  tlsInfo() {
    return undefined
  }
}

interface Rig {
  pool: UpstreamPool
  source: ReturnType<typeof staticSource>
  dials: DialOptions[]
  conns: FakeConn[]
  subscriptions: () => number
  clock: { t: number }
  logs: string[]
  logFields: (Record<string, unknown> | undefined)[]
}

const rigs: Rig[] = []
afterEach(() => {
  for (const r of rigs.splice(0)) r.pool.close()
})

/** A pool over `addresses`; `dial` decides each dial (default: a new FakeConn). */
/** Makes the rig's source report a re-resolve in flight; the returned function finishes it. */
function pendRefresh(r: Rig): () => void {
  let finish!: () => void
  const refresh = new Promise<void>((res) => (finish = res))
  ;(r.source as { nextRefresh?: (ms: number) => Promise<void> | undefined }).nextRefresh = () => refresh
  return finish
}

function rig(fields: Record<string, unknown> = {}, opts: { addresses?: Address[]; dial?: (o: DialOptions, n: number) => Promise<Conn> | undefined } = {}): Rig {
  const clock = { t: T0 }
  const dials: DialOptions[] = []
  const conns: FakeConn[] = []
  const logs: string[] = []
  const logFields: (Record<string, unknown> | undefined)[] = []
  const source = staticSource(opts.addresses ?? [A])
  let subscribed = 0
  const onChange = source.onChange.bind(source)
  source.onChange = (l: (c: AddressChange) => void) => {
    subscribed++
    const off = onChange(l)
    return () => {
      subscribed--
      return off()
    }
  }
  const pool = new UpstreamPool(upstream(fields), source, {
    clock: { monoMs: () => clock.t, wallMs: () => clock.t },
    random: () => 0,
    log: (level, msg, fields) => {
      logs.push(`${level}: ${msg}`)
      logFields.push(fields)
    },
    dial: (o) => {
      dials.push(o)
      const scripted = opts.dial?.(o, dials.length)
      if (scripted) return scripted
      const c = new FakeConn(o.address, clock.t)
      conns.push(c)
      return Promise.resolve(c)
    },
  })
  const r = { pool, source, dials, conns, subscriptions: () => subscribed, clock, logs, logFields }
  rigs.push(r)
  return r
}

/** Runs one GET on `c` and answers it with a 204, so the connection goes back to the pool. */
async function exchangeOnce(c: Http1Connection, response = 'HTTP/1.1 204 No Content\r\n\r\n'): Promise<number> {
  const p = c.exchange({ method: 'GET', target: '/', headers: [['host', 'origin.test']], body: null, bodyLength: undefined, maxBodyBytes: 0 }, { headerTimeoutMs: 5000, idleTimeoutMs: 0 })
  // Sockets hand over Buffers (binaryType 'buffer'), and the head reader relies on that.
  c.conn.handlers.data(Buffer.from(response, 'latin1'))
  return (await p).head.status
}

/** Awaits `p`, failing the test instead of hanging if it takes longer than `ms` (real time). */
async function within<T>(p: Promise<T>, ms = 2000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms}ms`)), ms)))
  try {
    return await Promise.race([p, guard])
  } finally {
    clearTimeout(timer)
  }
}

async function rejection(p: Promise<unknown>): Promise<RequestFailure> {
  const err = await within(p.then(() => undefined, (e: unknown) => e))
  expect(err).toBeInstanceOf(RequestFailure)
  return err as RequestFailure
}

describe('lifecycle', () => {
  test('the constructor starts nothing: no address, no dial, no subscription', async () => {
    const r = rig({ prewarm: '2' })
    await flush()
    expect(r.pool.addresses.size).toBe(0)
    expect(r.dials).toEqual([])
    expect(r.subscriptions()).toBe(0)
    expect(r.pool.pick()).toBeUndefined()
  })

  test('start() adds the source addresses and subscribes once (idempotent)', () => {
    const r = rig({}, { addresses: [A, B] })
    expect(r.pool.start()).toBe(r.pool)
    r.pool.start()
    expect([...r.pool.addresses.keys()].sort()).toEqual(['127.0.2.1', '127.0.2.2'])
    expect(r.subscriptions()).toBe(1)
    expect(r.pool.addresses.get('127.0.2.1')!.label).toBe('127.0.2.1:8080')
    expect(r.dials).toEqual([])
  })

  test('start() follows source changes: added addresses appear, removed ones go', () => {
    const r = rig({}, { addresses: [A] })
    r.pool.start()
    r.source.set([B])
    expect([...r.pool.addresses.keys()]).toEqual(['127.0.2.2'])
    r.source.set([A, B])
    expect([...r.pool.addresses.keys()].sort()).toEqual(['127.0.2.1', '127.0.2.2'])
  })

  test('a removed address with a request in flight is kept (removed, never picked) until it drains', async () => {
    const r = rig({}, { addresses: [A, B] })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const got = await r.pool.acquire(a)
    r.source.set([B])
    expect(r.pool.addresses.get('127.0.2.1')).toBe(a)
    expect(a.removed).toBe(true)
    for (let i = 0; i < 5; i++) expect(r.pool.pick()?.address).toBe('127.0.2.2')
    expect(await exchangeOnce(got.connection)).toBe(204)
    // Not pooled: its address is gone.
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(r.pool.addresses.has('127.0.2.1')).toBe(false)
  })

  test('close() closes idle connections and stops following the source', async () => {
    const r = rig({}, { addresses: [A] })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const got = await r.pool.acquire(a)
    await exchangeOnce(got.connection)
    expect(a.idle).toHaveLength(1)
    r.pool.close()
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(a.idle).toHaveLength(0)
    expect(a.open).toBe(0)
    expect(r.subscriptions()).toBe(0)
    r.source.set([A, B])
    expect(r.pool.addresses.has('127.0.2.2')).toBe(false)
    // start() after close() does nothing.
    r.pool.start()
    expect(r.subscriptions()).toBe(0)
  })

  test('a connection released after close() is closed, not pooled', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const got = await r.pool.acquire(a)
    r.pool.close()
    await exchangeOnce(got.connection)
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(a.idle).toHaveLength(0)
    expect(a.open).toBe(0)
  })
})

describe('acquire', () => {
  test('dials a new connection and counts it', async () => {
    const r = rig({ connect_timeout: '750ms' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const got = await r.pool.acquire(a)
    expect(got.reused).toBe(false)
    expect(got.connectMs).toBeNumber()
    expect(got.connection.conn).toBe(r.conns[0]!)
    expect(r.dials).toEqual([{ address: '127.0.2.1', port: 8080, connectTimeoutMs: 750, tls: undefined }])
    expect(r.pool.connectsTotal).toBe(1)
    expect(a).toMatchObject({ open: 1, inFlight: 1, requests: 1, connectsOpened: 1 })
    expect(r.pool.stats()[0]).toMatchObject({ address: '127.0.2.1', open: 1, in_flight: 1, idle: 0, connections_opened: 1 })
  })

  test('a finished exchange returns the connection to the pool; the next acquire reuses it', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const first = await r.pool.acquire(a)
    expect(await exchangeOnce(first.connection)).toBe(204)
    expect(a).toMatchObject({ open: 1, inFlight: 0 })
    expect(a.idle).toEqual([first.connection])
    const second = await r.pool.acquire(a)
    expect(second).toMatchObject({ reused: true, connectMs: undefined })
    expect(second.connection).toBe(first.connection)
    expect(r.pool.connectsTotal).toBe(1)
    expect(a).toMatchObject({ open: 1, inFlight: 1, requests: 2 })
  })

  test('takeIdle: the idle connection synchronously, or undefined', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    expect(r.pool.takeIdle(a)).toBeUndefined()
    expect(a.inFlight).toBe(0)
    const first = await r.pool.acquire(a)
    await exchangeOnce(first.connection)
    const again = r.pool.takeIdle(a)
    expect(again?.connection).toBe(first.connection)
    expect(again?.reused).toBe(true)
    expect(a).toMatchObject({ inFlight: 1, requests: 2 })
  })

  test('a connection the response says to close is not pooled', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const got = await r.pool.acquire(a)
    await exchangeOnce(got.connection, 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n')
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(a).toMatchObject({ open: 0, inFlight: 0 })
    expect(a.idle).toHaveLength(0)
  })

  test('an idle connection the upstream closes leaves the pool', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    await exchangeOnce((await r.pool.acquire(a)).connection)
    r.conns[0]!.peerClose()
    expect(a.idle).toHaveLength(0)
    expect(a.open).toBe(0)
    const next = await r.pool.acquire(a)
    expect(next.reused).toBe(false)
    expect(r.pool.connectsTotal).toBe(2)
  })

  test('an idle connection older than max_connection_age is closed instead of reused', async () => {
    const r = rig({ max_connection_age: '10s' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    await exchangeOnce((await r.pool.acquire(a)).connection)
    expect(a.idle).toHaveLength(1)
    r.clock.t += 10_000
    expect(r.pool.takeIdle(a)).toBeUndefined()
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(a.open).toBe(0)
  })

  test('max_idle_per_address bounds the idle list', async () => {
    const r = rig({ max_idle_per_address: '1' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const c1 = await r.pool.acquire(a)
    const c2 = await r.pool.acquire(a)
    await exchangeOnce(c1.connection)
    await exchangeOnce(c2.connection)
    expect(a.idle).toEqual([c1.connection])
    expect(r.conns[1]!.destroyed).toBe(true)
    expect(a.open).toBe(1)
  })

  test.each(['CONNECT_REFUSED', 'CONNECT_TIMEOUT', 'CONNECT_FAILED', 'TLS_FAILED'] as DialErrorCode[])('a dial failure %s becomes a RequestFailure with that code, not counted as a connection opened', async (code) => {
    const r = rig({}, { dial: () => Promise.reject(new DialError(code, 'scripted')) })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const err = await rejection(r.pool.acquire(a))
    expect(err.code).toBe(code)
    expect(err.phase).toBe('connect')
    expect(err.address).toBe('127.0.2.1')
    expect(err.isAddressFailure).toBe(true)
    // Not a connection opened (proxy_upstream_connections_opened_total counted refused dials until the seventeenth round).
    expect(a).toMatchObject({ open: 0, inFlight: 0, connectsOpened: 0 })
    expect(r.pool.connectsTotal).toBe(0)
  })

  test('a dial with no file descriptor left is the proxy\'s failure: not the address\'s, and logged once per 10 s with the count', async () => {
    const r = rig({}, { dial: () => Promise.reject(new DialError('NO_FILE_DESCRIPTORS', 'scripted')) })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    for (let i = 0; i < 3; i++) {
      const err = await rejection(r.pool.acquire(a))
      expect([err.code, err.phase, err.isAddressFailure]).toEqual(['NO_FILE_DESCRIPTORS', 'connect', false])
    }
    expect(r.logs).toEqual(['error: proxy is out of file descriptors: upstream connects fail in the proxy, not at the upstream, whose addresses stay in rotation'])
    expect(r.logFields[0]).toMatchObject({ address: '127.0.2.1:8080', failed_connects: 1 })
    expect(String(r.logFields[0]!.fix)).toContain('LimitNOFILE')
    r.clock.t += 10_000
    await rejection(r.pool.dialDetached(a))
    expect(r.logs.length).toBe(2)
    expect(r.logFields[1]).toMatchObject({ failed_connects: 3 })
    expect(a).toMatchObject({ open: 0, inFlight: 0, ejectedUntilMonoMs: 0, consecutiveFailures: 0 })
  })

  test('a dial that throws something else is CONNECT_FAILED', async () => {
    const r = rig({}, { dial: () => Promise.reject(new Error('EHOSTUNREACH')) })
    r.pool.start()
    const err = await rejection(r.pool.acquire(r.pool.addresses.get('127.0.2.1')!))
    expect(err.code).toBe('CONNECT_FAILED')
    expect(err.phase).toBe('connect')
  })

  test('dialDetached counts an opened connection, open until it closes whatever handlers its owner sets, and does not pool it', async () => {
    const r = rig()
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const conn = await r.pool.dialDetached(a)
    expect(conn).toBe(r.conns[0]!)
    expect(r.pool.connectsTotal).toBe(1)
    expect(a).toMatchObject({ connectsOpened: 1, open: 1, inFlight: 0, idle: [] })
    let heard = 0
    conn.handlers = { data() {}, drain() {}, close: () => void heard++ }
    r.conns[0]!.peerClose()
    expect(heard).toBe(1)
    expect(a.open).toBe(0)
  })

  test('a tunnel\'s connection is held to max_conns_per_address: an idle one makes room, with none it is POOL_TIMEOUT at once (outside review, thirteenth round)', async () => {
    const r = rig({ max_conns_per_address: '1' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    // An idle keep-alive connection fills the one slot: it is closed for the tunnel.
    const got = await r.pool.acquire(a)
    got.connection.releaseUnused()
    expect(a.idle).toHaveLength(1)
    await r.pool.dialDetached(a)
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(a.open).toBe(1)
    // Now every connection is a tunnel's: the next upgrade does not wait.
    const err = await rejection(r.pool.dialDetached(a))
    expect(err.code).toBe('POOL_TIMEOUT')
    expect(a.open).toBe(1)
  })

  test('dialDetached failures are RequestFailures too', async () => {
    const r = rig({}, { dial: () => Promise.reject(new DialError('CONNECT_REFUSED', 'scripted')) })
    r.pool.start()
    const err = await rejection(r.pool.dialDetached(r.pool.addresses.get('127.0.2.1')!))
    expect(err.code).toBe('CONNECT_REFUSED')
  })
})

describe('max_conns_per_address', () => {
  test('acquire waits for a free connection and fails with POOL_TIMEOUT after connect_timeout', async () => {
    const r = rig({ max_conns_per_address: '1', connect_timeout: '20ms' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    await r.pool.acquire(a)
    const err = await rejection(r.pool.acquire(a))
    expect(err.code).toBe('POOL_TIMEOUT')
    expect(err.phase).toBe('connect')
    expect(err.isAddressFailure).toBe(false)
    expect(r.dials).toHaveLength(1)
    expect(a).toMatchObject({ open: 1, inFlight: 1 })
    expect(a.waiters).toHaveLength(0)
  })

  /** At max_conns_per_address 1: one connection taken, and a second acquire waiting for it. */
  async function oneTakenOneWaiting() {
    const r = rig({ max_conns_per_address: '1', connect_timeout: '5s' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const first = await r.pool.acquire(a)
    const got: { second?: AcquiredConnection } = {}
    const waiting = r.pool.acquire(a).then((c) => (got.second = c))
    await flush()
    return { r, a, first, got, waiting }
  }

  test('a waiting acquire gets the connection the moment it is released', async () => {
    const { r, a, first, got, waiting } = await oneTakenOneWaiting()
    expect(got.second).toBeUndefined()
    expect(a.waiters).toHaveLength(1)
    await exchangeOnce(first.connection)
    await within(waiting)
    expect(got.second?.reused).toBe(true)
    expect(got.second?.connection).toBe(first.connection)
    expect(r.dials).toHaveLength(1)
  })

  test('a released connection goes to the waiter, not to a request of the same turn (a pipelined one)', async () => {
    const { r, a, first, got, waiting } = await oneTakenOneWaiting()
    expect(a.waiters).toHaveLength(1)
    // The request path answers from the upstream's own event and, in the same turn, may dispatch
    // the client's next pipelined request: it must not find the connection idle.
    const p = first.connection.exchange({ method: 'GET', target: '/', headers: [['host', 'origin.test']], body: null, bodyLength: undefined, maxBodyBytes: 0 }, { headerTimeoutMs: 5000, idleTimeoutMs: 0 })
    first.connection.conn.handlers.data(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n', 'latin1'))
    expect(r.pool.takeIdle(a)).toBeUndefined()
    expect(a.idle).toHaveLength(0)
    await p
    await within(waiting)
    expect(got.second?.connection).toBe(first.connection)
    expect(got.second?.reused).toBe(true)
    expect(a).toMatchObject({ open: 1, inFlight: 1 })
    expect(r.dials).toHaveLength(1)
  })

  test('a waiter for an address DNS removes is let go at once, to try another: no new connection to the removed address', async () => {
    const { r, a, got, waiting } = await oneTakenOneWaiting()
    expect(a.waiters).toHaveLength(1)
    r.source.set([B])
    const err = await rejection(waiting)
    expect(err.code).toBe('NO_ADDRESS')
    expect(err.phase).toBe('connect')
    expect(err.isAddressFailure).toBe(false)
    expect(got.second).toBeUndefined()
    // Only the first connection ever went to it (an outside review saw 8 fresh dials to a removed address).
    expect(r.dials.filter((d) => d.address === '127.0.2.1')).toHaveLength(1)
  })

  test('a failed dial frees the slot for a waiter', async () => {
    // The first dial is refused, the second succeeds.
    const r = rig({ max_conns_per_address: '1', connect_timeout: '5s' }, { dial: (_o, n) => (n === 1 ? Promise.reject(new DialError('CONNECT_REFUSED', 'scripted')) : undefined) })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const first = r.pool.acquire(a)
    const second = r.pool.acquire(a)
    // The second is at the limit (the first dial is still pending): it waits.
    expect(a.waiters).toHaveLength(1)
    expect((await rejection(first)).code).toBe('CONNECT_REFUSED')
    const got = await within(second)
    expect(got.reused).toBe(false)
    expect(a).toMatchObject({ open: 1, inFlight: 1 })
  })
})

describe('prewarm', () => {
  test('opens `prewarm` idle connections to each address on start', async () => {
    const r = rig({ prewarm: '2' }, { addresses: [A, B] })
    r.pool.start()
    await flush()
    expect(r.dials.map((d) => d.address).sort()).toEqual(['127.0.2.1', '127.0.2.1', '127.0.2.2', '127.0.2.2'])
    for (const s of r.pool.addresses.values()) expect(s).toMatchObject({ open: 2, inFlight: 0, requests: 0 })
    for (const s of r.pool.addresses.values()) expect(s.idle).toHaveLength(2)
    // The first request reuses a pre-warmed connection.
    const got = r.pool.takeIdle(r.pool.addresses.get('127.0.2.1')!)
    expect(got?.reused).toBe(true)
  })

  test('an address added later is pre-warmed too', async () => {
    const r = rig({ prewarm: '1' }, { addresses: [A] })
    r.pool.start()
    r.source.set([A, B])
    await flush()
    expect(r.pool.addresses.get('127.0.2.2')!.idle).toHaveLength(1)
  })

  test('a failed pre-warm leaves nothing behind and throws nowhere', async () => {
    const r = rig({ prewarm: '1' }, { dial: () => Promise.reject(new DialError('CONNECT_REFUSED', 'scripted')) })
    r.pool.start()
    await flush()
    const a = r.pool.addresses.get('127.0.2.1')!
    expect(r.dials).toHaveLength(1)
    expect(a).toMatchObject({ open: 0, inFlight: 0, failures: 0 })
    expect(a.idle).toHaveLength(0)
  })
})

describe('reportFailure / reportSuccess', () => {
  test('the ejection is logged with why the connect failed, not only its code (which certificate check)', () => {
    const r = rig({}, { addresses: [A] })
    r.pool.start()
    const err = toRequestFailure(new DialError('TLS_FAILED', 'TLS handshake failed: certificate has expired'), r.pool.addresses.get('127.0.2.1')!)
    r.pool.reportFailure(r.pool.addresses.get('127.0.2.1')!, err)
    const i = r.logs.indexOf('warn: upstream address ejected')
    expect(r.logFields[i]).toMatchObject({ error: 'TLS_FAILED' })
    expect(String(r.logFields[i]?.detail)).toContain('certificate has expired')
  })

  test('a connect failure ejects per the policy and asks the source to re-resolve', () => {
    const r = rig({ fail_threshold: '2', eject_time: '1s' }, { addresses: [A, B] })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const err = new RequestFailure('CONNECT_REFUSED', 'connect', 'scripted')
    r.pool.reportFailure(a, err)
    expect(r.source.refreshes).toBe(1)
    expect(a.ejectedUntilMonoMs).toBe(0)
    r.pool.reportFailure(a, err)
    expect(a.ejectedUntilMonoMs).toBe(T0 + 1000)
    expect(r.source.refreshes).toBe(2)
    expect(r.pool.stats().find((s) => s.address === '127.0.2.1')).toMatchObject({ healthy: false, ejected_for_ms: 1000, failures: 2 })
    for (let i = 0; i < 5; i++) expect(r.pool.pick()?.address).toBe('127.0.2.2')
    expect(r.pool.hasHealthyAddress()).toBe(true)
    expect(r.logs).toContain('warn: upstream address ejected')
  })

  test('after the ejection a success recovers the address', () => {
    const r = rig({ eject_time: '1s' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    r.pool.reportFailure(a, new RequestFailure('CONNECT_TIMEOUT', 'connect', 'scripted'))
    expect(r.pool.hasHealthyAddress()).toBe(false)
    // The only address is the fallback even while ejected.
    expect(r.pool.pick()).toBe(a)
    r.clock.t += 1000
    expect(r.pool.pick()).toBe(a)
    expect(a.halfOpen).toBe(true)
    r.pool.reportSuccess(a)
    expect(a).toMatchObject({ halfOpen: false, ejectedUntilMonoMs: 0 })
    expect(r.pool.hasHealthyAddress()).toBe(true)
    expect(r.logs).toContain('info: upstream address recovered')
  })
})

describe('idle sweep', () => {
  const sweep = (pool: UpstreamPool) => (pool as unknown as { sweep(): void }).sweep()

  test('closes idle connections past pool_idle_timeout and keeps younger ones', async () => {
    const r = rig({ pool_idle_timeout: '30s', max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const c1 = await r.pool.acquire(a)
    const c2 = await r.pool.acquire(a)
    await exchangeOnce(c1.connection)
    r.clock.t += 20_000
    await exchangeOnce(c2.connection)
    r.clock.t += 15_000
    sweep(r.pool)
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(r.conns[1]!.destroyed).toBe(false)
    expect(a.idle).toEqual([c2.connection])
    expect(a.open).toBe(1)
  })
})

describe("the upstream's Keep-Alive timeout", () => {
  const sweep = (pool: UpstreamPool) => (pool as unknown as { sweep(): void }).sweep()
  const said = (seconds: number) => `HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=${seconds}, max=100\r\n\r\n`

  test('an idle connection is reused up to a second before the timeout its upstream said, not after', async () => {
    const r = rig({ pool_idle_timeout: '60s', max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const first = await r.pool.acquire(a)
    await exchangeOnce(first.connection, said(5))
    r.clock.t += 3_999
    const again = r.pool.takeIdle(a)
    expect(again?.connection).toBe(first.connection)
    await exchangeOnce(again!.connection, said(5))
    // 4 s idle: the upstream (which closes at 5 s) may be closing it now; a new one is dialled.
    r.clock.t += 4_000
    const next = await r.pool.acquire(a)
    expect(next.reused).toBe(false)
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(r.dials.length).toBe(2)
  })

  test('the sweep closes such a connection at the same time; pool_idle_timeout still bounds a longer one', async () => {
    const r = rig({ pool_idle_timeout: '10s', max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const short = await r.pool.acquire(a)
    const long = await r.pool.acquire(a)
    await exchangeOnce(short.connection, said(3))
    await exchangeOnce(long.connection, said(3600))
    r.clock.t += 2_000
    sweep(r.pool)
    expect(r.conns[0]!.destroyed).toBe(true)
    expect(r.conns[1]!.destroyed).toBe(false)
    r.clock.t += 8_000
    sweep(r.pool)
    expect(r.conns[1]!.destroyed).toBe(true)
    expect(a.open).toBe(0)
  })

  test('timeout=1 keeps a connection for half a second (it was never pooled: a whole second of margin left none); timeout=0 for none', async () => {
    const r = rig({ pool_idle_timeout: '60s', max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const c = await r.pool.acquire(a)
    await exchangeOnce(c.connection, said(1))
    expect(r.conns[0]!.destroyed).toBe(false)
    r.clock.t += 499
    const again = r.pool.takeIdle(a)
    expect(again?.connection).toBe(c.connection)
    await exchangeOnce(again!.connection, said(1))
    r.clock.t += 500
    expect(r.pool.takeIdle(a)).toBeUndefined()
    expect(r.conns[0]!.destroyed).toBe(true)
    const z = await r.pool.acquire(a)
    await exchangeOnce(z.connection, said(0))
    expect(r.conns[1]!.destroyed).toBe(true)
    expect(a.idle).toEqual([])
    expect(a.open).toBe(0)
  })

  test('a later response without the field lifts the limit (pool_idle_timeout again)', async () => {
    const r = rig({ pool_idle_timeout: '60s', max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const c = await r.pool.acquire(a)
    await exchangeOnce(c.connection, said(2))
    const again = r.pool.takeIdle(a)!
    await exchangeOnce(again.connection)
    r.clock.t += 30_000
    expect(r.pool.takeIdle(a)?.connection).toBe(c.connection)
  })
})

describe('probe (a request that may not be replayed)', () => {
  test('an idle connection whose peer has news (a FIN the close handler has not seen) is closed, not taken; without probe it is taken', async () => {
    const r = rig({ max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    const c1 = await r.pool.acquire(a)
    const c2 = await r.pool.acquire(a)
    await exchangeOnce(c1.connection)
    await exchangeOnce(c2.connection)
    r.conns[1]!.news = true // the newest idle one, popped first
    expect(r.pool.takeIdle(a, true)?.connection).toBe(c1.connection)
    expect(r.conns[1]!.destroyed).toBe(true)
    expect(a.open).toBe(1)
    await exchangeOnce(c1.connection)
    r.conns[0]!.news = true
    expect(r.pool.takeIdle(a)?.connection).toBe(c1.connection)
  })

  test('acquire with probe dials a new connection when the only idle one has news', async () => {
    const r = rig({ max_connection_age: '0' })
    r.pool.start()
    const a = r.pool.addresses.get('127.0.2.1')!
    await exchangeOnce((await r.pool.acquire(a)).connection)
    r.conns[0]!.news = true
    const next = await r.pool.acquire(a, false, true)
    expect(next.reused).toBe(false)
    expect(r.dials.length).toBe(2)
    expect(r.conns[0]!.destroyed).toBe(true)
  })
})

describe('waitForRescue', () => {
  test('resolves when DNS adds an address, not before', async () => {
    const r = rig({}, { addresses: [A] })
    r.pool.start()
    let done = false
    const p = r.pool.waitForRescue(2_000).then(() => (done = true))
    // Nothing is coming from a static source and nothing is ejected: it resolves at once.
    await p
    expect(done).toBe(true)
    // With a refresh pending, it waits for the address set to change.
    const finishRefresh = pendRefresh(r)
    let woke = false
    const waiting = r.pool.waitForRescue(2_000).then(() => (woke = true))
    await Bun.sleep(5)
    expect(woke).toBe(false)
    r.source.set([A, B])
    await waiting
    expect(woke).toBe(true)
    expect(r.pool.pick(new Set([A.address]))?.address).toBe(B.address)
    finishRefresh()
  })

  test('resolves when the pending refresh finishes, even with nothing new', async () => {
    const r = rig({}, { addresses: [A] })
    r.pool.start()
    const finishRefresh = pendRefresh(r)
    let woke = false
    const waiting = r.pool.waitForRescue(2_000).then(() => (woke = true))
    await Bun.sleep(5)
    expect(woke).toBe(false)
    finishRefresh()
    await waiting
    expect(woke).toBe(true)
  })

  test('an ejection of an address the request tried is not waited for; another one is', async () => {
    const r = rig({}, { addresses: [A, B] })
    r.pool.start()
    const a = r.pool.addresses.get(A.address)!
    const b = r.pool.addresses.get(B.address)!
    a.ejectedUntilMonoMs = r.clock.t + 60_000
    b.ejectedUntilMonoMs = r.clock.t + 20
    // A's ejection (one minute) is beyond the 2 s budget, and B was tried: nothing to wait for.
    const first = await Promise.race([r.pool.waitForRescue(2_000, new Set([B.address])).then(() => 'resolved'), Bun.sleep(500).then(() => 'still waiting')])
    expect(first).toBe('resolved')
    let woke = false
    const waiting = r.pool.waitForRescue(2_000, new Set([A.address])).then(() => (woke = true))
    await Bun.sleep(1)
    expect(woke).toBe(false)
    await waiting
    expect(woke).toBe(true)
  })
})
