/**
 * `proxy bench` flags written as for curl, each checked against curl 7.88 on loopback (curl -v
 * against a local server): `--resolve '*:port:addr'` (any host on that port; the host's own
 * entry wins). Names are pinned or in /etc/hosts (localhost): no DNS query is sent.
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness } from '../support/harness.ts'
import { bench } from './run-bench.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('--resolve "*:port:addr" pins every host on that port, as curl; the host\'s own entry wins in either order, and another port is not pinned', async () => {
  const hosts: string[] = []
  // On 127.0.0.2: reached only through a pin (localhost is 127.0.0.1 in /etc/hosts).
  const s = h.origin({ hostname: '127.0.0.2', fetch: (req) => (hosts.push(req.headers.get('host')!), new Response('ok')) })
  const where = (r: Awaited<ReturnType<typeof bench>>) => ({ status: r.json?.status, address: r.json?.connection?.remote_address })
  const pinned = await bench([`http://localhost:${s.port}/`, '--resolve', `*:${s.port}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(pinned)).toEqual({ status: { '200': 1 }, address: '127.0.0.2' })
  expect(hosts).toEqual([`localhost:${s.port}`])
  // An IP literal in the URL is pinned too (curl: "Trying 127.0.0.2" for http://127.0.0.1:port/).
  const literal = await bench([`http://127.0.0.1:${s.port}/`, '--resolve', `*:${s.port}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(literal)).toEqual({ status: { '200': 1 }, address: '127.0.0.2' })
  // The host's own entry wins over the wildcard, in either order.
  for (const order of [
    ['--resolve', `*:${s.port}:127.0.0.1`, '--resolve', `nowhere.test:${s.port}:127.0.0.2`],
    ['--resolve', `nowhere.test:${s.port}:127.0.0.2`, '--resolve', `*:${s.port}:127.0.0.1`],
  ]) {
    const r = await bench([`http://nowhere.test:${s.port}/`, ...order, '--timeout', '2s', '--json'])
    expect({ order, ...where(r) }).toEqual({ order, status: { '200': 1 }, address: '127.0.0.2' })
  }
  // Another port's wildcard does not apply: localhost is taken from /etc/hosts.
  const local = h.origin({ fetch: () => new Response('ok') })
  const localPort = local.port!
  const other = await bench([`http://localhost:${localPort}/`, '--resolve', `*:${localPort === 65535 ? 1 : localPort + 1}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(other)).toEqual({ status: { '200': 1 }, address: '127.0.0.1' })
})
