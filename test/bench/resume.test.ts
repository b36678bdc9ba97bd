/**
 * TLS session resumption in `proxy bench`: the first connection pays a full handshake, later
 * ones offer its session and are resumed, --no-tls-resume makes every one full, and the counts
 * agree with the server's own view (node:tls isSessionReused(), nginx's $ssl_session_reused),
 * over TLS 1.3 and TLS 1.2.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { Nginx, nginxAvailable } from './nginx.ts'
import { bench } from './run-bench.ts'
import { testDir } from '../support/temp-dir.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
})


/** A minimal HTTP/1.1 server over node:tls that records, per connection, whether the server resumed a session. */
async function tlsOrigin(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ port: number; resumed: boolean[] }> {
  const certs = makeCerts(['resume.test'], ['127.0.0.1'])
  const resumed: boolean[] = []
  const server: Server = createServer({ cert: certs.cert, key: certs.key, maxVersion, ALPNProtocols: ['http/1.1'] }, (s: TLSSocket) => {
    resumed.push(s.isSessionReused())
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString('latin1')
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(end + 4)
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  closers.push(() => server.close())
  return { port: (server.address() as { port: number }).port, resumed }
}

function common(port: number): string[] {
  return [`https://resume.test:${port}/`, '--resolve', `resume.test:${port}:127.0.0.1`, '--cacert', makeCerts(['resume.test'], ['127.0.0.1']).caFile]
}

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('node:tls server, %s', (version) => {
  test('first connection full, later ones resumed; the server agrees; --samples records tls_resumed', async () => {
    const o = await tlsOrigin(version)
    const dir = testDir('proxy-bench-')
    const file = join(dir, 'samples.ndjson')
    const r = await bench([...common(o.port), '-n', '6', '--no-keepalive', '--json', '--samples', file])
    expect(r.code).toBe(0)
    expect(r.json.connection.tls_version).toBe(version)
    expect([r.json.cold.requests, r.json.resumed.requests, r.json.warm.requests]).toEqual([1, 5, 0])
    expect(r.json.connections.tls_resumed).toBe(5)
    expect(o.resumed).toEqual([false, true, true, true, true, true])
    // A resumed handshake still has a tls phase of its own; the cold one is in its own group.
    expect(r.json.resumed.phases.tls.n).toBe(5)
    expect(r.json.cold.phases.tls.n).toBe(1)
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.tls_resumed)).toEqual([false, true, true, true, true, true])
    expect(lines.map((l) => l.kind)).toEqual(['cold', 'resumed', 'resumed', 'resumed', 'resumed', 'resumed'])
  })

  test('--no-tls-resume: every handshake is full, and the server agrees', async () => {
    const o = await tlsOrigin(version)
    const r = await bench([...common(o.port), '-n', '4', '--no-keepalive', '--no-tls-resume', '--json'])
    expect([r.json.cold.requests, r.json.resumed.requests]).toEqual([4, 0])
    expect(o.resumed).toEqual([false, false, false, false])
  })
})

test('text output names the three kinds apart', async () => {
  const o = await tlsOrigin('TLSv1.3')
  const r = await bench([...common(o.port), '-n', '3', '--no-keepalive'])
  expect(r.out).toContain('cold (new connection, full TLS handshake) (1 requests')
  expect(r.out).toContain('resumed (new connection, resumed TLS session) (2 requests')
  expect(r.out).toContain('warm (reused connection) (0 requests')
  expect(r.out).toContain('2 resumed a TLS session')
})

test('keep-alive: one handshake, then warm requests; no resumption needed', async () => {
  const o = await tlsOrigin('TLSv1.3')
  const r = await bench([...common(o.port), '-n', '5', '--json'])
  expect([r.json.cold.requests, r.json.resumed.requests, r.json.warm.requests]).toEqual([1, 0, 4])
  expect(o.resumed).toEqual([false])
})

describe.skipIf(!nginxAvailable())('nginx: the counts agree with $ssl_session_reused', () => {
  for (const version of ['TLSv1.3', 'TLSv1.2']) {
    test(version, async () => {
      const certs = makeCerts(['resume.test'], ['127.0.0.1'])
      const ng = await new Nginx().start({ cert: certs.cert, key: certs.key, http2: false, protocols: version })
      closers.push(() => ng.close())
      const r = await bench([...common(ng.port), '-n', '8', '--no-keepalive', '--json'])
      expect(r.code).toBe(0)
      const log = await ng.linesWhen(8)
      expect(log).toHaveLength(8)
      expect(log.every((l) => l.sslProtocol === version)).toBe(true)
      expect(log[0]!.sessionReused).toBe(false)
      expect(log.filter((l) => l.sessionReused).length).toBe(r.json.resumed.requests)
      expect(r.json.resumed.requests).toBe(7)
      ng.clearLog()
      const full = await bench([...common(ng.port), '-n', '4', '--no-keepalive', '--no-tls-resume', '--json'])
      expect(full.json.cold.requests).toBe(4)
      const after = await ng.linesWhen(4)
      expect(after).toHaveLength(4)
      expect(after.filter((l) => l.sessionReused)).toHaveLength(0)
    })
  }
})
