/**
 * The eleventh session's request semantics and upstream TLS, under Deno (`deno run -A src/main.ts
 * serve`: Deno.serve in front, node:net/node:tls upstream), as test/integration/semantics.test.ts,
 * cache.test.ts and test/runtime/upstream-tls-*.test.ts see them on Bun: Via, Max-Forwards, a POST
 * not replayed, a Range answered from the cache, an IPv4 client of a [::] listener, and the
 * upstream handshake (no SNI for an IP, a Common-Name-only certificate refused, ALPN http/1.1).
 */
import { afterAll, afterEach, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { makeCerts } from '../support/certs.ts'
import { rawExchange } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'
import { oneAnswerTlsOrigin } from '../support/tls-origin.ts'
import { testDir } from '../support/temp-dir.ts'

const DENO = 'node_modules/.bin/deno'
const dir = testDir('proxy-deno-semantics-')
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})
afterAll(() => closers.forEach((c) => c()))

/** A Deno proxy for `toml` (listen, admin and access log filled in); stopped after the test. */
async function denoProxy(toml: string, listen = '127.0.0.1:0'): Promise<{ url: string; port: number }> {
  const file = join(dir, `c${closers.length}-${Math.random().toString(36).slice(2)}.toml`)
  writeFileSync(file, toml)
  const p = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file, '--listen', listen, '--admin', 'off', '--access-log', 'off'], DENO)
  closers.push(async () => expect(await p.stop()).toBe(0))
  return { url: p.url, port: Number(new URL(p.url).port) }
}

/** Sends `head` (asking for Connection: close) and returns all the proxy sent back until it closed. */
const raw = (port: number, head: string, host = '127.0.0.1') => rawExchange(port, head, host, (close) => closers.push(close))

async function rawOrigin(): Promise<RawOrigin> {
  const o = await RawOrigin.start()
  closers.push(() => o.close())
  return o
}

