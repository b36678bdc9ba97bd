/**
 * "Expect: 100-continue" on the own listener and client_body_timeout: the 100 is sent when the
 * request path first reads the body (client-connection.ts), so a client that waits for it sends
 * nothing until then, and the body's timer must not run before it. Over HTTP/2 the same: an
 * interim HEADERS :status 100 at the body's first read (h2-client.ts), none before a refusal.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Flag, FrameType } from '../../src/http2/frames.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('a client waiting for its 100 while the upstream connection is not ready yet is not timed by client_body_timeout', async () => {
  const origin = h.origin({
    fetch: async (req) => {
      const path = new URL(req.url).pathname
      if (path === '/busy') await Bun.sleep(2000)
      return new Response(`${path} ${(await req.arrayBuffer()).byteLength}`)
    },
  })
  // One upstream connection, held by /busy for 2 s: the upload's request waits for it (up to connect_timeout, 5 s).
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, max_conns_per_address: 1 }, server: { listener: 'own', client_body_timeout: '1s' } })
  const busy = fetch(`${url}/busy`).then((r) => r.text())
  expect(await waitFor(() => proxy.pendingRequests === 1)).toBe(true)
  const c = rawClient(h, proxy.port)
  // Over the read-ahead (64 KiB): the body streams, read once the upstream connection is there.
  const length = 100_000
  c.s.write(`POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`)
  expect(await waitFor(() => c.got() !== '', 4000, 20)).toBe(true)
  // Bun.serve's own 100, relayed (with the request's id), once the upstream connection is there.
  expect(c.got()).toMatch(/^HTTP\/1\.1 100 Continue\r\n(x-request-id: [^\r]+\r\n)?\r\n$/)
  c.s.write('a'.repeat(length))
  expect(await waitFor(() => c.closed(), 4000)).toBe(true)
  expect(c.got()).toContain('HTTP/1.1 200 ')
  expect(c.got()).toEndWith(`/up ${length}`)
  expect(await busy).toBe('/busy 0')
})

describe('HTTP/2 (RFC 9113 §8.1, RFC 9110 §10.1.1): the same rules as HTTP/1.1', () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  /** An origin that answers with the Expect field it got and the body's length. */
  function echoOrigin() {
    return h.origin({ fetch: async (req) => new Response(`expect=${req.headers.get('expect')} ${(await req.arrayBuffer()).byteLength}`) })
  }
  const tlsProxy = (originPort: number, server: Record<string, unknown> = {}) =>
    h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, ...server } }).proxy

  test('a request expecting 100-continue gets an interim HEADERS :status 100 once its body is wanted, then the final answer', async () => {
    const origin = echoOrigin()
    const proxy = tlsProxy(origin.port!)
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
    // The client sends nothing more until the 100.
    expect(await waitFor(() => c.statuses(1).length > 0, 3000)).toBe(true)
    expect(c.statuses(1)).toEqual(['100'])
    const interim = c.frames.find((f) => f.type === FrameType.HEADERS && f.streamId === 1)!
    expect(interim.flags & Flag.END_STREAM).toBe(0)
    c.send(c.data(1, 'hello', true))
    expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
    expect(c.statuses(1)).toEqual(['100', '200'])
    // The Expect field goes upstream as it does from an HTTP/1.1 client (it is not hop-by-hop, RFC 9110 §10.1.1).
    // (curl runs beside the proxy, which is in this process: spawned, not spawnSync.)
    const curl = Bun.spawn(['curl', '-sS', '--http1.1', '--cacert', certs.caFile, '-H', 'Expect: 100-continue', '--data-binary', 'hello', `https://127.0.0.1:${proxy.port}/up`], { stdout: 'pipe', timeout: 10_000 })
    expect(c.bodyOf(1)).toBe(await new Response(curl.stdout).text())
    expect(c.bodyOf(1)).toBe('expect=100-continue 5')
  })

  test('a request refused before its body is read (413) gets the refusal, no 100 (RFC 9110 §15.2.1)', async () => {
    const origin = echoOrigin()
    const proxy = tlsProxy(origin.port!, { max_body_size: '1KiB' })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5000']], false))
    expect(await waitFor(() => c.statuses(1).length > 0, 3000)).toBe(true)
    expect(c.statuses(1)).toEqual(['413'])
  })

  // Bun.serve answers every Expect with a 100 of its own, which the proxy forwards (RFC 9110 §15.2:
  // interim.test.ts): the origin here sends none, so what the client gets is the proxy's doing.
  test('a body begun with the head, the rest later, gets no 100 either: never one in the middle of a body', async () => {
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const proxy = tlsProxy(origin.port)
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    // A client that does not wait: the head and the first DATA frame in one write, the rest later.
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '10']], false), c.data(1, 'hello'))
    await Bun.sleep(300)
    expect(c.statuses(1)).toEqual([])
    c.send(c.data(1, 'world', true))
    expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
    expect(c.statuses(1)).toEqual(['200'])
    expect(origin.header(origin.requests[0]!, 'expect')).toBe('100-continue')
    expect(origin.requests[0]!.body).toBe('helloworld')
  })

  test('a body already on its way gets no 100: the client is not waiting for one', async () => {
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const proxy = tlsProxy(origin.port)
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false), c.data(1, 'hello', true))
    expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
    expect(c.statuses(1)).toEqual(['200'])
    expect(origin.header(origin.requests[0]!, 'expect')).toBe('100-continue')
    expect(origin.requests[0]!.body).toBe('hello')
  })
})

