/**
 * A reload and the client listener (proxy/server.ts reload): limits and timeouts change on the
 * open listener, so a kept-alive connection from before is still served; one that moves the
 * listener answers a request sent on a kept-alive connection to the old one as the reload runs
 * (with Connection: close) rather than cutting it; a certificate renewed
 * at the same paths is served to new connections; a certificate pair that is not one (garbage,
 * or a key of another certificate) is refused before the listener is touched, which goes on
 * serving. Real sockets on loopback; the reload is ProxyServer.reload with a resolved config, as
 * SIGHUP calls it.
 */
import { afterEach, expect, test } from 'bun:test'
import { copyFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { makeCerts } from '../support/certs.ts'
import { freePort, Harness, rawClient, waitFor } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { migratesQueuedConnections } from '../../src/runtime/shared-port.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** One TLS connection: the served certificate's subjectAltName and the answer to one request. */
function tlsAsk(port: number, ca: string[]): Promise<{ san: string; answer: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'proxy.test', ALPNProtocols: ['http/1.1'] })
    let answer = ''
    let san = ''
    const timer = setTimeout(() => (s.destroy(), reject(new Error('no answer'))), 5000)
    s.once('secureConnect', () => {
      san = String(s.getPeerCertificate().subjectaltname)
      s.write('GET / HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n')
    })
    s.on('data', (d) => (answer += d.toString('latin1')))
    s.on('error', (e) => (clearTimeout(timer), reject(e)))
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ san, answer })
    })
  })
}

test('a reload that changes limits and timeouts keeps the listener: a kept-alive connection from before is served after', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const listen = `127.0.0.1:${await freePort()}`
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listen } }
  const { proxy } = h.proxy(flags)
  const port = proxy.port
  const sock = net.connect(port, '127.0.0.1')
  h.track(() => void sock.destroy())
  let got = ''
  sock.on('data', (d) => (got += d.toString('latin1')))
  sock.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => got.endsWith('hello'))).toBe(true)

  await proxy.reload(h.config({ ...flags, server: { listen, keepalive_timeout: '30s', client_header_timeout: '5s', max_connections: 50 } }))
  expect(proxy.port).toBe(port)
  got = ''
  sock.write('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => got.endsWith('hello'))).toBe(true)
  expect(got).toStartWith('HTTP/1.1 200 ')

  // The new cap is in force on the same listener.
  await proxy.reload(h.config({ ...flags, server: { listen, max_connections: 1 } }))
  const second = net.connect(port, '127.0.0.1')
  h.track(() => void second.destroy())
  let refused = ''
  second.on('data', (d) => (refused += d.toString('latin1')))
  expect(await waitFor(() => refused.includes('\r\n\r\n'))).toBe(true)
  expect(refused).toStartWith('HTTP/1.1 503 ')
})

