/**
 * The same source under Deno: `deno run -A src/main.ts serve` proxies GET and a streamed POST.
 * Deno comes from the `deno` npm package (devDependency).
 */
import { afterAll, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { makeCerts } from '../support/certs.ts'

const DENO = 'node_modules/.bin/deno'
const origins: { stop(force?: boolean): unknown }[] = []
afterAll(() => origins.forEach((o) => o.stop(true)))

test('serve runs on Deno', async () => {
  expect(existsSync(DENO)).toBe(true)
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      if (req.method === 'POST') return new Response(`got ${(await req.arrayBuffer()).byteLength} bytes`)
      return new Response(`hello ${req.headers.get('host')} via ${req.headers.get('x-forwarded-for')}`)
    },
  })
  origins.push(origin)
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off'], DENO)
  try {
    const res = await fetch(`${proxy.url}/x`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe(`hello ${new URL(proxy.url).host} via 127.0.0.1`)
    expect(res.headers.get('x-request-id')).toBeTruthy()
    const big = new Uint8Array(3 * 1024 * 1024)
    const post = await fetch(`${proxy.url}/up`, { method: 'POST', body: big })
    expect(await post.text()).toBe(`got ${big.byteLength} bytes`)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('serve on Deno speaks HTTP/2 by ALPN (Deno.serve), and :authority reaches the origin as Host', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (req) => new Response(`hello ${req.headers.get('host')}`) })
  origins.push(origin)
  const certs = makeCerts(['edge.test'], ['127.0.0.1'])
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], DENO)
  try {
    const port = new URL(proxy.url).port
    const curl = Bun.spawn(['curl', '-sS', '--http2', '--cacert', certs.caFile, '--connect-to', `edge.test:443:127.0.0.1:${port}`, '-w', '\n%{http_version}', 'https://edge.test/x'], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    const out = await new Response(curl.stdout).text()
    await curl.exited
    expect(out).toBe('hello edge.test\n2')
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)
