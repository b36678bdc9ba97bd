/**
 * The admin listener's front door (admin.ts, workers-admin.ts), over raw loopback sockets so
 * that the request line and Host are exactly as a client sends them: a request without Host.
 */
import { afterEach, expect, test } from 'bun:test'
import { AdminServer } from '../../../src/proxy/observe/admin.ts'
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
  const server = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAt: Date.now() }).start()
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
