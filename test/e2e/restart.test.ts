/**
 * A restart as an operator does it, with the compiled binary: SIGTERM the running proxy and start
 * the next one at once, while a request of the old one is still in flight. The next one must be
 * able to take every address the old one listened on for traffic (its listen address, and with
 * automatic HTTPS the HTTP-01 port) as the drain begins, not when it ends.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import * as tls from 'node:tls'
import { StateStore } from '../../src/acme/store.ts'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { makeCerts } from '../support/certs.ts'
import { freeTcpPort } from '../support/pebble.ts'
import { testDir } from '../support/temp-dir.ts'
import { holdingOrigin } from '../support/holding-origin.ts'

const servers: { stop(force?: boolean): unknown }[] = []
beforeAll(() => {
  ensureBinary()
})
afterAll(() => servers.forEach((s) => s.stop(true)))

test('with [acme] and a stored certificate: the next proxy starts while the old one drains; the old one finishes its request (second opinion, twentieth round)', async () => {
  const { origin, release } = holdingOrigin()
  servers.push(origin)
  const certs = makeCerts(['a.test'])
  const stateDir = testDir('proxy-restart-')
  const directory = `https://127.0.0.1:${await freeTcpPort()}/dir` // nothing there: the stored certificate is served
  new StateStore(stateDir, directory).saveCert('a.test', { certPem: readFileSync(certs.certFile, 'utf8'), keyPem: readFileSync(certs.keyFile, 'utf8') })
  const [listen, http] = [await freeTcpPort(), await freeTcpPort()]
  const args = ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', `127.0.0.1:${listen}`, '--admin', 'off', '--access-log', 'off', '--acme', 'a.test', '--acme-directory', directory, '--acme-http-listen', `127.0.0.1:${http}`, '--state-dir', stateDir]
  const get = (path: string) =>
    new Promise<{ sock: tls.TLSSocket; got: () => string }>((resolve, reject) => {
      let got = ''
      const sock = tls.connect({ host: '127.0.0.1', port: listen, servername: 'a.test', ca: certs.ca }, () => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`)
        resolve({ sock, got: () => got })
      })
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')))
      sock.once('error', reject)
    })
  const old = await startProxyProcess(args, BIN)
  let next: Awaited<ReturnType<typeof startProxyProcess>> | undefined
  try {
    const inFlight = await get('/hold')
    for (let i = 0; i < 100 && !inFlight.got().includes('head;'); i++) await Bun.sleep(20)
    expect(inFlight.got()).toContain('head;')
    const oldExit = old.stop()
    for (let i = 0; i < 100 && !/draining/.test(old.stderr()); i++) await Bun.sleep(20)
    // The old one held the HTTP-01 port until its drain ended: this start failed E_LISTEN there.
    next = await startProxyProcess(args, BIN)
    const fresh = await get('/new')
    for (let i = 0; i < 100 && !fresh.got().includes('next'); i++) await Bun.sleep(20)
    expect(fresh.got()).toContain('next')
    const redirect = await fetch(`http://127.0.0.1:${http}/x`, { headers: { host: 'a.test' }, redirect: 'manual' })
    expect(redirect.status).toBe(308)
    expect(old.child.exitCode).toBeNull() // still draining
    release()
    for (let i = 0; i < 100 && !inFlight.got().endsWith('head;\r\n0\r\n\r\n') && !/head;$/.test(inFlight.got()); i++) await Bun.sleep(20)
    expect(await oldExit).toBe(0)
    expect(inFlight.got()).toStartWith('HTTP/1.1 200')
    fresh.sock.destroy()
    inFlight.sock.destroy()
  } finally {
    release()
    if (next) expect(await next.stop()).toBe(0)
    await old.stop()
  }
}, 60_000)
