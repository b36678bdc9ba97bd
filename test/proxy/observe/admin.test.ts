/**
 * The admin listener's front door (admin.ts, workers-admin.ts), over raw loopback sockets so
 * that the request line and Host are exactly as a client sends them: a request without Host, and
 * a Host that names another site (DNS rebinding).
 */
import { afterEach, expect, test } from 'bun:test'
import { AdminServer, refuseForeignHost } from '../../../src/proxy/observe/admin.ts'
import { RequestMetrics } from '../../../src/proxy/observe/metrics.ts'
import { WorkersAdmin } from '../../../src/proxy/observe/workers-admin.ts'
import { staticSource } from '../../../src/proxy/upstream/address-source.ts'
import { ProxyServer } from '../../../src/proxy/server.ts'
import { Harness, rawExchange } from '../../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An AdminServer on a loopback port of its own, in front of a proxy that is not started. */
function adminServer(admin: { listen?: string; token?: string } = {}): { port: number } {
  const config = h.config({ upstream: { url: 'http://127.0.0.1:1' }, admin: { listen: '127.0.0.1:0', ...admin } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]) })
  h.track(() => proxy.close())
  const server = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => server.close())
  return { port: Number(new URL(server.url!).port) }
}

function workersAdmin(): { port: number } {
  const config = h.config({ upstream: { url: 'http://127.0.0.1:1' }, admin: { listen: '127.0.0.1:0' } })
  const server = new WorkersAdmin(config.admin, { workers: () => [], draining: () => false }).start()
  h.track(() => server.close())
  return { port: Number(new URL(server.url!).port) }
}

const send = (port: number, head: string) => rawExchange(port, head, '127.0.0.1', (close) => h.track(close))
const statusLine = (reply: string) => reply.slice(0, reply.indexOf('\r\n'))
const body = (reply: string) => reply.slice(reply.indexOf('\r\n\r\n') + 4)

test('HTTP/1.0 without Host (allowed there, RFC 9112 §3.2; bare health checkers send it) is answered, not a 500', async () => {
  const { port } = adminServer()
  const health = await send(port, 'GET /healthz HTTP/1.0\r\n\r\n')
  expect(statusLine(health)).toBe('HTTP/1.1 200 OK')
  expect(body(health)).toBe('ok\n')
  expect(statusLine(await send(port, 'GET /metrics HTTP/1.0\r\n\r\n'))).toBe('HTTP/1.1 200 OK')
  expect(statusLine(await send(port, 'GET /nope HTTP/1.0\r\n\r\n'))).toBe('HTTP/1.1 404 Not Found')
  // The supervisor's admin (--workers) reads the target the same way.
  const workers = await send(workersAdmin().port, 'GET /healthz HTTP/1.0\r\n\r\n')
  expect(statusLine(workers)).toBe('HTTP/1.1 503 Service Unavailable')
  expect(body(workers)).toBe('not ok: no worker answers (0 configured)\n')
})

