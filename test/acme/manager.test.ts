/**
 * CertificateManager against a scripted CA (a fetch function) and a clock the test holds still:
 * what a failed attempt does to the schedule when the state directory or the CA misbehaves.
 * Issuance against a real CA is in renewal.test.ts (pebble).
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CertificateManager, type Clock } from '../../src/acme/manager.ts'
import { StateStore } from '../../src/acme/store.ts'
import { makeCerts } from '../support/certs.ts'
import { testDir } from '../support/temp-dir.ts'

const root = testDir('proxy-acme-manager-')
afterAll(() => rmSync(root, { recursive: true, force: true }))
let dirs = 0

/** Time stands still; timers are recorded, never fired (the test calls check()). */
class StillClock implements Clock {
  readonly armedMs: number[] = []
  constructor(public nowMs = Date.now()) {}
  now(): number {
    return this.nowMs
  }
  setTimeout(_fn: () => void, ms: number): unknown {
    this.armedMs.push(ms)
    return 0
  }
  clearTimeout(): void {}
}

interface Logged {
  level: string
  msg: string
  fields: Record<string, unknown>
}

function setup(fetchFn: typeof fetch, domains = ['a.test']) {
  const logs: Logged[] = []
  const clock = new StillClock()
  const m = new CertificateManager({
    domains,
    directoryUrl: 'https://ca.test/dir',
    email: undefined,
    caPem: undefined,
    stateDir: join(root, `state-${++dirs}`),
    log: (level, msg, fields) => void logs.push({ level, msg, fields: fields ?? {} }),
    clock,
    random: () => 0.5,
    fetch: fetchFn,
  })
  return { m, logs, clock }
}

/** A CA that never answers: `reached` resolves at its first request, `release` fails that request. */
function hangingCa() {
  let called!: () => void
  const reached = new Promise<void>((r) => (called = r))
  let fail!: (err: Error) => void
  const hanging = ((() => {
    called()
    return new Promise((_, reject) => (fail = reject))
  }) as unknown) as typeof fetch
  return { hanging, reached, release: (err: Error) => fail(err) }
}

/** A CA whose directory, nonces and account work; `order` answers newOrder. */
function scriptedCa(order: () => Response): typeof fetch {
  let n = 0
  return (async (input: string | URL | Request) => {
    const url = String(input)
    const headers = { 'replay-nonce': `nonce-${++n}` }
    if (url === 'https://ca.test/dir') return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' })
    if (url === 'https://ca.test/nonce') return new Response(null, { headers })
    if (url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { ...headers, location: 'https://ca.test/acct/1' } })
    if (url === 'https://ca.test/order') {
      const res = order()
      res.headers.set('replay-nonce', headers['replay-nonce'])
      return res
    }
    return new Response('unexpected', { status: 500 })
  }) as typeof fetch
}

const unreachable = (async () => {
  throw new Error('connection refused')
}) as unknown as typeof fetch