test.each([5, 3_000_000])('a head with Expect: 100-continue (Content-Length %i) goes upstream at once, so the origin can refuse before any body is sent (RFC 9110 §10.1.1; outside sweep, twentieth session)', async (length) => {
  let heads = 0
  // The origin answers 401 as soon as it has the head, reading no body.
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, d) {
        if (!Buffer.from(d).toString('latin1').includes('\r\n\r\n')) return
        heads++
        s.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope')
        s.end()
      },
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
  const c = rawClient(h, proxy.port)
  c.s.write(`POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`)
  // No body is sent. Before: the head waited for the body's read-ahead, the origin never saw it, and the client got a 100, then a 408.
  expect(await waitFor(() => c.got().includes('401 Unauthorized'), 4000)).toBe(true)
  expect(heads).toBe(1)
  expect(c.got()).toEndWith('nope')
})

/**
 * An origin of raw bytes for the Expect tests below: `onHead` answers a request head (before any
 * body), and every byte received is kept.
 */
function headOrigin(onHead: (s: import('bun').Socket<undefined>) => void) {
  const got: { bytes: string } = { bytes: '' }
  const server = Bun.listen<undefined>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, d) {
        const before = got.bytes
        got.bytes += Buffer.from(d).toString('latin1')
        if (!before.includes('\r\n\r\n') && got.bytes.includes('\r\n\r\n')) onHead(s)
      },
    },
  })
  h.track(() => server.stop(true))
  return { port: server.port, got }
}