test('a Host that makes no URL (a zone id, a port past 65535, a bare IPv6 address) gets 400, not 500 "internal error" logged nowhere (outside IPv6 sweep)', async () => {
  const plain = adminServer()
  const tokened = adminServer({ token: 'secret-token' }) // with a token the Host is not checked against loopback
  const workers = workersAdmin()
  for (const host of ['127.0.0.1:99999', 'localhost:65536', '[::1%25lo]', '[::1]x']) {
    expect([host, statusLine(await send(plain.port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))]).toEqual([host, 'HTTP/1.1 400 Bad Request'])
    expect([host, statusLine(await send(workers.port, `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))]).toEqual([host, 'HTTP/1.1 400 Bad Request'])
  }
  for (const host of ['::1', '::1:9090', 'a:99999']) {
    const reply = await send(tokened.port, `GET /status HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer secret-token\r\nConnection: close\r\n\r\n`)
    expect([host, statusLine(reply)]).toEqual([host, 'HTTP/1.1 400 Bad Request'])
    expect(body(reply)).toContain('invalid Host')
  }
})

const get = (path: string, host: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`

test('on loopback, a Host not naming loopback (a page after DNS rebinding) gets 403; loopback names are answered', async () => {
  // The single admin's /healthz is 200; the supervisor's, with no worker, 503: either way, not 403.
  for (const [{ port }, healthy] of [[adminServer(), 'HTTP/1.1 200 OK'], [workersAdmin(), 'HTTP/1.1 503 Service Unavailable']] as const) {
    // What a browser sends once attacker.example re-resolves to 127.0.0.1: same origin to it.
    for (const host of [`attacker.example:${port}`, 'attacker.example', 'localhost.attacker.example', '127.0.0.1.nip.io', '192.0.2.1']) {
      const reply = await send(port, get('/status', host))
      expect([host, statusLine(reply)]).toEqual([host, 'HTTP/1.1 403 Forbidden'])
      expect(body(reply)).toContain('DNS rebinding')
    }
    // Nor can it purge: the refusal comes before the endpoint.
    expect(statusLine(await send(port, 'DELETE /cache?prefix=http%3A%2F%2Fa%2F HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n'))).toBe('HTTP/1.1 403 Forbidden')
    // Without rebinding, another site's form POST is a 405, and a script's DELETE needs a preflight that is not granted.
    if (healthy.endsWith('200 OK')) {
      const form = 'POST /cache?prefix=http%3A%2F%2Fa%2F HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://attacker.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=1'
      expect(statusLine(await send(port, form))).toBe('HTTP/1.1 405 Method Not Allowed')
      const preflight = await send(port, get('/cache', '127.0.0.1', 'Origin: http://attacker.example\r\nAccess-Control-Request-Method: DELETE\r\n').replace('GET', 'OPTIONS'))
      expect(preflight.toLowerCase()).not.toContain('access-control-allow')
    }
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', '127.1.2.3:9', `localhost:${port}`, 'LOCALHOST', 'localhost.', `[::1]:${port}`, '[0:0:0:0:0:0:0:1]']) {
      expect([host, statusLine(await send(port, get('/healthz', host)))]).toEqual([host, healthy])
    }
  }
})

test('an admin beyond loopback does not check Host (a scraper names it as it likes; the token guards it)', () => {
  const named = new Request('http://proxy-1.internal:9090/metrics', { headers: { host: 'proxy-1.internal:9090' } })
  for (const listen of ['0.0.0.0', '::', '198.51.100.5', 'admin.internal']) expect([listen, refuseForeignHost(named, listen, undefined)]).toEqual([listen, undefined])
  for (const listen of ['127.0.0.1', '::1', 'localhost']) expect([listen, refuseForeignHost(named, listen, undefined)?.status]).toEqual([listen, 403])
  // No listener (the handler called directly) and no Host: nothing to check against.
  expect(refuseForeignHost(named, undefined, undefined)).toBeUndefined()
  expect(refuseForeignHost(new Request('http://127.0.0.1/'), '127.0.0.1', undefined)).toBeUndefined()
})

test('with a token, Host is not checked on loopback either: a rebinding page cannot send the token, and a local proxy may name the admin as it likes', () => {
  const viaNginx = new Request('http://status.example/metrics', { headers: { host: 'status.example' } })
  for (const listen of ['127.0.0.1', '::1', 'localhost']) expect([listen, refuseForeignHost(viaNginx, listen, 's3cret')]).toEqual([listen, undefined])
})

test('with a token, /healthz and /readyz answer a health check that sends none (a cloud balancer\'s cannot), with their status and no details; the rest is 401 (eighteenth round of review)', async () => {
  // A proxy whose only upstream has no address: /readyz is 503 and its details name the upstream.
  const config = h.config({ upstream: { url: 'http://127.0.0.1:1' }, admin: { listen: '127.0.0.1:0', token: 'secret-token' } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([]) })
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() })
  const get = async (path: string, auth?: string) => {
    const res = admin.handle(new Request(`http://127.0.0.1/${path}`, { headers: auth ? { authorization: auth } : {} }))
    return { status: res.status, text: await res.text() }
  }
  expect(await get('healthz')).toEqual({ status: 200, text: 'ok\n' })
  expect(await get('readyz')).toEqual({ status: 503, text: 'not ready\n' })
  // ?upstream=NAME is not read without the token: an unknown name is the whole's answer, not a 404 (second opinion).
  expect(await get('readyz?upstream=nope')).toEqual({ status: 503, text: 'not ready\n' })
  expect((await get('readyz?upstream=nope', 'Bearer secret-token')).status).toBe(404)
  expect((await get('readyz', 'Bearer secret-token')).text).toContain('no healthy address for upstream default')
  for (const path of ['status', 'metrics', 'cache?url=http://a/']) expect([path, (await get(path)).status]).toEqual([path, 401])
  expect((await get('status', 'Bearer wrong')).status).toBe(401)

  // The supervisor's admin (--workers) the same way.
  const workers = new WorkersAdmin({ ...config.admin }, { workers: () => [], draining: () => false })
  const w = await workers.handle(new Request('http://127.0.0.1/healthz'))
  expect([w.status, await w.text()]).toEqual([503, 'not ok\n'])
  expect((await workers.handle(new Request('http://127.0.0.1/metrics'))).status).toBe(401)
})