test('a reload that moves the listener answers a request sent to the old one as it runs, with Connection: close, rather than cutting it', async () => {
  const origin = h.origin({ fetch: (req) => new Response(`ok ${new URL(req.url).pathname}`) })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` } }
  const { proxy } = h.proxy(flags)
  const oldPort = proxy.port
  const c = rawClient(h, oldPort)
  c.s.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.got().endsWith('ok /first'))).toBe(true)
  // The connection is idle. The next request leaves in the same turn as the reload that opens a
  // new listener elsewhere and stops the old one: the proxy has not read it when the stop begins.
  c.clear()
  const moved = h.config({ ...flags, server: { listen: `127.0.0.1:${await freePort()}` } })
  c.s.write('GET /second HTTP/1.1\r\nHost: a\r\n\r\n')
  await proxy.reload(moved)
  expect(proxy.port).not.toBe(oldPort)
  expect(await waitFor(() => c.closed())).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got().toLowerCase()).toContain('\r\nconnection: close\r\n')
  expect(c.got()).toEndWith('ok /second')
})

test('a connection busy at a reload that moves the listener, its reply head already sent keep-alive, gets the grace too: a next request sent right after the reply is answered, with Connection: close', async () => {
  let release: () => void = () => {}
  const released = new Promise<void>((r) => (release = r))
  h.track(() => release())
  const origin = h.origin({
    fetch(req) {
      if (new URL(req.url).pathname !== '/streaming') return new Response(`ok ${new URL(req.url).pathname}`)
      // The head and a first byte at once, the end when the test says: the reply is under way at the reload.
      let sent = false
      const body = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          if (sent) {
            await Promise.race([released, Bun.sleep(5000)])
            ctl.enqueue(new Uint8Array(50_000).fill(0x62))
            return ctl.close()
          }
          ctl.enqueue(new Uint8Array(50_000).fill(0x61))
          sent = true
        },
      })
      return new Response(body, { headers: { 'content-length': '100000' } })
    },
  })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` } }
  const { proxy } = h.proxy(flags)
  const c = rawClient(h, proxy.port)
  c.s.write('GET /streaming HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.got().includes('\r\n\r\n'))).toBe(true)
  expect(c.got().toLowerCase()).not.toContain('connection: close') // the head went out keep-alive
  await proxy.reload(h.config({ ...flags, server: { listen: `127.0.0.1:${await freePort()}` } }))
  release()
  expect(await waitFor(() => c.got().endsWith('b'.repeat(50_000)) || c.got().endsWith('\r\n0\r\n\r\n'))).toBe(true) // Bun's origin sends it chunked
  // As a client does: the next request at once on the connection its reply said stays open.
  c.clear()
  c.s.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.closed())).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got().toLowerCase()).toContain('\r\nconnection: close\r\n')
  expect(c.got()).toEndWith('ok /next')
})

