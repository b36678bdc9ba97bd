/** Routing (table tests and end to end), access-log records, and the /metrics text format. */
import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { AdminServer, exposedAdminWarning } from '../../src/proxy/observe/admin.ts'
import { createAccessLog, formatRecord } from '../../src/proxy/observe/access-log.ts'
import { ProxyHandler } from '../../src/proxy/handler.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { connect } from 'node:net'
import { RequestMetrics } from '../../src/proxy/observe/metrics.ts'
import { UpstreamPool } from '../../src/proxy/upstream/pool.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const ROUTES = `
[server]
default_upstream = "web"
[upstream.api]
url = "http://127.0.0.1:1"
[upstream.web]
url = "http://127.0.0.1:2"
[upstream.static]
url = "http://127.0.0.1:3"
[[route]]
host = "*.api.example"
upstream = "api"
[[route]]
host = "cdn.example"
path_prefix = "/assets/"
upstream = "static"
[[route]]
path_prefix = "/api/"
upstream = "api"
`

describe('route matching', () => {
  const config = resolveConfig(parseConfigText(ROUTES, 'routes.toml'))
  const pools = new Map(Object.values(config.upstreams).map((u) => [u.name, new UpstreamPool(u, staticSource([]))]))
  const handler = new ProxyHandler(config, pools, [])
  afterEach(() => {})
  test.each([
    ['v1.api.example', '/x', 'api'],
    ['api.example', '/x', 'web'], // "*.api.example" needs a label before the suffix
    ['cdn.example', '/assets/a.png', 'static'],
    ['cdn.example', '/other', 'web'],
    ['www.example', '/api/users', 'api'],
    ['www.example', '/apix', 'web'],
    ['www.example', '/', 'web'],
  ])('%s%s -> %s', (host, path, upstream) => expect(handler.router.route(host, path).upstream.name).toBe(upstream))
  test('cleanup', () => pools.forEach((p) => p.close()))
})

test('routes end to end: host and path pick the upstream', async () => {
  const api = h.origin({ fetch: () => new Response('api') })
  const web = h.origin({ fetch: () => new Response('web') })
  const config = resolveConfig(
    parseConfigText(
      `[server]\nlisten = "127.0.0.1:0"\ndefault_upstream = "web"\n[admin]\nlisten = "off"\n[upstream.api]\nurl = "http://127.0.0.1:${api.port}"\n[upstream.web]\nurl = "http://127.0.0.1:${web.port}"\n[[route]]\npath_prefix = "/api/"\nupstream = "api"\n[[route]]\nhost = "*.api.test"\nupstream = "api"\n`,
      'e2e.toml',
    ),
  )
  const proxy = new ProxyServer(config, { sourceFor: (u) => staticSource([{ address: u.host, family: 4 }]) }).start()
  h.track(() => proxy.close())
  expect(await (await fetch(`${proxy.url}/api/x`)).text()).toBe('api')
  expect(await (await fetch(`${proxy.url}/x`)).text()).toBe('web')
  expect(await (await fetch(`${proxy.url}/x`, { headers: { host: 'v2.api.test' } })).text()).toBe('api')
})

test('a path whose route depends on how the origin reads it is refused with 400, on HTTP/1.1 and before any upstream', async () => {
  const seen: string[] = []
  const api = h.origin({ fetch: (req) => (seen.push(`api ${new URL(req.url).pathname}`), new Response('api')) })
  const web = h.origin({ fetch: (req) => (seen.push(`web ${new URL(req.url).pathname}`), new Response('web')) })
  const config = resolveConfig(
    parseConfigText(
      `[server]\nlisten = "127.0.0.1:0"\ndefault_upstream = "web"\n[admin]\nlisten = "off"\n[upstream.api]\nurl = "http://127.0.0.1:${api.port}"\n[upstream.web]\nurl = "http://127.0.0.1:${web.port}"\n[[route]]\npath_prefix = "/api/"\nupstream = "api"\n`,
      'ambiguous.toml',
    ),
  )
  const proxy = new ProxyServer(config, { sourceFor: (u) => staticSource([{ address: u.host, family: 4 }]) }).start()
  h.track(() => proxy.close())
  // A raw request: fetch would normalize the path before sending it.
  const raw = (target: string) =>
    new Promise<string>((resolve, reject) => {
      let got = ''
      const s = connect(proxy.port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
      s.on('data', (d) => (got += d.toString('latin1')))
      s.on('close', () => resolve(got))
      s.on('error', reject)
      s.setTimeout(5000, () => s.destroy())
    })
  expect(await raw('/x//../api/y')).toStartWith('HTTP/1.1 400 ')
  expect(await raw('/x/..%2Fapi/y')).toStartWith('HTTP/1.1 400 ')
  // Both readings take one route: served as before.
  expect(await raw('/x/../api/y')).toEndWith('api')
  expect(await raw('/x//y')).toEndWith('web')
  expect(seen).toEqual(['api /api/y', 'web /x//y']) // Bun.serve's URL resolves the dot segment
})

describe('access log records', () => {
  test('a proxied, a retried and a failed request; reuse is flagged', async () => {
    const good = h.origin({ hostname: '127.0.0.2', fetch: () => new Response('hello') })
    const dead = Bun.serve({ hostname: '127.0.0.3', port: good.port, fetch: () => new Response('') })
    dead.stop(true)
    const { url, proxy } = h.proxy(
      { upstream: { url: `http://origin.test:${good.port}`, retries: '1' } },
      { addresses: [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }] },
    )
    const pool = proxy.pool('default')!
    // Force the first pick to the dead address, so the request is retried.
    const realPick = pool.pick.bind(pool)
    let first = true
    pool.pick = (exclude) => (first ? ((first = false), pool.addresses.get('127.0.0.3')) : realPick(exclude))
    await (await fetch(`${url}/one`, { method: 'POST', body: 'abc' })).text()
    await (await fetch(`${url}/two`)).text()
    pool.pick = () => pool.addresses.get('127.0.0.3')
    await (await fetch(`${url}/three`)).text()
    await waitFor(() => h.records.length >= 3)
    const lines = h.records.map((r) => JSON.parse(formatRecord(r, 'json')) as RequestRecord)
    const [retried, reused, failed] = lines
    for (const l of lines) for (const k of ['ts', 'request_id', 'client', 'method', 'host', 'path', 'status', 'bytes_in', 'bytes_out', 'duration_ms', 'retries']) expect(l).toHaveProperty(k)
    expect(retried!.retries).toBe(1)
    expect(retried!.status).toBe(200)
    expect(retried!.bytes_in).toBe(3)
    expect(retried!.bytes_out).toBe(5)
    expect(retried!.upstream_addr).toBe(`127.0.0.2:${good.port}`)
    expect(retried!.upstream_reused).toBe(false)
    expect(typeof retried!.upstream_connect_ms).toBe('number')
    expect(reused!.upstream_reused).toBe(true)
    expect(reused!.upstream_connect_ms).toBeUndefined()
    expect(typeof reused!.upstream_header_ms).toBe('number')
    expect(failed!.status).toBe(502)
    expect(failed!.error).toBe('CONNECT_REFUSED')
  })

  test('a retry that lands on a reused connection has no upstream_connect_ms, though an earlier attempt dialled (it kept that attempt\'s: seventeenth round)', async () => {
    const good = h.origin({ hostname: '127.0.0.2', fetch: () => new Response('hello') })
    // 127.0.0.4 takes each request and closes without an answer: the once-more on a new connection, then the other address.
    const closer = Bun.listen({ hostname: '127.0.0.4', port: good.port!, socket: { data: (s) => void s.end() } })
    h.track(() => closer.stop(true))
    const { url, proxy } = h.proxy(
      { upstream: { url: `http://origin.test:${good.port}`, retries: '1' } },
      { addresses: [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.4', family: 4 }] },
    )
    const pool = proxy.pool('default')!
    const realPick = pool.pick.bind(pool)
    pool.pick = () => pool.addresses.get('127.0.0.2')
    await (await fetch(`${url}/prime`)).text() // an idle connection to 127.0.0.2 in the pool
    let first = true
    pool.pick = (exclude) => (first ? ((first = false), pool.addresses.get('127.0.0.4')) : realPick(exclude))
    expect(await (await fetch(`${url}/x`)).text()).toBe('hello')
    await waitFor(() => h.records.length >= 2)
    const x = h.records.find((r) => r.path === '/x')!
    expect(x).toMatchObject({ status: 200, upstream_reused: true, upstream_addr: `127.0.0.2:${good.port}` })
    expect(x.upstream_connect_ms).toBeUndefined()
  })

  test('an unwritable access-log file is reported and traffic continues', async () => {
    const dir = testDir('proxy-log-')
    chmodSync(dir, 0o500)
    const warnings: string[] = []
    const log = createAccessLog({ accessLog: join(dir, 'sub', 'access.log'), format: 'json' }, (_l, msg) => warnings.push(msg))
    const origin = h.origin({ fetch: () => new Response('ok') })
    const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => log.write(r) } }).start()
    h.track(() => proxy.close())
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await fetch(proxy.url)).status)
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(await waitFor(() => warnings.length > 0)).toBe(true)
    expect(warnings[0]).toContain('access log cannot be written')
    await log.close()
  })

  test('a writable file gets one JSON line per request', async () => {
    const file = join(testDir('proxy-log-'), 'access.log')
    const log = createAccessLog({ accessLog: file, format: 'json' }, () => {})
    const origin = h.origin({ fetch: () => new Response('ok') })
    const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => log.write(r) } }).start()
    h.track(() => proxy.close())
    for (let i = 0; i < 5; i++) await (await fetch(`${proxy.url}/n${i}`)).text()
    await log.close()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.path)).toEqual(['/n0', '/n1', '/n2', '/n3', '/n4'])
  })
})