describe('CertificateManager failures', () => {
  test('an unwritable state directory is one clear, counted failure with back-off, not a spin', async () => {
    const { m, logs, clock } = setup(unreachable)
    // As root, permissions do not stop writes: a file where the directory was does (ENOTDIR),
    // and takes the same path as EROFS or EACCES.
    rmSync(m.store.caDir, { recursive: true })
    writeFileSync(m.store.caDir, 'not a directory')
    await m.check()
    const st = m.status()
    expect(st.failures).toBe(1)
    expect(st.lastError).toContain(m.store.caDir) // made again before each order (a removed one comes back), so this one says it cannot be created
    expect(st.lastError).toContain('writable')
    const errors = logs.filter((l) => l.level === 'error')
    expect(errors.length).toBe(1)
    expect(errors[0]!.fields.retry_in_s).toBe(60)
    // Re-armed for the state directory watch, not for "now".
    expect(clock.armedMs.at(-1)).toBe(1000)
    // Checked again before the back-off ends: no new attempt, no new log line.
    await m.check()
    expect(m.status().failures).toBe(1)
    expect(logs.filter((l) => l.level === 'error').length).toBe(1)
    m.close()
  })

  test('the back-off runs on the monotonic clock: a wall clock stepped back neither stretches it nor, stepped forward, skips it (review, twenty-second round)', async () => {
    const { m, logs, clock } = setup(unreachable)
    let monoMs = 1_000
    ;(clock as StillClock & { monoNow(): number }).monoNow = () => monoMs
    await m.check()
    expect(m.status().failures).toBe(1)
    expect(logs.filter((l) => l.level === 'error')[0]!.fields.retry_in_s).toBe(60)
    // The wall clock jumps an hour ahead, 1 s passes: the back-off still stands.
    clock.nowMs += 3_600_000
    monoMs += 1_000
    await m.check()
    expect(m.status().failures).toBe(1)
    // It steps back two hours (NTP correcting it), and the minute passes: the next attempt is made.
    clock.nowMs -= 7_200_000
    monoMs += 60_000
    await m.check()
    expect(m.status().failures).toBe(2)
    expect(logs.filter((l) => l.level === 'error')[1]!.fields.retry_in_s).toBe(120)
    m.close()
  })

  test('close() during an order releases the order lock (a restart must not wait for it)', async () => {
    const { hanging, reached, release } = hangingCa()
    const { m } = setup(hanging)
    const checking = m.check()
    await reached // the order has the lock and waits for the CA's directory
    const lock = join(m.store.caDir, 'order.lock')
    expect(existsSync(lock)).toBe(true)
    m.close()
    expect(existsSync(lock)).toBe(false)
    release(new Error('shut down'))
    await checking
  })

  test('stop() as a drain begins keeps the lock of an order under way until that order ends: a successor waits for its certificate, it does not order too (review, twentieth round)', async () => {
    const { hanging, reached, release } = hangingCa()
    const { m, clock } = setup(hanging)
    const checking = m.check()
    await reached
    const lock = join(m.store.caDir, 'order.lock')
    m.stop()
    expect(existsSync(lock)).toBe(true)
    expect(new StateStore(m.store.stateDir, 'https://ca.test/dir').tryLock(clock.nowMs)).toBe(false)
    release(new Error('the CA answered at last'))
    await checking
    expect(existsSync(lock)).toBe(false) // the order ended: let go
    const armed = clock.armedMs.length
    await m.check() // stopped: no check starts
    expect(clock.armedMs.length).toBe(armed)
    m.close()
  })

  test('stop() while a check asks the CA for renewal information: no order follows (review, twentieth round)', async () => {
    const certs = makeCerts(['a.test'])
    const stateDir = join(root, `state-${++dirs}`)
    new StateStore(stateDir, 'https://ca.test/dir').saveCert('a.test', { certPem: readFileSync(certs.certFile, 'utf8'), keyPem: readFileSync(certs.keyFile, 'utf8') })
    let release!: () => void
    let reached!: () => void
    const asked = new Promise<void>((r) => (reached = r))
    const calls: string[] = []
    const ca = (async (url: string, init?: RequestInit) => {
      calls.push(`${init?.method ?? 'GET'} ${url}`)
      if (url === 'https://ca.test/dir') {
        reached()
        await new Promise<void>((r) => (release = r))
        return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order', renewalInfo: 'https://ca.test/ari' })
      }
      return new Response('{"type":"urn:ietf:params:acme:error:serverInternal"}', { status: 500, headers: { 'content-type': 'application/problem+json' } })
    }) as unknown as typeof fetch
    const clock = new StillClock(new X509Certificate(readFileSync(certs.certFile)).validToDate.getTime() - 86_400_000) // a day left: due
    const m = new CertificateManager({ domains: ['a.test'], directoryUrl: 'https://ca.test/dir', email: undefined, caPem: undefined, stateDir, log: () => {}, clock, random: () => 0.5, fetch: ca })
    const checking = m.check()
    await asked
    m.stop() // the drain begins while the check waits on the CA
    release()
    await checking
    expect(calls.filter((c) => /\/(nonce|acct|order)/.test(c))).toEqual([]) // the renewal information's own GET may go; no account, nonce or order
    expect(existsSync(join(m.store.caDir, 'order.lock'))).toBe(false)
    m.close()
  })

  test('an order that outlasts the lock\'s stale time (a CA slow at every step) keeps its lock: no other process takes it as left behind', async () => {
    const { hanging, reached, release } = hangingCa()
    const timers: { fn: () => void; ms: number }[] = []
    const clock = new StillClock()
    clock.setTimeout = (fn: () => void, ms: number) => (timers.push({ fn, ms }), timers.length - 1)
    const logs: Logged[] = []
    const m = new CertificateManager({ domains: ['a.test'], directoryUrl: 'https://ca.test/dir', email: undefined, caPem: undefined, stateDir: join(root, `state-${++dirs}`), log: (level, msg, fields) => void logs.push({ level, msg, fields: fields ?? {} }), clock, random: () => 0.5, fetch: hanging })
    const checking = m.check()
    await reached // the order has the lock and waits for the CA
    const other = new StateStore(m.store.stateDir, 'https://ca.test/dir')
    // Twenty minutes pass, a minute at a time, the order still waiting on the CA.
    for (let minute = 1; minute <= 20; minute++) {
      clock.nowMs += 60_000
      const due = timers.splice(0).filter((t) => t.ms <= 60_000)
      for (const t of due) t.fn()
    }
    // Held, and said so a minute ago: not stale (15 minutes) for another process on this host.
    expect(other.tryLock(clock.nowMs)).toBe(false)
    m.close()
    expect(other.tryLock(clock.nowMs)).toBe(true)
    other.unlock()
    release(new Error('shut down'))
    await checking
  })

  test("a CA down for maintenance (directory or nonce answering 503 with Retry-After) is retried when it says, not in a minute", async () => {
    for (const down of ['https://ca.test/dir', 'https://ca.test/nonce']) {
      const maintenance = (async (input: string | URL | Request) => {
        const url = String(input)
        if (url === down) return new Response('down for maintenance', { status: 503, headers: { 'retry-after': '3600' } })
        if (url === 'https://ca.test/dir') return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' })
        return new Response('unexpected', { status: 500 })
      }) as typeof fetch
      const { m, logs } = setup(maintenance)
      await m.check()
      expect(m.status().failures).toBe(1)
      expect(m.status().lastError).toContain('503')
      expect([down, logs.find((l) => l.level === 'error')!.fields.retry_in_s]).toEqual([down, 3600])
      m.close()
    }
  })

  test("a CA's Retry-After beyond six hours is capped at six hours, and the log says so", async () => {
    const rateLimited = () => new Response(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'slow down' }), { status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '99999999999999999999' } })
    const { m, logs } = setup(scriptedCa(rateLimited))
    await m.check()
    expect(m.status().failures).toBe(1)
    const failure = logs.find((l) => l.level === 'error')!
    expect(failure.fields.retry_in_s).toBe(6 * 3600)
    const capped = logs.find((l) => l.msg.includes('capped'))
    expect(capped?.fields.capped_to_s).toBe(6 * 3600)
    expect(capped?.fields.retry_after_s).toBeGreaterThan(1e19)
    m.close()
  })

  test('a certificate directory that will not take a file fails the attempt before the order: the CA issues nothing to throw away', async () => {
    let orders = 0
    const { m } = setup(scriptedCa(() => (orders++, new Response('{}', { status: 500 }))))
    // As root, permissions do not stop writes: a file where the certificate's directory goes does.
    writeFileSync(m.store.certDir('a.test'), 'not a directory')
    await m.check()
    expect(m.status().failures).toBe(1)
    expect(m.status().lastError).toContain(`cannot save the certificate in ${m.store.certDir('a.test')}`)
    expect(orders).toBe(0)
    m.close()
  })

  test('an account the CA no longer knows (accountDoesNotExist) is registered anew at the next attempt, without a restart', async () => {
    let accounts = 0
    const ca = scriptedCa(() => new Response(JSON.stringify({ type: 'urn:ietf:params:acme:error:accountDoesNotExist', detail: 'account not found' }), { status: 400, headers: { 'content-type': 'application/problem+json' } }))
    const counting = (async (input: string | URL | Request, init?: RequestInit) => {
      if (String(input) === 'https://ca.test/acct') accounts++
      return ca(input as string, init)
    }) as typeof fetch
    const { m, clock } = setup(counting)
    await m.check()
    expect([m.status().failures, accounts]).toEqual([1, 1])
    clock.nowMs += 3600_000 // past the back-off
    await m.check()
    expect([m.status().failures, accounts]).toEqual([2, 2])
    m.close()
  })

  test('a certificate another process stored ends the failures: the gauge no longer fires and the log says so', async () => {
    const { m, logs } = setup(unreachable)
    await m.check()
    expect(m.status().failures).toBe(1)
    const certs = makeCerts(['a.test'], [])
    m.store.saveCert('a.test', { certPem: certs.cert, keyPem: certs.key })
    await m.check()
    expect(m.current()?.cert).toBe(certs.cert)
    expect(m.status().failures).toBe(0)
    expect(m.status().lastError).toBeUndefined()
    const picked = logs.find((l) => l.msg.includes('picked up the certificate another process ordered'))
    expect(picked?.fields.failures_before).toBe(1)
    m.close()
  })

  test('a stored key that is not the certificate\'s is said at start, with the path, before it is replaced', () => {
    const { m, logs } = setup(unreachable)
    const a = makeCerts(['a.test'], [])
    const other = makeCerts(['b.test'], [])
    m.store.saveCert('a.test', { certPem: a.cert, keyPem: other.key })
    m.start()
    const line = logs.find((l) => l.msg.startsWith('acme: no usable certificate stored'))
    expect(line?.level).toBe('warn')
    expect(line?.fields.stored).toBe(`${m.store.certDir('a.test')}/key.pem is not the key of cert.pem`)
    m.close()
  })
})
