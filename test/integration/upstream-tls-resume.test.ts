/**
 * TLS session resumption toward an https upstream (runtime/tls-sessions.ts): each new upstream
 * connection offers the session the last one to that address got, as nginx's
 * proxy_ssl_session_reuse. A node:tls origin that closes every connection after one answer makes
 * each request dial; the origin says which handshakes resumed (TLS 1.3 tickets and TLS 1.2
 * sessions), and the pool counts them (admin: proxy_upstream_tls_resumed_total). A reload reads
 * ca_file again: new contents at the same path are a new pool, with no session of the old trust.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type TLSSocket } from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An HTTPS/1.1 origin of one answer per connection; `resumed` holds each handshake's isSessionReused(). */
async function closingTlsOrigin(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ port: number; resumed: boolean[] }> {
  const certs = makeCerts(['origin.test'])
  const resumed: boolean[] = []
  const sockets = new Set<TLSSocket>()
  const server = createServer({ cert: certs.cert, key: certs.key, maxVersion, minVersion: maxVersion }, (s) => {
    sockets.add(s)
    resumed.push(s.isSessionReused())
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'))
  })
  // TLS 1.2 resumption by session ID needs the server's session cache.
  const cache = new Map<string, Buffer>()
  server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    cache.set(id.toString('hex'), data)
    done()
  })
  server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => done(null, cache.get(id.toString('hex')) ?? null))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, resumed }
}

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('%s upstream', (version) => {
  test('new upstream connections resume the last session to the address; the pool counts them', async () => {
    const certs = makeCerts(['origin.test'])
    const origin = await closingTlsOrigin(version)
    const { url, proxy } = h.proxy({ upstream: { url: `https://origin.test:${origin.port}`, ca_file: certs.caFile } }, { addresses: [{ address: '127.0.0.1', family: 4 }] })
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${url}/r${i}`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('ok')
    }
    // The first handshake is full; the pool may have pre-warmed one more before it.
    expect(origin.resumed.length).toBeGreaterThanOrEqual(4)
    expect(origin.resumed[0]).toBe(false)
    expect(origin.resumed.slice(-3)).toEqual([true, true, true])
    const pool = proxy.upstreams()[0]!.pool
    expect(pool.tlsResumedTotal).toBe(origin.resumed.filter(Boolean).length)
  })
})

test('a pool under other trust settings does not offer another pool\'s sessions', async () => {
  const certs = makeCerts(['origin.test'])
  const origin = await closingTlsOrigin('TLSv1.3')
  const verified = h.proxy({ upstream: { url: `https://origin.test:${origin.port}`, ca_file: certs.caFile } }, { addresses: [{ address: '127.0.0.1', family: 4 }] })
  expect((await fetch(`${verified.url}/a`)).status).toBe(200)
  const before = origin.resumed.length
  const insecure = h.proxy({ upstream: { url: `https://origin.test:${origin.port}`, insecure: true } }, { addresses: [{ address: '127.0.0.1', family: 4 }] })
  expect((await fetch(`${insecure.url}/b`)).status).toBe(200)
  // The insecure pool's first handshake is full: sessions belong to the pool that made them.
  expect(origin.resumed[before]).toBe(false)
})

test('a reload reads ca_file again: a CA taken out at the same path is not trusted, nor its sessions resumed', async () => {
  const certs = makeCerts(['origin.test'])
  const other = makeCerts(['other.test'])
  const origin = await closingTlsOrigin('TLSv1.3')
  const caFile = join(testDir('proxy-ca-reload-'), 'ca.pem')
  copyFileSync(certs.caFile, caFile)
  const flags = { upstream: { url: `https://origin.test:${origin.port}`, ca_file: caFile } }
  const { url, proxy } = h.proxy(flags, { addresses: [{ address: '127.0.0.1', family: 4 }] })
  for (let i = 0; i < 2; i++) expect((await fetch(`${url}/before${i}`)).status).toBe(200)
  expect(origin.resumed.at(-1)).toBe(true)

  // The origin's CA replaced by another in the same file, then a reload with the same config.
  copyFileSync(other.caFile, caFile)
  await proxy.reload(h.config(flags))
  const before = origin.resumed.length
  const res = await fetch(`${url}/after`)
  expect(res.status).toBe(502)
  expect(await res.text()).toContain('TLS handshake with upstream failed')
  expect(origin.resumed.length).toBe(before) // no handshake completed, resumed or not
})