/** A strict-enough parser of the Prometheus text format 0.0.4 (HELP/TYPE, samples, labels). */
function parsePrometheus(text: string): Map<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }> {
  const families = new Map<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }>()
  let current: string | undefined
  for (const line of text.split('\n')) {
    if (line === '') continue
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line)
    if (m) continue
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (m) {
      if (families.has(m[1]!)) throw new Error(`duplicate TYPE for ${m[1]}`)
      families.set(m[1]!, { type: m[2]!, samples: [] })
      current = m[1]
      continue
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line)
    if (!m) throw new Error(`bad sample line: ${line}`)
    const name = m[1]!
    const base = name.replace(/_(bucket|sum|count)$/, '')
    const family = families.get(name) ?? families.get(base)
    if (!family || (current !== name && current !== base)) throw new Error(`sample ${name} outside its family`)
    const labels: Record<string, string> = {}
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy
      let lm: RegExpExecArray | null
      let end = 0
      while ((lm = re.exec(m[2])) !== null) {
        labels[lm[1]!] = lm[2]!
        end = re.lastIndex
      }
      if (end !== m[2].length) throw new Error(`bad labels: ${m[2]}`)
    }
    family.samples.push({ name, labels, value: Number(m[3]) })
  }
  return families
}

test('/metrics parses as Prometheus text and counts what happened; /status and /readyz', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const metrics = new RequestMetrics()
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, admin: { listen: '127.0.0.1:0' } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => metrics.observe(r) } }).start()
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics, startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  for (let i = 0; i < 7; i++) await (await fetch(proxy.url)).text()
  // One refused by the request checks: counted under reason="malformed", not as a proxied request.
  const sock = connect(proxy.port, '127.0.0.1')
  h.track(() => void sock.destroy())
  let answer = ''
  sock.on('data', (d) => (answer += d.toString('latin1')))
  sock.write('CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n')
  expect(await waitFor(() => answer.includes('\r\n\r\n'))).toBe(true)
  expect(answer.startsWith('HTTP/1.1 405')).toBe(true)
  await waitFor(() => (metrics.upstreams.get('default')?.total.count ?? 0) >= 8)
  const text = await (await fetch(`${admin.url}/metrics`)).text()
  const fams = parsePrometheus(text)
  const req = fams.get('proxy_requests_total')!
  expect(req.type).toBe('counter')
  expect(req.samples.find((s) => s.labels.class === '2xx')!.value).toBe(7)
  const hist = fams.get('proxy_request_duration_seconds')!
  expect(hist.type).toBe('histogram')
  // The 405 the proxy answered itself is in the access record too (so in the totals), under its code.
  expect(req.samples.find((s) => s.labels.class === '4xx')!.value).toBe(1)
  expect(fams.get('proxy_request_errors_total')!.samples.find((s) => s.labels.code === 'METHOD_NOT_ALLOWED')!.value).toBe(1)
  expect(hist.samples.find((s) => s.name.endsWith('_count'))!.value).toBe(8)
  expect(hist.samples.find((s) => s.labels.le === '+Inf')!.value).toBe(8)
  expect(fams.get('proxy_upstream_address_healthy')!.samples[0]!.value).toBe(1)
  expect(fams.get('proxy_upstream_connections_opened_total')!.samples[0]!.value).toBe(1)
  const refused = fams.get('proxy_client_requests_refused_total')!
  expect(refused.type).toBe('counter')
  expect(refused.samples.find((s) => s.labels.reason === 'malformed')!.value).toBe(1)
  expect(refused.samples.find((s) => s.labels.reason === 'overload')!.value).toBe(0)
  // HTTP/2 connections ended with an error code: the family is there, each code at 0 (no HTTP/2 here).
  const h2Errors = fams.get('proxy_http2_connection_errors_total')!
  expect(h2Errors.type).toBe('counter')
  expect(h2Errors.samples.find((s) => s.labels.code === 'ENHANCE_YOUR_CALM')!.value).toBe(0)
  expect(h2Errors.samples.every((s) => s.value === 0)).toBe(true)
  // The own listener counts its client connections.
  expect(fams.get('proxy_client_connections')?.type).toBe('gauge')
  const status = (await (await fetch(`${admin.url}/status`)).json()) as { upstreams: { default: { addresses: { requests: number }[] } } }
  expect(status.upstreams.default.addresses[0]!.requests).toBe(7)
  expect((await fetch(`${admin.url}/readyz`)).status).toBe(200)
  expect((await fetch(`${admin.url}/healthz`)).status).toBe(200)
})