test('on Deno, Via: 1.1 proxy goes upstream after the client\'s Via lines joined; via = "off" adds none and passes the client\'s on', async () => {
  const origin = await rawOrigin()
  const on = await denoProxy(`[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  const off = await denoProxy(`[server]\nvia = "off"\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  for (const port of [on.port, off.port]) {
    await raw(port, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    await raw(port, 'GET /b HTTP/1.1\r\nHost: x\r\nVia: 1.0 fred\r\nVia: 1.1 other\r\nConnection: close\r\n\r\n')
  }
  expect(origin.requests.map((r) => r.headers.filter((l) => /^via:/i.test(l)))).toEqual([['via: 1.1 proxy'], ['via: 1.0 fred, 1.1 other, 1.1 proxy'], [], ['via: 1.0 fred, 1.1 other']])
}, 60_000)

test('on Deno, Max-Forwards: 0 on OPTIONS and TRACE is answered by the proxy (OPTIONS with no content and no Content-Type); above 0 it goes on less one', async () => {
  const origin = await rawOrigin()
  const { port } = await denoProxy(`[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n`)
  const options = await raw(port, 'OPTIONS /o HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n')
  expect(options).toStartWith('HTTP/1.1 200 OK\r\n')
  expect(options.toLowerCase()).toContain('\r\ncontent-length: 0\r\n')
  expect(options.toLowerCase()).not.toContain('content-type')
  const trace = await raw(port, 'TRACE /t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nCookie: a=b\r\nX-Y: z\r\nConnection: close\r\n\r\n')
  expect(trace.toLowerCase()).toContain('\r\ncontent-type: message/http\r\n')
  expect(trace).toEndWith('\r\n\r\nTRACE /t HTTP/1.1\r\nconnection: close\r\nhost: x\r\nmax-forwards: 0\r\nx-y: z\r\n\r\n')
  expect(await raw(port, 'OPTIONS /o2 HTTP/1.1\r\nHost: x\r\nMax-Forwards: 2\r\nConnection: close\r\n\r\n')).toStartWith('HTTP/1.1 200 OK\r\n')
  expect(origin.requests.map((r) => `${r.method} ${r.target} ${origin.header(r, 'max-forwards')}`)).toEqual(['OPTIONS /o2 1'])
}, 60_000)

test('on Deno, a POST the upstream read on a reused connection that then closed is a 502, not sent again', async () => {
  const seen: string[] = []
  const sockets = new Set<Socket>()
  let conns = 0
  // Answers every request but the second on its first connection, which it reads and then drops.
  const server = createTcpServer((s) => {
    const conn = ++conns
    let buf = ''
    let n = 0
    sockets.add(s)
    s.on('error', () => {})
    s.on('data', (d) => {
      buf += d.toString('latin1')
      for (let guard = 0; guard < 8; guard++) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end)
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        buf = buf.slice(end + 4 + length)
        seen.push(`${conn} ${head.slice(0, head.indexOf('\r\n'))}`)
        if (conn === 1 && ++n === 2) return void s.destroy()
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  closers.push(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const { url } = await denoProxy(`[upstream]\nurl = "http://127.0.0.1:${(server.address() as { port: number }).port}"\n`)
  expect((await fetch(`${url}/first`)).status).toBe(200)
  const res = await fetch(`${url}/order`, { method: 'POST', body: 'pay=1' })
  expect(res.status).toBe(502)
  await res.text()
  expect(seen).toEqual(['1 GET /first HTTP/1.1', '1 POST /order HTTP/1.1'])
}, 60_000)

test('on Deno, a Range on a stored 200 is a 206 from the cache; an IPv4 client of a [::] listener is 127.0.0.1', async () => {
  let upstream = 0
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req) {
      upstream++
      return new Response(`0123456789${req.headers.get('x-forwarded-for')}`, { headers: { 'cache-control': 'max-age=60' } })
    },
  })
  closers.push(() => origin.stop(true))
  const { port } = await denoProxy(`[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n[cache]\nmax_size = "1MiB"\n`, '[::]:0')
  expect(await (await fetch(`http://127.0.0.1:${port}/r`)).text()).toBe('0123456789127.0.0.1')
  const res = await fetch(`http://127.0.0.1:${port}/r`, { headers: { range: 'bytes=2-4' } })
  expect([res.status, res.headers.get('content-range'), res.headers.get('content-length'), await res.text()]).toEqual([206, 'bytes 2-4/19', '3', '234'])
  expect(upstream).toBe(1)
}, 60_000)

/** A node:tls origin; `seen` holds each answered connection's SNI (false for none) and ALPN. */
async function tlsOrigin(certs: { cert: string; key: string }, alpn?: string[]): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = []
  const port = await oneAnswerTlsOrigin({ cert: certs.cert, key: certs.key, ALPNProtocols: alpn }, (s) => seen.push(`${s.servername || false} ${s.alpnProtocol}`), (c) => closers.push(c))
  return { port, seen }
}

test('on Deno (node:tls upstream): no SNI for an IP URL, http/1.1 by ALPN, a CA bundle; a Common-Name-only certificate and an h2-only origin are 502', async () => {
  const good = makeCerts(['origin.test'], ['127.0.0.1'])
  const bundle = join(dir, 'bundle.pem')
  writeFileSync(bundle, makeCerts(['other.test'], []).ca + good.ca)
  const ok = await tlsOrigin(good, ['h2', 'http/1.1'])
  const cnOnly = makeCerts(['origin.test'], [], false)
  const cn = await tlsOrigin(cnOnly)
  const h2 = await tlsOrigin(good, ['h2'])
  const upstream = (port: number, extra: string) => denoProxy(`[upstream]\nurl = "https://127.0.0.1:${port}"\n${extra}`)
  const byIp = await upstream(ok.port, `ca_file = "${bundle}"\n`)
  const byName = await upstream(ok.port, `ca_file = "${good.caFile}"\ntls_server_name = "origin.test"\n`)
  const cnProxy = await upstream(cn.port, `ca_file = "${cnOnly.caFile}"\ntls_server_name = "origin.test"\n`)
  const h2Proxy = await upstream(h2.port, `ca_file = "${good.caFile}"\n`)
  expect([(await fetch(`${byIp.url}/`)).status, (await fetch(`${byName.url}/`)).status]).toEqual([200, 200])
  expect(ok.seen).toEqual(['false http/1.1', 'origin.test http/1.1'])
  expect([(await fetch(`${cnProxy.url}/`)).status, (await fetch(`${h2Proxy.url}/`)).status]).toEqual([502, 502])
  expect([cn.seen, h2.seen]).toEqual([[], []])
}, 60_000)

test('on Deno, a tls_server_name that is an IP other than the dialled one: no SNI, the certificate verified against that IP', async () => {
  const named = makeCerts(['origin.test'], ['127.0.0.2'])
  const dialled = makeCerts(['origin.test'], ['127.0.0.1'])
  const ok = await tlsOrigin(named)
  const wrong = await tlsOrigin(dialled)
  // node:tls on Deno throws for an IP as servername (ERR_INVALID_ARG_VALUE): every request was a 502.
  const upstream = (port: number, ca: string) => denoProxy(`[upstream]\nurl = "https://127.0.0.1:${port}"\nca_file = "${ca}"\ntls_server_name = "127.0.0.2"\n`)
  expect((await fetch(`${(await upstream(ok.port, named.caFile)).url}/`)).status).toBe(200)
  expect(ok.seen).toEqual(['false false'])
  // The dialled address (127.0.0.1) in the certificate does not stand in for the configured name.
  expect((await fetch(`${(await upstream(wrong.port, dialled.caFile)).url}/`)).status).toBe(502)
  expect(wrong.seen).toEqual([])
}, 60_000)
