/**
 * Location rewriting through a running proxy (proxy_redirect, default on): a redirect the origin
 * points at its own URL reaches the client pointing at the URL the client used, and one that
 * points elsewhere arrives untouched. Real origin, real clients (fetch and curl) on loopback.
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An origin that redirects to itself by its own address (as an app behind a proxy often does), or elsewhere. */
function redirectingOrigin() {
  const origin = h.origin({
    fetch(req) {
      const self = `http://127.0.0.1:${origin.port}`
      const path = new URL(req.url).pathname
      if (path === '/self') return new Response(null, { status: 302, headers: { location: `${self}/landing?from=self` } })
      if (path === '/elsewhere') return new Response(null, { status: 302, headers: { location: 'https://login.example.net/sso' } })
      if (path === '/relative') return new Response(null, { status: 301, headers: { location: '/landing' } })
      if (path === '/cookie') return new Response('c', { headers: [['set-cookie', `s=1; Domain=127.0.0.1; Path=/app/`], ['set-cookie', 't=2; Path=/other']] })
      return new Response(`landing ${req.headers.get('host')}`)
    },
  })
  return origin
}

test('a redirect to the upstream itself is rewritten to the client\'s URL, and following it stays on the proxy', async () => {
  const origin = redirectingOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const proxyHost = new URL(url).host
  const res = await fetch(`${url}/self`, { redirect: 'manual' })
  expect(res.status).toBe(302)
  expect(res.headers.get('location')).toBe(`http://${proxyHost}/landing?from=self`)
  // A client that follows it comes back through the proxy, never to the origin directly.
  const followed = await fetch(`${url}/self`)
  expect(followed.url).toBe(`http://${proxyHost}/landing?from=self`)
  expect(await followed.text()).toBe(`landing ${proxyHost}`)
})

test('the Host the client sent is used (curl, with a name for the proxy)', async () => {
  const origin = redirectingOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const port = new URL(url).port
  const curl = Bun.spawn(['curl', '-s', '-o', '/dev/null', '-m', '10', '-w', '%{redirect_url}', '--resolve', `edge.example:${port}:127.0.0.1`, `http://edge.example:${port}/self`], { stdout: 'pipe' })
  h.track(() => curl.kill())
  expect(await new Response(curl.stdout).text()).toBe(`http://edge.example:${port}/landing?from=self`)
  expect(await curl.exited).toBe(0)
})

test('a redirect elsewhere, and a relative one, arrive untouched', async () => {
  const origin = redirectingOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const elsewhere = await fetch(`${url}/elsewhere`, { redirect: 'manual' })
  expect(elsewhere.headers.get('location')).toBe('https://login.example.net/sso')
  const relative = await fetch(`${url}/relative`, { redirect: 'manual' })
  expect(relative.status).toBe(301)
  expect(relative.headers.get('location')).toBe('/landing')
})

test('proxy_redirect = "off" relays the origin\'s own URL', async () => {
  const origin = redirectingOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, proxy_redirect: 'off' } })
  const res = await fetch(`${url}/self`, { redirect: 'manual' })
  expect(res.headers.get('location')).toBe(`http://127.0.0.1:${origin.port}/landing?from=self`)
})

test('proxy_cookie_domain and proxy_cookie_path rewrite each Set-Cookie', async () => {
  const origin = redirectingOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, proxy_cookie_domain: '127.0.0.1 www.example.com', proxy_cookie_path: ['/app/ /'] } })
  const res = await fetch(`${url}/cookie`)
  expect(res.headers.getSetCookie()).toEqual(['s=1; Domain=www.example.com; Path=/', 't=2; Path=/other'])
})