test('the admin token is required when set', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, admin: { listen: '127.0.0.1:0', token: 's3cret' } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([]) })
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  expect((await fetch(`${admin.url}/status`)).status).toBe(401)
  expect((await fetch(`${admin.url}/status`, { headers: { authorization: 'Bearer wrong!' } })).status).toBe(401)
  expect((await fetch(`${admin.url}/status`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200)
  // The scheme's name is case-insensitive (RFC 9110 §11.1); the token is not.
  expect((await fetch(`${admin.url}/status`, { headers: { authorization: 'bearer s3cret' } })).status).toBe(200)
  expect((await fetch(`${admin.url}/status`, { headers: { authorization: 'Bearer S3CRET' } })).status).toBe(401)
  // Not ready: no address at all.
  expect((await fetch(`${admin.url}/readyz`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(503)
})

test('the read-only admin endpoints answer GET and HEAD; another method is a 405 with Allow; /cache keeps DELETE', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, admin: { listen: '127.0.0.1:0' } })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([]) })
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  for (const path of ['/metrics', '/status', '/healthz', '/readyz']) {
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const res = await fetch(`${admin.url}${path}`, { method })
      expect([path, method, res.status, res.headers.get('allow')]).toEqual([path, method, 405, 'GET, HEAD'])
    }
    expect((await fetch(`${admin.url}${path}`, { method: 'HEAD' })).status).not.toBe(405)
  }
  expect((await fetch(`${admin.url}/healthz`)).status).toBe(200)
  const purge = await fetch(`${admin.url}/cache?url=${encodeURIComponent('http://a/x')}`, { method: 'DELETE' })
  expect(purge.status).not.toBe(405)
  expect((await fetch(`${admin.url}/cache`, { method: 'GET' })).headers.get('allow')).toBe('DELETE')
})