describe("the proxy's own 100 waits for the origin's word (RFC 9110 §10.1.1, §15.2.1; outside review, fourteenth round)", () => {
  test('an origin that refuses at the head (417): the client gets the refusal with no 100 before it, and no body goes upstream', async () => {
    const origin = headOrigin((s) => void (s.write('HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno'), s.end()))
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
    const c = rawClient(h, proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n\r\nno'), 4000)).toBe(true)
    // Before: "HTTP/1.1 100 Continue" came first, sent by the proxy as soon as the head went upstream.
    expect(c.got()).toStartWith('HTTP/1.1 417 ')
    expect(origin.got.bytes).toEndWith('\r\n\r\n')
  })

  test('an origin that says 100 Continue: the client gets that one 100, then the body goes up', async () => {
    const origin = headOrigin((s) => void s.write('HTTP/1.1 100 Continue\r\nX-From: origin\r\n\r\n'))
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
    const c = rawClient(h, proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 4000)).toBe(true)
    // The origin's own 100 (its field with it), not one the proxy made up.
    expect(c.got()).toStartWith('HTTP/1.1 100 Continue\r\nX-From: origin\r\n')
    expect(c.got().split('100 Continue').length).toBe(2)
    c.s.write('abc')
    expect(await waitFor(() => origin.got.bytes.endsWith('\r\n\r\nabc'), 4000)).toBe(true)
  })

  test('an origin that says nothing until the body comes: the proxy sends the 100 after a while, and the upload goes through', async () => {
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
    const c = rawClient(h, proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n')
    expect(await waitFor(() => c.got() !== '', 4000, 20)).toBe(true)
    expect(c.got()).toBe('HTTP/1.1 100 Continue\r\n\r\n')
    c.s.write('abc')
    expect(await waitFor(() => c.got().includes('POST /up'), 4000)).toBe(true)
    expect(origin.requests[0]!.body).toBe('abc')
  })

  test('a header_timeout under the wait: the waiting client still gets its 100 and its answer, not a 408 (second-opinion review)', async () => {
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, header_timeout: '400ms' }, server: { listener: 'own' } })
    const c = rawClient(h, proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n')
    expect(await waitFor(() => c.got() !== '', 4000, 20)).toBe(true)
    // Before: 408 (the upstream exchange timed the client's silence while the listener held its 100 back).
    expect(c.got()).toBe('HTTP/1.1 100 Continue\r\n\r\n')
    c.s.write('abc')
    expect(await waitFor(() => c.closed(), 4000)).toBe(true)
    expect(c.got()).toContain('HTTP/1.1 200 ')
    expect(origin.requests[0]!.body).toBe('abc')
  })

  /** An origin that answers 1.5 s after the whole request: longer than the proxy's wait for a 100. */
  const slowOrigin = () => RawOrigin.start((_req, sock) => void setTimeout(() => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 1500))

  test('a client that sends its body after a pause without waiting for a 100 gets none (it is not waiting)', async () => {
    const origin = await slowOrigin()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
    const c = rawClient(h, proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n')
    await Bun.sleep(200)
    c.s.write('abc')
    expect(await waitFor(() => c.closed(), 4000)).toBe(true)
    // Before: the proxy's 100 came at 1 s, after the whole body, before the answer.
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(origin.requests[0]!.body).toBe('abc')
  })

  test('HTTP/2: a client_body_timeout under the wait does not cut a client waiting for its 100 (second-opinion review)', async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, client_body_timeout: '400ms' } })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
    expect(await waitFor(() => c.statuses(1).length > 0, 4000)).toBe(true)
    // Before: 408, the body's stall timer running while the proxy held its 100 back.
    expect(c.statuses(1)).toEqual(['100'])
    c.send(c.data(1, 'hello', true))
    expect(await waitFor(() => c.ended(1), 4000)).toBe(true)
    expect(c.statuses(1)).toEqual(['100', '200'])
    expect(origin.requests[0]!.body).toBe('hello')
  })

  test('HTTP/2: an Expect stream whose client sends without waiting is timed by client_body_timeout alone (third review)', async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = await RawOrigin.start()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, client_body_timeout: '300ms' } })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    const before = h.records.length
    // Half the body at once, then nothing: the client is sending, not waiting for a 100.
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '10']], false), c.data(1, 'hello'))
    expect(await waitFor(() => c.statuses(1).length > 0, 4000)).toBe(true)
    expect(c.statuses(1)).toEqual(['408'])
    expect(await waitFor(() => h.records.length > before, 2000)).toBe(true)
    // Before: "for 1300ms": the wait for a 100 that was never due was added to the whole body's timeout.
    expect(h.records.at(-1)!.error_detail).toContain('no request body bytes for 300ms (client_body_timeout)')
  })

  test("HTTP/2: after the origin's 100 a silent client is timed from that 100 by client_body_timeout, not a second more (third review)", async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = headOrigin((s) => void s.write('HTTP/1.1 100 Continue\r\n\r\n'))
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, client_body_timeout: '300ms' } })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
    expect(await waitFor(() => c.statuses(1).length > 0, 4000, 5)).toBe(true)
    const continuedAt = performance.now()
    expect(c.statuses(1)).toEqual(['100'])
    expect(await waitFor(() => c.statuses(1).length > 1, 4000, 5)).toBe(true)
    expect(c.statuses(1)).toEqual(['100', '408'])
    // 300 ms and the stall sweep's step after the 100; before, 1,300 ms and the step (the wait for
    // the proxy's own 100 stayed in the timer the first read had started).
    expect(performance.now() - continuedAt).toBeLessThan(1000)
  })

  test('HTTP/2: a client that sends its body after a pause without waiting gets no 100', async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = await slowOrigin()
    h.track(() => origin.close())
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
    await Bun.sleep(200)
    c.send(c.data(1, 'hello', true))
    expect(await waitFor(() => c.ended(1), 4000)).toBe(true)
    expect(c.statuses(1)).toEqual(['200'])
  })

  test('HTTP/2: an origin that refuses at the head (417) gives the client the refusal with no interim 100', async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = headOrigin((s) => void (s.write('HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno'), s.end()))
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
    const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
    c.send(c.request(1, 'POST', '/up', [['expect', '100-continue'], ['content-length', '5']], false))
    expect(await waitFor(() => c.ended(1) || c.statuses(1).includes('417'), 4000)).toBe(true)
    expect(c.statuses(1)).toEqual(['417'])
  })
})
