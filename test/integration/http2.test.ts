/**
 * HTTP/2 toward clients, end to end with real clients on loopback: the TLS listener offers h2 by
 * ALPN, and h2 requests take the same request path as HTTP/1.1 (upstream HTTP/1.1 over the pool,
 * access log with protocol HTTP/2). curl (GET, large POST checked by hash, HEAD, 304, a large
 * download), nghttp (64 concurrent streams on one connection) and h2load. `--http2 off` keeps
 * HTTP/1.1 only, and an HTTP/1.1 `Upgrade: h2c` request is served as plain HTTP/1.1, never
 * tunnelled.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
const dir = testDir('proxy-h2-')

/** Runs a client to its end without blocking the event loop (the proxy runs in this process). */
async function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = Bun.spawn([cmd, ...args], { stdout: 'pipe', stderr: 'pipe', timeout: 60_000 })
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { status: await p.exited, stdout, stderr }
}

let originRequests = 0
let originConnections = new Set<string>()
function origin() {
  originRequests = 0
  originConnections = new Set()
  return h.origin({
    async fetch(req, server) {
      originRequests++
      originConnections.add(`${server.requestIP(req)?.port}`)
      const url = new URL(req.url)
      if (url.pathname === '/hash') {
        const hash = createHash('sha256')
        for await (const chunk of req.body!) hash.update(chunk)
        return new Response(hash.digest('hex'))
      }
      if (url.pathname === '/big') return new Response(new Uint8Array(20 * 1024 * 1024).fill(7))
      if (url.pathname === '/slow') {
        await Bun.sleep(300)
        return new Response('slow')
      }
      if (url.pathname === '/etag') return req.headers.get('if-none-match') === '"v1"' ? new Response(null, { status: 304, headers: { etag: '"v1"' } }) : new Response('v1', { headers: { etag: '"v1"' } })
      return new Response(`hello ${req.headers.get('host')} ${req.headers.get('cookie') ?? ''}`)
    },
  })
}

function proxyTls(originPort: number, server: Record<string, unknown> = {}) {
  return h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, ...server } })
}

describe.if(have('curl'))('curl --http2', () => {
  test('ALPN h2; GET, HEAD, a 304, joined cookies, and the access log says HTTP/2', async () => {
    const o = origin()
    const { proxy } = proxyTls(o.port!)
    const base = `https://127.0.0.1:${proxy.port}`
    const get = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '-w', '\n%{http_version} %{http_code}', '-H', 'cookie: a=1', '-H', 'cookie: b=2', `${base}/x`])
    expect(get.stdout).toBe(`hello 127.0.0.1:${proxy.port} a=1; b=2\n2 200`)
    const head = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '-I', `${base}/x`])
    expect(head.stdout).toMatch(/^HTTP\/2 200/)
    const notModified = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '-H', 'if-none-match: "v1"', '-w', '%{http_code}', `${base}/etag`])
    expect(notModified.stdout).toBe('304')
    expect(await waitFor(() => h.records.length >= 3)).toBe(true)
    expect(h.records.every((r) => r.protocol === 'HTTP/2')).toBe(true)
  })

  test('a 5 MiB upload and a 20 MiB download arrive whole (by hash and length)', async () => {
    const o = origin()
    const { proxy } = proxyTls(o.port!)
    const upload = new Uint8Array(5 * 1024 * 1024).map((_, i) => (i * 31) & 0xff)
    writeFileSync(join(dir, 'up.bin'), upload)
    const post = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '--data-binary', `@${join(dir, 'up.bin')}`, `https://127.0.0.1:${proxy.port}/hash`])
    expect(post.stdout).toBe(createHash('sha256').update(upload).digest('hex'))
    const down = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '-o', join(dir, 'down.bin'), '-w', '%{size_download} %{http_version}', `https://127.0.0.1:${proxy.port}/big`])
    expect(down.stdout).toBe(`${20 * 1024 * 1024} 2`)
  })

  test('--http2 off: the TLS listener speaks HTTP/1.1 only', async () => {
    const o = origin()
    const { proxy } = proxyTls(o.port!, { http2: false })
    const r = await run('curl', ['-sS', '--http2', '--cacert', certs.caFile, '-w', '\n%{http_version}', `https://127.0.0.1:${proxy.port}/x`])
    expect(r.stdout.endsWith('\n1.1')).toBe(true)
  })

  test('an HTTP/1.1 Upgrade: h2c request is served as plain HTTP/1.1 on a kept-alive connection, not tunnelled', async () => {
    const o = origin()
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${o.port}` } })
    // Two requests on one connection: the first asks for h2c; both are answered over HTTP/1.1.
    const r = await run('curl', ['-sS', '--http1.1', '-H', 'upgrade: h2c', '-H', 'connection: upgrade, http2-settings', '-H', 'http2-settings: AAMAAABkAARAAAAAAAIAAAAA', '-w', ' %{http_code} %{num_connects}\n', `http://127.0.0.1:${proxy.port}/a`, `http://127.0.0.1:${proxy.port}/b`])
    expect(r.stdout).toBe(`hello 127.0.0.1:${proxy.port}  200 1\nhello 127.0.0.1:${proxy.port}  200 0\n`)
    // One pooled upstream connection served both: no fresh connection per request as a tunnel would take.
    expect(originConnections.size).toBe(1)
  })
})

describe.if(have('nghttp'))('nghttp', () => {
  test('64 concurrent requests to a slow origin share one client connection and are in flight together', async () => {
    const o = origin()
    const { proxy } = proxyTls(o.port!)
    let inFlight = 0
    let peak = 0
    const slow = h.origin({
      async fetch() {
        peak = Math.max(peak, ++inFlight)
        await Bun.sleep(300)
        inFlight--
        return new Response('slow')
      },
    })
    const p2 = proxyTls(slow.port!).proxy
    const urls = Array.from({ length: 64 }, (_, i) => `https://127.0.0.1:${p2.port}/s${i}`)
    const r = await run('nghttp', ['-n', '-s', ...urls])
    expect(r.status).toBe(0)
    // Every stream was answered, and the origin saw all 64 at once (one client connection, multiplexed).
    expect(h.records.filter((x) => x.path.startsWith('/s') && x.status === 200).length).toBe(64)
    expect(peak).toBe(64)
    void proxy
  })
})

describe.if(have('h2load'))('h2load', () => {
  test('2000 requests over 4 connections with 10 streams each: all 2xx, ALPN h2', async () => {
    const o = origin()
    const { proxy } = proxyTls(o.port!)
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '10', `https://127.0.0.1:${proxy.port}/x`])
    expect(r.stdout).toContain('Application protocol: h2')
    expect(r.stdout).toMatch(/status codes: 2000 2xx/)
    expect(originRequests).toBe(2000)
  })
})