test('/readyz names the DNS error of an upstream that has no address', async () => {
  const config = h.config({ upstream: { url: 'http://api.test:8080' }, admin: { listen: '127.0.0.1:0' } })
  const nxdomain = { ...staticSource([]), snapshot: () => ({ addresses: [], version: 1, stale: false, ready: false, lastError: { code: 'NXDOMAIN', message: 'api.test does not exist', atMonoMs: 0 } }) }
  const proxy = new ProxyServer(config, { sourceFor: () => nxdomain })
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  const res = await fetch(`${admin.url}/readyz`)
  expect(res.status).toBe(503)
  expect(await res.text()).toBe('not ready: no healthy address for upstream default (DNS: NXDOMAIN: api.test does not exist)\n')
})

test('/readyz: one of several upstreams without a healthy address leaves the proxy ready (saying which), ?upstream=NAME asks about one, all of them down is 503 (outside sweep, twentieth session)', async () => {
  const text = `[server]\nlisten = "127.0.0.1:0"\ndefault_upstream = "web"\n[upstream.web]\nurl = "http://web.test"\n[upstream.dead]\nurl = "http://dead.test"\n[[route]]\npath_prefix = "/dead/"\nupstream = "dead"\n[admin]\nlisten = "127.0.0.1:0"\n`
  const config = resolveConfig(parseConfigText(text, 'two.toml'))
  const proxy = new ProxyServer(config, { sourceFor: (u) => (u.host === 'web.test' ? staticSource([{ address: '127.0.0.1', family: 4 }]) : staticSource([])) }).start()
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  const get = async (q = '') => {
    const res = await fetch(`${admin.url}/readyz${q}`)
    return [res.status, await res.text()]
  }
  // Before: 503 "not ready: no healthy address for upstream dead", which would take every instance out of its load balancer.
  expect(await get()).toEqual([200, 'ready; but no healthy address for upstream dead\n'])
  expect(await get('?upstream=web')).toEqual([200, 'ready\n'])
  expect((await get('?upstream=dead'))[0]).toBe(503)
  expect(await get('?upstream=nope')).toEqual([404, 'no upstream named "nope"; known: web, dead\n'])
  await proxy.close()
  const none = new ProxyServer(config, { sourceFor: () => staticSource([]) }).start()
  h.track(() => none.close())
  const admin2 = new AdminServer(config.admin, { proxy: () => none, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin2.close())
  const res = await fetch(`${admin2.url}/readyz`)
  expect(res.status).toBe(503)
  expect(await res.text()).toStartWith('not ready: no healthy address for upstream web; no healthy address for upstream dead')
})

test('an admin address beyond loopback without a token is warned about; loopback, off, or a token are not', () => {
  const at = (host: string, token?: string) => exposedAdminWarning({ listen: { host, port: 9090 }, token })
  expect(at('0.0.0.0')).toContain('0.0.0.0:9090 without a token')
  expect(at('::')).toContain('[::]:9090')
  expect(at('203.0.113.5')).toContain('--admin-token')
  // Loopback in any spelling: IPv6 written out, IPv4-mapped (RFC 4291 §2.5.5.2).
  for (const host of ['127.0.0.1', '127.9.9.9', '::1', 'localhost', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(at(host)).toBeUndefined()
  expect(at('::ffff:203.0.113.5')).toContain('[::ffff:203.0.113.5]:9090')
  expect(at('0.0.0.0', 's3cret')).toBeUndefined()
  expect(exposedAdminWarning({ listen: undefined, token: undefined })).toBeUndefined()
})

test('an upstream failure is logged with its reason in words, in both formats: why a BAD_RESPONSE was one (outside sweep, twentieth session)', async () => {
  // An origin whose answer has differing Content-Length values.
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: { data: (s) => void (s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'), s.end()) },
  })
  h.track(() => origin.stop(true))
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, retries: '0' } })
  const earlier = h.records.length
  expect((await fetch(`${url}/bad`)).status).toBe(502)
  expect(await waitFor(() => h.records.length > earlier)).toBe(true)
  const rec = h.records.at(-1)!
  expect(rec.error).toBe('BAD_RESPONSE')
  // Before: the code alone, in the log, on stderr and in /metrics.
  expect(rec.error_detail).toContain('Content-Length')
  const json = JSON.parse(formatRecord(rec, 'json')) as RequestRecord
  expect(json.error_detail).toBe(rec.error_detail)
  const text = formatRecord(rec, 'text')
  expect(text).toContain(' error=BAD_RESPONSE detail="')
  expect(text.split('\n')).toHaveLength(2) // one line, then the newline
})
