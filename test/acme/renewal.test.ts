/**
 * Renewal against pebble, in process, with a clock the test moves (timers never fire; the test
 * calls check()): the renewed certificate is swapped into the live own listener while a
 * connection opened before the swap keeps working on the old one; with the ACME server down
 * at renewal time the old certificate keeps being served and the failure is counted; and two
 * managers sharing a state directory (workers) make one order between them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { certInfo } from '../../src/acme/cert-info.ts'
import { Http01Server } from '../../src/acme/http01.ts'
import { CertificateManager, type Clock } from '../../src/acme/manager.ts'
import { createLogger } from '../../src/lib/logger.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { Harness } from '../support/harness.ts'
import { Pebble, pebbleAvailable } from '../support/pebble.ts'
import { testDir } from '../support/temp-dir.ts'

const available = pebbleAvailable()

/** Real time plus an offset the test moves; its timers never fire. */
class JumpClock implements Clock {
  offsetMs = 0
  now(): number {
    return Date.now() + this.offsetMs
  }
  setTimeout(): unknown {
    return 0
  }
  clearTimeout(): void {}
}

let logText = ''
const log = createLogger((l) => (logText += l), 'debug')

/** A kept-alive HTTPS connection to the proxy; request() sends one GET on it and reads the reply. */
async function connect(port: number, ca: string, servername: string): Promise<{ sock: tls.TLSSocket; serial: string; request(): Promise<string> }> {
  const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => resolve(s))
    s.once('error', reject)
  })
  const serial = sock.getPeerCertificate().serialNumber
  return {
    sock,
    serial,
    request: () =>
      new Promise((resolve, reject) => {
        let got = ''
        const onData = (d: Buffer) => {
          got += d.toString()
          const m = /content-length: (\d+)\r\n/i.exec(got)
          const end = got.indexOf('\r\n\r\n')
          if (m && end >= 0 && got.length >= end + 4 + Number(m[1])) {
            sock.off('data', onData)
            resolve(got.slice(end + 4))
          }
        }
        sock.on('data', onData)
        sock.once('error', reject)
        sock.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\n\r\n`)
      }),
  }
}

describe.skipIf(!available)('ACME renewal', () => {
  let pebble: Pebble
  let http01: Http01Server
  const h = new Harness()
  const dirs: string[] = []
  /** The one HTTP-01 listener asks each test's manager in turn. */
  const answerers: { lookup(token: string): string | undefined }[] = []

  beforeAll(async () => {
    const challenges = { lookup: (token: string) => answerers.map((a) => a.lookup(token)).find((v) => v !== undefined) }
    // Bound first, on a port the kernel picks, and held: pebble is then told it. (A port found
    // free and bound later could be taken in between by another socket of the run.)
    http01 = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 443, challenges, reusePort: false, log }).start()
    pebble = await new Pebble({ httpPort: http01.port }).start()
  })
  afterAll(async () => {
    await http01?.close()
    await h.closeAll()
    pebble?.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  const stateDir = () => {
    const d = testDir('proxy-acme-renew-')
    dirs.push(d)
    return d
  }
  const manager = (dir: string, clock: Clock, domains = ['renew.test']) =>
    new CertificateManager({ domains, directoryUrl: pebble.directoryUrl, email: undefined, caPem: pebble.caPem, stateDir: dir, log, clock, pollIntervalMs: 50 })

  test('two managers on one state directory (workers) make one order; the other picks the certificate up', async () => {
    const dir = stateDir()
    const clock = new JumpClock()
    const a = manager(dir, clock)
    const b = manager(dir, clock)
    h.track(() => a.close())
    h.track(() => b.close())
    // The HTTP-01 listener asks b only: a's answers reach it through the state directory.
    answerers.push(b.challenges)
    const before = (logText.match(/acme: order created/g) ?? []).length
    await Promise.all([a.check(), b.check()])
    expect((logText.match(/acme: order created/g) ?? []).length - before).toBe(1)
    const winner = a.current() ? a : b
    const other = winner === a ? b : a
    expect(winner.current()).toBeDefined()
    expect(other.current()).toBeUndefined()
    await other.check()
    expect(other.current()?.cert).toBe(winner.current()!.cert)
    expect((logText.match(/acme: order created/g) ?? []).length - before).toBe(1)
  }, 30_000)

  test('a certificate the state directory refuses once it is issued is served from memory, and saved at a later check', async () => {
    const dir = stateDir()
    const clock = new JumpClock()
    const m = manager(dir, clock, ['unsaved.test'])
    h.track(() => m.close())
    answerers.push(m.challenges)
    // The directory takes files (the check before the order passes), but not cert.pem: a directory holds its place.
    const certFile = join(m.store.certDir('unsaved.test'), 'cert.pem')
    mkdirSync(join(certFile, 'in-the-way'), { recursive: true })
    const before = (logText.match(/acme: order created/g) ?? []).length
    await m.check()
    const served = m.current()
    expect(served).toBeDefined()
    expect(logText).toContain('acme: serving the new certificate from memory, but it could not be saved')
    expect(m.status().failures).toBe(0)
    rmSync(certFile, { recursive: true })
    await m.check()
    expect(readFileSync(certFile, 'utf8')).toBe(served!.cert)
    expect(m.current()?.cert).toBe(served!.cert)
    expect(m.status().lastError).toBeUndefined() // /status no longer shows the save's error
    expect((logText.match(/acme: order created/g) ?? []).length - before).toBe(1)
    expect(existsSync(join(m.store.certDir('unsaved.test'), 'key.pem'))).toBe(true)
  }, 30_000)

  test('a restart with one more name serves the stored certificate until the one for all names arrives', async () => {
    const dir = stateDir()
    const clock = new JumpClock()
    const before = manager(dir, clock)
    h.track(() => before.close())
    answerers.push(before.challenges)
    await before.check()
    const old = before.current()!.cert
    before.close()

    const m = manager(dir, clock, ['renew.test', 'more.test'])
    h.track(() => m.close())
    answerers.push(m.challenges)
    const changes: string[] = []
    m.onChange((c) => changes.push(c.cert))
    m.start()
    expect(m.current()?.cert).toBe(old)
    expect(logText).toContain('lacks some names; ordering one for all of them names=renew.test,more.test missing=more.test')
    await m.check()
    expect(changes.length).toBe(2)
    expect(certInfo(m.current()!.cert).names.sort()).toEqual(['more.test', 'renew.test'])
    // Stored for the next start, which serves it with no new order.
    const again = manager(dir, clock, ['renew.test', 'more.test'])
    h.track(() => again.close())
    again.start()
    expect(again.current()?.cert).toBe(m.current()!.cert)
    expect(again.status().renewAtMs!).toBeGreaterThan(Date.now())
  }, 30_000)

  test('renewal swaps the certificate on the live listener; an open connection keeps working; the CA down keeps the old one', async () => {
    const clock = new JumpClock()
    const m = manager(stateDir(), clock)
    h.track(() => m.close())
    const changes: string[] = []
    m.onChange((c) => changes.push(c.cert))
    answerers.push(m.challenges)
    m.start()
    await m.check()
    expect(changes.length).toBe(1)
    const root = await pebble.rootPem()

    const origin = h.origin({ fetch: () => new Response('from origin') })
    const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
    const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), dynamicTls: () => m.current() }).start()
    h.track(() => proxy.close())
    expect(proxy.url.startsWith('https://')).toBe(true)

    const before = await connect(proxy.port, root, 'renew.test')
    h.track(() => void before.sock.destroy())
    expect(await before.request()).toBe('from origin')
    expect(before.serial).toBe(new X509Certificate(changes[0]!).serialNumber)

    // Jump past the renewal time: a new order, swapped in.
    const renewAt = m.status().renewAtMs!
    expect(renewAt).toBeGreaterThan(Date.now())
    clock.offsetMs = renewAt - Date.now() + 60_000
    await m.check()
    expect(changes.length).toBe(2)
    const after = await connect(proxy.port, root, 'renew.test')
    h.track(() => void after.sock.destroy())
    expect(after.serial).toBe(new X509Certificate(changes[1]!).serialNumber)
    expect(after.serial).not.toBe(before.serial)
    expect(await after.request()).toBe('from origin')
    // The connection from before the swap is still open and still served.
    expect(await before.request()).toBe('from origin')
    expect(before.sock.getPeerCertificate().serialNumber).toBe(before.serial)

    // The ACME server goes away; at the next renewal time the old certificate stays.
    pebble.stopPebble()
    clock.offsetMs = m.status().renewAtMs! - Date.now() + 60_000
    await m.check()
    const st = m.status()
    expect(st.failures).toBe(1)
    expect(st.lastError).toContain('cannot reach the ACME server')
    expect(st.daysLeft).toBeGreaterThan(0)
    expect(logText).toContain('acme: renewal failed; still serving the current certificate')
    expect(changes.length).toBe(2)
    const still = await connect(proxy.port, root, 'renew.test')
    h.track(() => void still.sock.destroy())
    expect(still.serial).toBe(after.serial)
    expect(await still.request()).toBe('from origin')
    // Backed off: an immediate check does not try again.
    await m.check()
    expect(m.status().failures).toBe(1)
  }, 30_000)
})
