/**
 * Upgrade tunnels at their edges (proxy/upgrade/tunnel.ts): an interim answer before the 101 is
 * relayed, with the fields a plain request's would keep, and the upgrade goes on (RFC 9110 §7.8, §15.2),
 * at most 16 of them per upgrade however they are split into reads; an open tunnel with no byte either way
 * for the upstream's idle_timeout is closed and logged IDLE_TIMEOUT, while one with traffic stays
 * open; an answer whose head is over 64 KiB is a 502; a 101 goes on without Content-Length and
 * Transfer-Encoding (RFC 9110 §8.6); a 101 that does not name a protocol the
 * request asked for is a 502, not a tunnel (RFC 9110 §7.8, §15.2.2), and so is a 101 or an interim
 * that says HTTP/1.0 (§15.2); Max-Forwards on an OPTIONS
 * upgrade is counted down, and at 0 answered by the proxy (§7.6.2); a refused upgrade whose body
 * stalls is cut at idle_timeout, as a plain response is; an Upgrade naming no valid protocol is
 * served as a plain request, and Upgrade on two lines goes on as one list. Raw sockets on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import { AdminServer } from '../../src/proxy/observe/admin.ts'
import { RequestMetrics } from '../../src/proxy/observe/metrics.ts'
import { Harness, rawClient as rawClientOf, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const rawClient = (port: number) => rawClientOf(h, port)

/**
 * An origin on raw sockets: `answer` writes its answer to the upgrade request; then it echoes.
 * `onClose` hears each of its connections close.
 */
function upgradingOrigin(answer: (write: (text: string) => void, request: string) => void, onClose?: () => void): number {
  const origin = Bun.listen<{ switched: boolean }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { switched: false }
      },
      data(s, d) {
        if (s.data.switched) return void s.write(`echo:${Buffer.from(d).toString()};`)
        s.data.switched = true
        answer((text) => s.write(text), Buffer.from(d).toString('latin1'))
      },
      close() {
        onClose?.()
      },
    },
  })
  h.track(() => origin.stop(true))
  return origin.port
}

const UPGRADE = 'GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n'
const SWITCHED = 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n'