test('a head begun on the old listener in the reload\'s grace gets the whole client_header_timeout, not a 408 when the grace ends', async () => {
  const origin = h.origin({ fetch: (req) => new Response(`ok ${new URL(req.url).pathname}`) })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` } }
  const { proxy } = h.proxy(flags)
  const c = rawClient(h, proxy.port)
  await new Promise<void>((r) => c.s.once('connect', () => r()))
  // Accepted, nothing sent yet; the reload moves the listener. Part of a head comes in the grace,
  // the rest after it (client_header_timeout is 10 s): the request is served.
  await proxy.reload(h.config({ ...flags, server: { listen: `127.0.0.1:${await freePort()}` } }))
  c.s.write('GET /slow HTTP/1.1\r\nHo')
  await Bun.sleep(1300)
  c.s.write('st: a\r\n\r\n')
  expect(await waitFor(() => c.got().endsWith('ok /slow') || c.got().includes(' 408 '))).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got().toLowerCase()).toContain('\r\nconnection: close\r\n')
})

test('TLS: a pair renewed at the same paths is served after a reload; a bad pair is refused and the listener goes on serving', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const first = makeCerts(['proxy.test'], ['127.0.0.1'])
  const second = makeCerts(['proxy.test', 'renewed.test'], ['127.0.0.1'])
  const dir = testDir('proxy-reload-tls-')
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  copyFileSync(first.certFile, certFile)
  copyFileSync(first.keyFile, keyFile)
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listen: `127.0.0.1:${await freePort()}`, tls_cert: certFile, tls_key: keyFile } }
  const { proxy } = h.proxy(flags)
  const cas = [first.ca, second.ca]
  const before = await tlsAsk(proxy.port, cas)
  expect(before.answer).toStartWith('HTTP/1.1 200 ')
  expect(before.san).not.toContain('renewed.test')

  // Garbage in the certificate file: refused, naming the key; the old pair is still served.
  writeFileSync(certFile, 'garbage\n')
  await expect(proxy.reload(h.config(flags))).rejects.toThrow(/server\.tls_cert/)
  expect((await tlsAsk(proxy.port, cas)).answer).toStartWith('HTTP/1.1 200 ')

  // A key that is not the certificate's: refused too.
  copyFileSync(second.certFile, certFile)
  await expect(proxy.reload(h.config(flags))).rejects.toThrow(/not the key of the certificate/)
  const still = await tlsAsk(proxy.port, cas)
  expect(still.answer).toStartWith('HTTP/1.1 200 ')
  expect(still.san).not.toContain('renewed.test')

  // The renewed pair, whole: served from the next connection on, on the same port.
  copyFileSync(second.keyFile, keyFile)
  const port = proxy.port
  await proxy.reload(h.config(flags))
  expect(proxy.port).toBe(port)
  const after = await tlsAsk(proxy.port, cas)
  expect(after.answer).toStartWith('HTTP/1.1 200 ')
  expect(after.san).toContain('renewed.test')
})

test.skipIf(process.platform !== 'linux')('one process listens with SO_REUSEPORT, so that a reload needing a new socket opens it beside the old one; a second proxy on the port still fails to start', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listen: `127.0.0.1:${await freePort()}`, tls_cert: certs.certFile, tls_key: certs.keyFile } }
  const lines: string[] = []
  const proxy = new ProxyServer(h.config(flags), { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), log: (_, msg) => void lines.push(msg) }).start()
  h.track(() => proxy.close())
  // A socket of this user can join the port: the proxy's has SO_REUSEPORT (before: "address in use").
  const joinOptions = { hostname: '127.0.0.1', port: proxy.port, reusePort: true, socket: { data() {} } } // reusePort: not in Bun's types
  const joined = Bun.listen(joinOptions)
  joined.stop(true)
  // Yet a second proxy on the address does not start beside the first: the address is claimed alone first.
  expect(() => h.proxy(flags)).toThrow(/address in use/)
  // HTTP/2 turned off needs a new socket (its ALPN list): opened on the same port, the old one then closed.
  const port = proxy.port
  await proxy.reload(h.config({ ...flags, server: { ...flags.server, http2: false } }))
  expect(proxy.port).toBe(port)
  expect((await tlsAsk(port, [certs.ca])).answer).toStartWith('HTTP/1.1 200 ')
  // Where Linux would reset what waits in the old socket's accept queue, the log says how to have it handed over.
  const hinted = lines.some((m) => m.includes('net.ipv4.tcp_migrate_req=1'))
  expect(hinted).toBe(migratesQueuedConnections() === false)
})

test.skipIf(process.platform !== 'linux')('a reload to another address on the same port that overlaps the old one ([::ffff:127.0.0.1]:P to 127.0.0.1:P) opens beside it: no "address in use" from the proxy\'s own socket', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const port = await freePort()
  const flags = (listen: string) => ({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listen } })
  const { proxy } = h.proxy(flags(`[::ffff:127.0.0.1]:${port}`))
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello')
  await proxy.reload(h.config(flags(`127.0.0.1:${port}`)))
  expect(proxy.port).toBe(port)
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello')
  // And back.
  await proxy.reload(h.config(flags(`[::ffff:127.0.0.1]:${port}`)))
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello')
})

test('a drain after a reload that replaced the listener waits for the old listener\'s requests too, and counts them (max_concurrent_requests, pendingRequests)', async () => {
  const origin = h.origin({
    async fetch(req) {
      if (new URL(req.url).pathname === '/slow') await Bun.sleep(800)
      return new Response(`ok ${new URL(req.url).pathname}`)
    },
  })
  const flags = { upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { max_concurrent_requests: 1 } }
  const { proxy } = h.proxy(flags)
  const c = rawClient(h, proxy.port)
  c.s.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  await proxy.reload(h.config({ ...flags, server: { max_concurrent_requests: 1, listen: `127.0.0.1:${await freePort()}` } }))
  // The old listener's request still counts: the new listener's first request is over the limit of 1.
  expect(proxy.pendingRequests).toBe(1)
  const over = await fetch(`http://127.0.0.1:${proxy.port}/new`)
  expect(over.status).toBe(503)
  await over.arrayBuffer()
  // The drain waits for it; its client gets the whole answer.
  await proxy.drain(5000)
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got()).toEndWith('ok /slow')
})
