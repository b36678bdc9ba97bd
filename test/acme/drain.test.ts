/**
 * Automatic HTTPS as a drain begins (AutomaticHttps.stopListening, orderEnd): the HTTP-01 port
 * closes at once unless an order of ours is under way, which keeps it (the CA's validation must
 * reach it) until it ends; a check that is only asking the CA for renewal information does not
 * hold it (a successor started at once would exit E_LISTEN). A scripted CA that never answers.
 */
import { afterAll, expect, test } from 'bun:test'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { AutomaticHttps } from '../../src/acme/automatic-https.ts'
import { StateStore } from '../../src/acme/store.ts'
import { makeCerts } from '../support/certs.ts'
import { freeTcpPort } from '../support/pebble.ts'
import { testDir } from '../support/temp-dir.ts'

const root = testDir('proxy-acme-drain-')
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Whether host:port can be listened on now (nothing holds it). */
function free(port: number): Promise<boolean> {
  const srv = createServer()
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false))
    srv.listen({ host: '127.0.0.1', port }, () => srv.close(() => resolve(true)))
  })
}

/** A CA whose every request waits until release(); `reached` once the first came. */
function stuckCa() {
  let reachedNow!: () => void
  const reached = new Promise<void>((r) => (reachedNow = r))
  const waiting: (() => void)[] = []
  const fetchFn = (async () => {
    reachedNow()
    await new Promise<void>((r) => waiting.push(r))
    return new Response('{"type":"urn:ietf:params:acme:error:serverInternal"}', { status: 500, headers: { 'content-type': 'application/problem+json' } })
  }) as unknown as typeof fetch
  return { fetchFn, reached, release: () => waiting.splice(0).forEach((r) => r()) }
}

async function automatic(name: string, stored: boolean, fetchFn: typeof fetch) {
  const stateDir = join(root, name)
  if (stored) {
    const certs = makeCerts(['a.test'])
    new StateStore(stateDir, 'https://ca.test/dir').saveCert('a.test', { certPem: readFileSync(certs.certFile, 'utf8'), keyPem: readFileSync(certs.keyFile, 'utf8') })
  }
  const port = await freeTcpPort()
  const logs: string[] = []
  const a = new AutomaticHttps(
    { domains: ['a.test'], email: undefined, directoryUrl: 'https://ca.test/dir', caFile: undefined, httpListen: { host: '127.0.0.1', port }, stateDir },
    { httpsPort: () => 443, reusePort: false, log: (_l, msg) => void logs.push(msg), manager: { fetch: fetchFn } },
  ).start()
  return { a, port, logs }
}

test('a check that only asks for renewal information does not hold the HTTP-01 port: it closes as the drain begins (review, twentieth round)', async () => {
  const ca = stuckCa()
  const { a, port } = await automatic('ari', true, ca.fetchFn)
  await ca.reached // the stored certificate's renewal information is being asked for
  expect(a.manager.ordering).toBe(false)
  await a.stopListening()
  expect(await free(port)).toBe(true)
  ca.release()
  await a.close()
})

test('an order under way keeps the HTTP-01 port and the order lock until it ends; after the drain it is waited for, within what is left of drain_timeout', async () => {
  const ca = stuckCa()
  const { a, port, logs } = await automatic('order', false, ca.fetchFn)
  await ca.reached // nothing stored: an order, waiting on the CA
  expect(a.manager.ordering).toBe(true)
  await a.stopListening()
  expect(await free(port)).toBe(false)
  await a.orderEnd(100) // the order does not end: waited for no longer than asked
  expect(logs).toContain('acme: waiting for the order under way before exiting')
  const ended = a.orderEnd(5000)
  ca.release()
  await ended
  for (let i = 0; i < 50 && !(await free(port)); i++) await Bun.sleep(20)
  expect(await free(port)).toBe(true) // closed once the order ended
  expect(a.manager.ordering).toBe(false)
  await a.close()
})