test('a 100 Continue before the 101 reaches the client first, and the tunnel opens', async () => {
  const port = upgradingOrigin((write) => {
    write('HTTP/1.1 100 Continue\r\n\r\n')
    setTimeout(() => write(SWITCHED), 50)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE)
  expect(await waitFor(() => c.got().includes('HTTP/1.1 101 '), 3000)).toBe(true)
  expect(c.got()).toMatch(/^HTTP\/1\.1 100 Continue\r\nx-request-id: [^\r]+\r\n\r\nHTTP\/1\.1 101 /)
  c.s.write('one')
  expect(await waitFor(() => c.got().endsWith('echo:one;'), 3000)).toBe(true)
  c.s.end()
  expect(await waitFor(() => h.records.some((r) => r.path === '/t'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/t')!.status).toBe(101)
})

test('a 103 before the 101 goes on as a plain request\'s does: without Transfer-Encoding, Content-Length and what Connection names', async () => {
  // RFC 9110 §8.6, RFC 9112 §6.1: no 1xx carries either; a parser that honours them on a 1xx
  // (Python's http.client reads a 103 with Transfer-Encoding: chunked as chunked) would take the
  // next head for its body. They went on as the upstream sent them.
  const port = upgradingOrigin((write) => {
    write('HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\nConnection: x-hop\r\nX-Hop: 1\r\nLink: </a.css>; rel=preload\r\n\r\n')
    setTimeout(() => write(SWITCHED), 50)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE.replace('\r\n\r\n', '\r\nX-Request-Id: tunnel-1\r\n\r\n'))
  expect(await waitFor(() => c.got().includes('HTTP/1.1 101 ') && c.got().endsWith('\r\n\r\n'), 3000)).toBe(true)
  expect(c.got().split('\r\n\r\n')[0]).toBe('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nx-request-id: tunnel-1')
  c.s.write('one')
  expect(await waitFor(() => c.got().endsWith('\r\n\r\necho:one;'), 3000)).toBe(true)
})

test('a 101 reaches the client without Content-Length and Transfer-Encoding, and the tunnel\'s first bytes are not a body', async () => {
  // Origins that send "Content-Length: 0" on a 101 exist; .NET's ClientWebSocket then drops the
  // connection. A 1xx ends at its blank line (RFC 9112 §6.3), and a server MUST NOT send either field in one.
  const port = upgradingOrigin((write) => write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nContent-Length: 0\r\nUpgrade: echo\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\nhi'))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE)
  expect(await waitFor(() => c.got().endsWith('\r\n\r\nhi'), 3000)).toBe(true)
  expect(c.got()).toBe('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\nX-After: 1\r\n\r\nhi')
  c.s.write('one')
  expect(await waitFor(() => c.got().endsWith('hiecho:one;'), 3000)).toBe(true)
})

test('a tunnel silent both ways for idle_timeout is closed with a FIN and logged IDLE_TIMEOUT; one with traffic stays open', async () => {
  const port = upgradingOrigin((write) => write(SWITCHED))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, idle_timeout: '1s' } })
  const silent = rawClient(proxy.port)
  const busy = rawClient(proxy.port)
  // How the silent one's connection ends: a FIN ('end'), as nginx and HAProxy close a tunnel at its timeout, or a reset.
  let silentEnd = ''
  silent.s.on('end', () => (silentEnd ||= 'FIN'))
  silent.s.on('error', (e: NodeJS.ErrnoException) => (silentEnd ||= e.code ?? 'error'))
  silent.s.write(UPGRADE.replace('/t', '/idle'))
  busy.s.write(UPGRADE.replace('/t', '/busy'))
  expect(await waitFor(() => silent.got().includes('HTTP/1.1 101 ') && busy.got().includes('HTTP/1.1 101 '), 3000)).toBe(true)
  // The busy one sends a byte every 300 ms; the silent one nothing.
  for (let i = 0; i < 10 && !silent.closed(); i++) {
    busy.s.write(String(i))
    await Bun.sleep(300)
  }
  expect(await waitFor(() => silent.closed(), 3000)).toBe(true)
  expect(silentEnd).toBe('FIN') // ECONNRESET before the twentieth session
  expect(busy.closed()).toBe(false)
  expect(busy.got()).toContain('echo:')
  const rec = h.records.find((r) => r.path === '/idle')!
  expect([rec.status, rec.error]).toEqual([101, 'IDLE_TIMEOUT'])
  busy.s.end()
  expect(await waitFor(() => h.records.some((r) => r.path === '/busy'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/busy')!.error).toBeUndefined()
})

test('an answer to an upgrade whose head passes 64 KiB in the read that ends it is a 502, not a 101', async () => {
  // 60 KiB of 101 head, then 10 KiB more with its blank line: no read before the last is over the limit.
  const port = upgradingOrigin((write) => {
    write(`${SWITCHED.slice(0, -2)}X-Big: ${'a'.repeat(60 * 1024)}`)
    setTimeout(() => write(`${'b'.repeat(10 * 1024)}\r\n\r\n`), 50)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE)
  expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 502 ')
})

test('a 101 without Upgrade, or naming a protocol the request did not ask for, is a 502 and no tunnel; one naming it in another case is', async () => {
  const answers: Record<string, string> = {
    '/h2c': 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n',
    '/none': 'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    '/version': 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo/2\r\n\r\n',
    '/case': 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ECHO\r\n\r\n',
  }
  // Everything the origin reads after the upgrade request: a tunnel would pass the next request on.
  const after: string[] = []
  const pending: string[] = []
  const port = upgradingOrigin((write) => write(answers[pending.shift()!]!))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const got: Record<string, string> = {}
  for (const path of Object.keys(answers)) {
    pending.push(path)
    const c = rawClient(proxy.port)
    c.s.write(UPGRADE.replace('/t', path).replace('echo', path === '/version' ? 'echo/1' : 'echo'))
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
    c.s.write('GET /admin HTTP/1.1\r\nHost: a\r\n\r\n')
    if (path === '/case') expect(await waitFor(() => c.got().includes('echo:GET /admin'), 3000)).toBe(true)
    else expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    got[path] = c.got().slice(0, 12)
    after.push(c.got().includes('echo:') ? path : '')
    c.s.destroy()
  }
  expect(got).toEqual({ '/h2c': 'HTTP/1.1 502', '/none': 'HTTP/1.1 502', '/version': 'HTTP/1.1 502', '/case': 'HTTP/1.1 101' })
  expect(after.filter(Boolean)).toEqual(['/case'])
  const refused = () => h.records.filter((r) => ['/h2c', '/none', '/version'].includes(r.path))
  expect(await waitFor(() => refused().length === 3, 3000)).toBe(true)
  expect(refused().map((r) => [r.path, r.status, r.error])).toEqual([
    ['/h2c', 502, 'BAD_RESPONSE'],
    ['/none', 502, 'BAD_RESPONSE'],
    ['/version', 502, 'BAD_RESPONSE'],
  ])
})

test('an OPTIONS upgrade with Max-Forwards: 0 is answered by the proxy and never sent on; above 0 it goes on counted down', async () => {
  const seen: string[] = []
  const port = upgradingOrigin((write, request) => {
    seen.push(request)
    write(SWITCHED)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const last = rawClient(proxy.port)
  last.s.write(UPGRADE.replace('GET /t', 'OPTIONS /mf0').replace('Host: a', 'Host: a\r\nMax-Forwards: 0'))
  expect(await waitFor(() => last.closed(), 3000)).toBe(true)
  expect(last.got()).toStartWith('HTTP/1.1 200 ')
  expect(last.got()).toContain('\r\nconnection: close\r\n')
  const on = rawClient(proxy.port)
  on.s.write(UPGRADE.replace('GET /t', 'OPTIONS /mf3').replace('Host: a', 'Host: a\r\nMax-Forwards: 3'))
  expect(await waitFor(() => on.got().includes('HTTP/1.1 101 '), 3000)).toBe(true)
  expect(seen.length).toBe(1)
  expect(seen[0]).toStartWith('OPTIONS /mf3 ')
  expect(seen[0]!.toLowerCase()).toContain('\r\nmax-forwards: 2\r\n')
  on.s.end()
  expect(await waitFor(() => h.records.some((r) => r.path === '/mf3'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/mf0')?.status).toBe(200)
})

test('a refused upgrade whose body stalls is cut at idle_timeout and logged IDLE_TIMEOUT, as a plain response is', async () => {
  // 3 bytes of a 100-byte body, then nothing; the connection stays open.
  const port = upgradingOrigin((write) => write('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nabc'))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, idle_timeout: '1s' } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE.replace('/t', '/stalled'))
  expect(await waitFor(() => c.closed(), 5000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 403 ')
  expect(c.got()).toEndWith('\r\n\r\nabc')
  expect(await waitFor(() => h.records.some((r) => r.path === '/stalled'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/stalled')!
  expect([rec.status, rec.error, rec.bytes_out]).toEqual([403, 'IDLE_TIMEOUT', 3])
})

test('an Upgrade that names no valid protocol is served as a plain request, without Upgrade, as an HTTP/1.0 one is (RFC 9110 §7.8)', async () => {
  const seen: string[] = []
  // The origin would switch to anything it is asked for; a plain request gets a plain answer
  // (and its connection may be pooled for the next one).
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, d) {
        const request = Buffer.from(d).toString('latin1')
        seen.push(request)
        const asked = /\r\nupgrade: ?([^\r]*)/i.exec(request)
        s.write(asked ? `HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ${asked[1]}\r\n\r\n` : 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain')
      },
    },
  })
  h.track(() => origin.stop(true))
  const port = origin.port
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const values = ['', ',', 'websocket garbage(', '"x"', 'websocket/']
  for (const [i, value] of values.entries()) {
    const c = rawClient(proxy.port)
    c.s.write(`GET /bad${i} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: ${value}\r\n\r\n`)
    expect(await waitFor(() => c.got().endsWith('plain'), 3000)).toBe(true)
    expect([value, c.got().slice(0, 12)]).toEqual([value, 'HTTP/1.1 200'])
    // A plain exchange: the connection stays open for the next request.
    expect(c.closed()).toBe(false)
    c.s.destroy()
  }
  expect(seen.length).toBe(values.length)
  for (const request of seen) expect(request.toLowerCase()).not.toContain('upgrade')
})

test('Upgrade on two lines goes upstream as one list, and a 101 naming the first line\'s protocol opens the tunnel (RFC 9110 §5.3)', async () => {
  const seen: string[] = []
  const port = upgradingOrigin((write, request) => {
    seen.push(request)
    write(SWITCHED)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE.replace('/t', '/two').replace('Upgrade: echo', 'Upgrade: echo\r\nUpgrade: other/2'))
  expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 101 ')
  expect(seen[0]!.toLowerCase()).toContain('\r\nupgrade: echo, other/2\r\n')
  c.s.write('one')
  expect(await waitFor(() => c.got().endsWith('echo:one;'), 3000)).toBe(true)
  c.s.end()
  expect(await waitFor(() => h.records.some((r) => r.path === '/two'), 3000)).toBe(true)
})

test('a 101, or an interim before it, whose status line says HTTP/1.0 is a 502 logged BAD_RESPONSE, no tunnel, and the upstream connection is closed (RFC 9110 §15.2, §7.8)', async () => {
  // HTTP/1.0 has no 1xx and no Upgrade: a head that claims it cannot switch protocols. HAProxy answers 502 too.
  const answers: Record<string, string> = {
    '/v10': 'HTTP/1.0 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n',
    '/v10-interim': `HTTP/1.0 100 Continue\r\n\r\n${SWITCHED}`,
  }
  const pending: string[] = []
  let closedUpstream = 0
  const originPort = upgradingOrigin(
    (write) => write(answers[pending.shift()!]!),
    () => closedUpstream++,
  )
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` } })
  for (const [i, path] of Object.keys(answers).entries()) {
    pending.push(path)
    const c = rawClient(proxy.port)
    c.s.write(UPGRADE.replace('/t', path))
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
    c.s.write('GET /admin HTTP/1.1\r\nHost: a\r\n\r\n')
    await waitFor(() => c.closed(), 3000)
    expect([path, `${c.got().slice(0, 12)} closed=${c.closed()} echoed=${c.got().includes('echo:')}`]).toEqual([path, 'HTTP/1.1 502 closed=true echoed=false'])
    // The upstream's connection is not kept (not pooled, not tunnelled): the origin sees it close.
    expect(await waitFor(() => closedUpstream === i + 1, 3000)).toBe(true)
    c.s.destroy()
  }
  const refused = () => h.records.filter((r) => r.path in answers)
  expect(await waitFor(() => refused().length === 2, 3000)).toBe(true)
  expect(refused().map((r) => [r.path, r.status, r.error])).toEqual([
    ['/v10', 502, 'BAD_RESPONSE'],
    ['/v10-interim', 502, 'BAD_RESPONSE'],
  ])
})

test('interim answers are bounded per upgrade, not per read: the 17th is a 502 logged BAD_RESPONSE when each comes in its own segment', async () => {
  // The origin writes the next 100 only once the client has the one before: each is its own read at the proxy.
  let upstream: import('bun').Socket<undefined> | undefined
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s) {
        upstream = s
      },
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE.replace('/t', '/many'))
  expect(await waitFor(() => upstream !== undefined, 3000)).toBe(true)
  const interims = () => c.got().split('HTTP/1.1 100 Continue').length - 1
  for (let i = 0; i < 20 && !c.closed(); i++) {
    upstream!.write('HTTP/1.1 100 Continue\r\n\r\n')
    await waitFor(() => interims() === i + 1 || c.closed(), 3000)
  }
  if (!c.closed()) upstream!.write(SWITCHED)
  expect(await waitFor(() => c.closed() || c.got().includes('HTTP/1.1 101 '), 3000)).toBe(true)
  expect([interims(), c.got().split('\r\n\r\n').at(-2)!.slice(0, 12), c.closed()]).toEqual([16, 'HTTP/1.1 502', true])
  expect(await waitFor(() => h.records.some((r) => r.path === '/many'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/many')!
  expect([rec.status, rec.error]).toEqual([502, 'BAD_RESPONSE'])
})

test('a client that leaves before the upstream answered its upgrade has the upstream connection cut at once and is logged 499 CLIENT_GONE (outside sweep, twentieth session)', async () => {
  let asked = false
  let originClosed = 0
  // The origin reads the upgrade and never answers.
  const port = upgradingOrigin(() => void (asked = true), () => originClosed++)
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, header_timeout: '30s' } })
  const c = rawClient(proxy.port)
  c.s.write(UPGRADE.replace('/t', '/gone'))
  expect(await waitFor(() => asked, 3000)).toBe(true)
  c.s.end()
  // Before: the connection was kept until the origin answered or header_timeout ran out (30 s here).
  expect(await waitFor(() => originClosed === 1, 5000)).toBe(true)
  expect(await waitFor(() => h.records.some((r) => r.path === '/gone'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/gone')!
  expect([rec.status, rec.error]).toEqual([499, 'CLIENT_GONE'])
})

test('open tunnels are a gauge of /metrics, and a tunnel\'s life is not in the request duration histogram (outside sweep, twentieth session)', async () => {
  const port = upgradingOrigin((write, request) => write(request.includes('/plain') ? 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n' : SWITCHED))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, admin: { listen: '127.0.0.1:0' } })
  const metrics = new RequestMetrics()
  const admin = new AdminServer(h.config({ upstream: { url: `http://127.0.0.1:${port}` }, admin: { listen: '127.0.0.1:0' } }).admin, { proxy: () => proxy, metrics, startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  const scrape = async () => (await (await fetch(`${admin.url}/metrics`)).text())
  const earlier = h.records.length // the records of this file's earlier tests
  const mine = () => h.records.slice(earlier)
  const tunnels = [rawClient(proxy.port), rawClient(proxy.port)]
  for (const c of tunnels) c.s.write(UPGRADE)
  expect(await waitFor(() => tunnels.every((c) => c.got().includes('HTTP/1.1 101 ')), 3000)).toBe(true)
  expect(await scrape()).toContain('\nproxy_open_tunnels 2\n') // no such gauge before
  for (const c of tunnels) c.s.end()
  expect(await waitFor(() => mine().filter((r) => r.status === 101).length === 2, 3000)).toBe(true)
  // A refused upgrade is an ordinary request: it is timed.
  const plain = rawClient(proxy.port)
  plain.s.write(UPGRADE.replace('/t', '/plain'))
  expect(await waitFor(() => mine().some((r) => r.path === '/plain'), 3000)).toBe(true)
  for (const r of mine()) metrics.observe(r)
  const text = await scrape()
  expect(text).toContain('\nproxy_open_tunnels 0\n')
  expect(text).toContain('proxy_requests_total{upstream="default",class="1xx"} 2')
  // Only the 426 is timed (before: the two tunnels' lives too, count 3).
  expect(text).toContain('proxy_request_duration_seconds_count{upstream="default"} 1')
})

test('a client that resets its tunnel while the upstream reads nothing: the upstream\'s connection is cut after idle_timeout, not left open with its send queue (outside review, thirteenth round)', async () => {
  const { createServer, connect } = await import('node:net')
  let upstreamClosed = false
  const sockets: import('node:net').Socket[] = []
  // Answers the 101, then reads nothing more: the proxy's writes to it pile up.
  const origin = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.on('close', () => (upstreamClosed = true))
    s.once('data', () => {
      s.pause()
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    })
  })
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    origin.close()
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${(origin.address() as { port: number }).port}`, idle_timeout: '1s' } })
  const c = connect(proxy.port, '127.0.0.1')
  c.on('error', () => {})
  h.track(() => void c.destroy())
  let switched = false
  c.on('data', (d) => (switched ||= d.toString('latin1').startsWith('HTTP/1.1 101')))
  c.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  expect(await waitFor(() => switched, 5000)).toBe(true)
  // Push until the proxy stops taking it (its send queue to the upstream is full), then reset.
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  for (let i = 0; i < 400 && c.write(chunk); i++) await Bun.sleep(0)
  await Bun.sleep(200)
  c.resetAndDestroy()
  // idle_timeout (1 s) after the client's close, the upstream's connection goes (it stayed for good).
  expect(await waitFor(() => upstreamClosed, 6000)).toBe(true)
}, 20_000)

test('a refused upgrade whose relayed answer the upstream cuts short is logged RESET_MID_BODY, as a plain request\'s is, not as whole (outside review, thirteenth round)', async () => {
  const port = await rawAnswerOrigin((s) => s.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nabc'))
  const { record: r } = await upgradeThrough(port)
  expect([r.status, r.bytes_out, r.error]).toEqual([403, 3, 'RESET_MID_BODY'])
}, 20_000)

test('a tunnel\'s record counts only what the client took: bytes still queued for it when it half-closes are not bytes_out (outside review, fifteenth round: 196,608 logged where 193,536 arrived)', async () => {
  // An origin that switches, then pushes 8 MiB in 64 KiB writes, as fast as the proxy takes them.
  const origin = Bun.listen<{ left: number }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { left: 0 }
      },
      data(s) {
        if (s.data.left > 0) return
        s.data.left = 128
        s.write(SWITCHED)
        const push = () => {
          while (s.data.left > 0 && s.write(new Uint8Array(65_536).fill(0x61)) === 65_536) s.data.left--
        }
        ;(s.data as { push?: () => void }).push = push
        push()
      },
      drain(s) {
        ;(s.data as { push?: () => void }).push?.()
      },
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const before = h.records.length
  let got = 0
  let closed = false
  const c = await Bun.connect({ hostname: '127.0.0.1', port: proxy.port, socket: { data: (_s, d) => void (got += d.byteLength), close: () => void (closed = true), error() {} } })
  h.track(() => c.terminate())
  c.write(UPGRADE)
  // Reads nothing for a while (the proxy queues what the kernel will not take), then half-closes and reads to the end.
  c.pause()
  await Bun.sleep(300)
  c.shutdown()
  c.resume()
  expect(await waitFor(() => closed, 10_000)).toBe(true)
  expect(await waitFor(() => h.records.length === before + 1, 5000)).toBe(true)
  const tunnelled = got - SWITCHED.length
  expect(h.records[before]!.status).toBe(101)
  expect(h.records[before]!.bytes_out).toBe(tunnelled)
})

/** A raw origin answering every upgrade request with `answer(socket)`; its port. */
async function rawAnswerOrigin(answer: (s: import('node:net').Socket) => void): Promise<number> {
  const { createServer } = await import('node:net')
  const sockets: import('node:net').Socket[] = []
  const origin = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.once('data', () => answer(s))
  })
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    origin.close()
  })
  return (origin.address() as { port: number }).port
}

/** Sends an upgrade request through the proxy; everything the client got, whether its end was a reset, and the request's record. */
async function upgradeThrough(originPort: number): Promise<{ got: string; reset: boolean; record: import('../../src/proxy/observe/record.ts').RequestRecord }> {
  const { connect } = await import('node:net')
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` } })
  const c = connect(proxy.port, '127.0.0.1')
  h.track(() => void c.destroy())
  let got = ''
  let reset = false
  c.on('data', (d: Buffer) => (got += d.toString('latin1')))
  c.on('error', () => (reset = true))
  const closed = new Promise<void>((r) => c.on('close', () => r()))
  const before = h.records.length
  c.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  await closed
  expect(await waitFor(() => h.records.length === before + 1, 5000)).toBe(true)
  return { got, reset, record: h.records[before]! }
}

test('a refused upgrade from an HTTP/1.0 origin whose body (read to the close) is reset midway: the client sees it cut, never a clean end, and the status line is the proxy\'s HTTP/1.1 (RFC 9112 §6.3, RFC 9110 §2.5; outside review, sixteenth round)', async () => {
  const port = await rawAnswerOrigin((s) => {
    s.write('HTTP/1.0 403 Forbidden\r\n\r\n01234')
    setTimeout(() => s.resetAndDestroy(), 100)
  })
  const { got, reset, record } = await upgradeThrough(port)
  expect(got).toStartWith('HTTP/1.1 403 Forbidden\r\n')
  expect(got).toEndWith('\r\n\r\n01234')
  expect(reset).toBe(true)
  // The upstream answered 403 before it cut the body: upstream_status says so (second opinion: it was dropped with the error).
  expect([record.status, record.upstream_status, record.bytes_out, record.error]).toEqual([403, 403, 5, 'RESET_MID_BODY'])
})

test('a refused upgrade from an HTTP/1.0 origin whose body ends with its close: whole, closed with a FIN', async () => {
  const port = await rawAnswerOrigin((s) => s.end('HTTP/1.0 403 Forbidden\r\n\r\n0123456789'))
  const { got, reset, record } = await upgradeThrough(port)
  expect(got).toStartWith('HTTP/1.1 403 Forbidden\r\n')
  expect(got).toEndWith('\r\n\r\n0123456789')
  expect(reset).toBe(false)
  expect([record.status, record.bytes_out, record.error]).toEqual([403, 10, undefined])
})

test('a refused upgrade\'s chunked body is logged with its bytes, not its chunk framing (outside review, sixteenth round: 25 for 10)', async () => {
  const port = await rawAnswerOrigin((s) => s.end('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n'))
  const { got, record } = await upgradeThrough(port)
  expect(got).toEndWith('5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n')
  expect([record.status, record.bytes_out, record.error]).toEqual([403, 10, undefined])
})

test('an upgrade no upstream answers: its 502 is logged with the bytes of its body and the failure in words, as a plain request\'s is (outside review, sixteenth round: bytes_out 0, no error_detail)', async () => {
  const port = await rawAnswerOrigin((s) => s.end('NOT HTTP AT ALL\r\n\r\n'))
  const { got, record } = await upgradeThrough(port)
  expect(got).toStartWith('HTTP/1.1 502 ')
  const body = got.slice(got.indexOf('\r\n\r\n') + 4)
  expect([record.status, record.error, record.bytes_out]).toEqual([502, 'BAD_RESPONSE', body.length])
  expect(record.error_detail).toBeString()
})

test('the upstream ends a tunnel (its last bytes, then a FIN) while the client, not reading yet, sends more: every byte of the upstream reaches the client (a lingering close, not a reset; regression run of the sixteenth round: 175,539 of 200,000)', async () => {
  const TAIL = 200_000
  const port = await rawAnswerOrigin((s) => s.end(Buffer.concat([Buffer.from(SWITCHED), Buffer.alloc(TAIL, 0x74)])))
  const { connect } = await import('node:net')
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const c = connect({ port: proxy.port, host: '127.0.0.1' })
  h.track(() => void c.destroy())
  let got = 0
  let reset = false
  c.on('error', () => (reset = true))
  const closed = new Promise<void>((r) => c.on('close', () => r()))
  c.write(UPGRADE)
  // It reads nothing for a while (the upstream's bytes wait in the kernel and the proxy has ended its side), then sends, then reads.
  c.pause()
  await Bun.sleep(300)
  c.write('more from me')
  await Bun.sleep(100)
  c.on('data', (d: Buffer) => (got += d.length))
  c.resume()
  await closed
  expect(reset).toBe(false)
  expect(got).toBe(SWITCHED.length + TAIL)
}, 20_000)

test('a WebSocket 101 whose Sec-WebSocket-Accept is not its key\'s, or that names an extension or subprotocol the request did not offer, is a 502 logged BAD_RESPONSE; a right one opens the tunnel (RFC 6455 §4.1; seventeenth round)', async () => {
  const { createHash } = await import('node:crypto')
  const { connect } = await import('node:net')
  const key = 'dGhlIHNhbXBsZSBub25jZQ=='
  const good = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
  const answers: Record<string, string> = {
    '/wrong': 'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n',
    '/deflate': `Sec-WebSocket-Accept: ${good}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n`,
    '/chat': `Sec-WebSocket-Accept: ${good}\r\nSec-WebSocket-Protocol: chat\r\n`,
    '/right': `Sec-WebSocket-Accept: ${good}\r\n`,
  }
  const port = await rawAnswerOrigin((s) => s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${answers[pending.shift()!]}\r\n`))
  const pending: string[] = []
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}` } })
  const got: Record<string, string> = {}
  for (const path of Object.keys(answers)) {
    pending.push(path)
    const c = connect(proxy.port, '127.0.0.1')
    h.track(() => void c.destroy())
    c.on('error', () => {})
    let text = ''
    c.on('data', (d: Buffer) => (text += d.toString('latin1')))
    c.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    expect(await waitFor(() => text.includes('\r\n\r\n'), 3000)).toBe(true)
    got[path] = text.slice(0, 12)
    c.destroy()
  }
  expect(got).toEqual({ '/wrong': 'HTTP/1.1 502', '/deflate': 'HTTP/1.1 502', '/chat': 'HTTP/1.1 502', '/right': 'HTTP/1.1 101' })
  const refused = () => h.records.filter((r) => ['/wrong', '/deflate', '/chat'].includes(r.path))
  expect(await waitFor(() => refused().length === 3, 3000)).toBe(true)
  expect(refused().map((r) => [r.path, r.status, r.error])).toEqual([
    ['/wrong', 502, 'BAD_RESPONSE'],
    ['/deflate', 502, 'BAD_RESPONSE'],
    ['/chat', 502, 'BAD_RESPONSE'],
  ])
})
