/**
 * What only the own HTTP/1.1 listener does (server.listener = "own"): client_header_timeout,
 * max_connections, absolute-form refusal, pipelining, Expect: 100-continue, HTTP/1.0 keep-alive,
 * Content-Length on streamed responses, and non-WebSocket upgrades. Raw clients on loopback.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Harness, rawClient as rawClientOf, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const rawClient = (port: number) => rawClientOf(h, port)

function countingOrigin() {
  const seen: string[] = []
  const origin = h.origin({
    async fetch(req) {
      const body = await req.text()
      seen.push(`${req.method} ${new URL(req.url).pathname}${body ? ` ${body}` : ''}`)
      return new Response(`hi ${new URL(req.url).pathname}`)
    },
  })
  return { origin, seen }
}

const own = (port: number, server: Record<string, unknown> = {}) => h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { listener: 'own', ...server } })

describe('own listener', () => {
  test('a refused head is logged with what of it came whole: its request line, and its Host as sent (outside review, twentieth round)', async () => {
    const { origin } = countingOrigin()
    const { proxy } = own(origin.port!, { max_header_size: '1KiB', client_header_timeout: '1s' })
    const cases: [string, string, number][] = [
      ['/two-lengths', 'GET /two-lengths HTTP/1.1\r\nHost: h.example:8080\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
      ['/too-large', `POST /too-large HTTP/1.1\r\nhOsT:  h.example \r\nX-Big: ${'b'.repeat(2000)}\r\n\r\n`, 431],
      ['/slow', 'GET /slow HTTP/1.1\r\nHost: h.example\r\nX-Slow: ', 408],
      ['/slow-host', 'GET /slow-host HTTP/1.1\r\nX-A: 1\r\nHost: h.exa', 408],
    ]
    for (const [path, bytes, status] of cases) {
      const c = rawClient(proxy.port)
      c.s.write(bytes)
      expect(await waitFor(() => c.closed(), 5000)).toBe(true)
      expect(c.got()).toStartWith(`HTTP/1.1 ${status} `)
    }
    expect(await waitFor(() => h.records.filter((r) => cases.some(([p]) => p === r.path)).length === cases.length, 3000)).toBe(true)
    const of = (path: string) => h.records.find((r) => r.path === path)!
    expect(of('/two-lengths')).toMatchObject({ status: 400, method: 'GET', host: 'h.example:8080' })
    expect(of('/too-large')).toMatchObject({ status: 431, method: 'POST', host: 'h.example' })
    expect(of('/slow')).toMatchObject({ status: 408, method: 'GET', host: 'h.example' })
    expect(of('/slow-host')).toMatchObject({ status: 408, method: 'GET', host: '-' }) // its Host line never ended
  })

  test('a 431\'s record takes nothing past max_header_size: a Host line that ends beyond it is not logged (second opinion, twentieth round)', async () => {
    const { origin } = countingOrigin()
    const { proxy } = own(origin.port!, { max_header_size: '1KiB' })
    for (const [path, hostBytes] of [['/long-host', 4000], ['/short-host', 10]] as const) {
      const c = rawClient(proxy.port)
      c.s.write(`GET ${path} HTTP/1.1\r\nHost: ${'h'.repeat(hostBytes)}\r\nX-Big: ${'b'.repeat(3000)}\r\n\r\n`)
      expect(await waitFor(() => c.closed(), 5000)).toBe(true)
      expect(c.got()).toStartWith('HTTP/1.1 431 ')
    }
    expect(await waitFor(() => h.records.filter((r) => r.path === '/long-host' || r.path === '/short-host').length === 2, 3000)).toBe(true)
    expect(h.records.find((r) => r.path === '/long-host')).toMatchObject({ status: 431, host: '-' })
    expect(h.records.find((r) => r.path === '/short-host')).toMatchObject({ status: 431, host: 'h'.repeat(10) })
  })

  test('client_header_timeout: an unfinished head gets 408 and is closed, a silent connection is closed; nothing reaches the upstream', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { client_header_timeout: '1s' })
    const partial = rawClient(proxy.port)
    partial.s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
    const silent = rawClient(proxy.port)
    expect(await waitFor(() => partial.closed() && silent.closed(), 5000, 50)).toBe(true)
    expect(partial.got()).toStartWith('HTTP/1.1 408 ')
    expect(silent.got()).toBe('')
    expect(seen).toEqual([])
    expect(proxy.refused.header_timeout).toBe(2)
  })

  test('client_header_timeout counts from the first byte, so dribbling does not extend it', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { client_header_timeout: '1s' })
    const c = rawClient(proxy.port)
    c.s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
    const drip = setInterval(() => c.s.writable && c.s.write('a'), 100)
    h.track(() => clearInterval(drip))
    expect(await waitFor(() => c.closed(), 5000, 50)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 408 ')
    expect(seen).toEqual([])
  })

  test('client_body_timeout: a body that stalls gets 408 and is closed, and the upstream never gets the request', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { client_body_timeout: '1s' })
    const c = rawClient(proxy.port)
    c.s.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789')
    expect(await waitFor(() => c.closed(), 5000, 50)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 408 ')
    expect(c.got()).toContain('client_body_timeout')
    expect(seen).toEqual([])
    expect(proxy.refused.body_timeout).toBe(1)
  })

  test('a body stall the request path times first (header_timeout under client_body_timeout) is counted as a body_timeout refusal too, read ahead or streamed (outside review, sixteenth round: 0 counted)', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, header_timeout: '1s' }, server: { listener: 'own', client_body_timeout: '30s' } })
    const small = rawClient(proxy.port)
    small.s.write('POST /ahead HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789')
    const large = rawClient(proxy.port)
    large.s.write(`POST /streamed HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'a'.repeat(200_000)}`)
    expect(await waitFor(() => small.closed() && large.closed(), 10_000, 50)).toBe(true)
    expect([small.got().slice(0, 13), large.got().slice(0, 13)]).toEqual(['HTTP/1.1 408 ', 'HTTP/1.1 408 '])
    expect(seen).toEqual([])
    expect(proxy.refused.body_timeout).toBe(2)
  })

  test('an upload cut after 200 KB (stalled, or the client gone) is logged with the bytes that went upstream', async () => {
    const origin = h.origin({ fetch: async (req) => new Response(String((await req.arrayBuffer()).byteLength)) })
    const { proxy } = own(origin.port!, { client_body_timeout: '1s' })
    const part = 'a'.repeat(200_000)
    const stalled = rawClient(proxy.port)
    stalled.s.write(`POST /stalled HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${part}`)
    expect(await waitFor(() => stalled.closed(), 5000, 50)).toBe(true)
    const gone = rawClient(proxy.port)
    gone.s.write(`POST /gone-upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${part}`)
    await Bun.sleep(300)
    gone.s.destroy()
    expect(await waitFor(() => h.records.some((r) => r.path === '/gone-upload'), 5000)).toBe(true)
    const rec = (path: string) => h.records.find((r) => r.path === path)!
    expect([rec('/stalled').status, rec('/stalled').error, rec('/stalled').bytes_in]).toEqual([408, 'CLIENT_BODY_TIMEOUT', 200_000])
    expect([rec('/gone-upload').status, rec('/gone-upload').error, rec('/gone-upload').bytes_in]).toEqual([499, 'CLIENT_GONE', 200_000])
  })

  test('client_body_timeout is re-armed by each read: a slow but steady body gets through', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { client_body_timeout: '1s' })
    const c = rawClient(proxy.port)
    c.s.write('POST /steady HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nConnection: close\r\n\r\n')
    for (const part of ['ab', 'cd', 'ef']) {
      await Bun.sleep(600)
      c.s.write(part)
    }
    expect(await waitFor(() => c.closed(), 5000, 50)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(seen).toEqual(['POST /steady abcdef'])
  })

  test('a head sent one byte per write is read whole (the end of the head is found across reads)', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.setNoDelay(true)
    const bytes = `GET /dribbled HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(40)}\r\nConnection: close\r\n\r\n`
    for (const ch of bytes) {
      c.s.write(ch)
      await Bun.sleep(1)
    }
    expect(await waitFor(() => c.closed(), 5000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(seen).toEqual(['GET /dribbled'])
  })

  test('max_connections: the connection beyond the cap gets 503 and is closed; a freed slot is usable again', async () => {
    const { origin } = countingOrigin()
    const { proxy } = own(origin.port!, { max_connections: 2 })
    const a = rawClient(proxy.port)
    const b = rawClient(proxy.port)
    await Bun.sleep(100)
    const c = rawClient(proxy.port)
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 503 ')
    expect(c.got()).toContain('retry-after: 1')
    // A whole answer (it is written at accept, with nothing made for the connection): its id, Date,
    // length and close, and its record.
    const id = /\r\nx-request-id: ([^\r]+)\r\n/.exec(c.got())?.[1]
    expect(id).toBeDefined()
    expect(c.got()).toMatch(/\r\ndate: [^\r]+ GMT\r\n/)
    expect(c.got()).toContain('\r\nconnection: close\r\n')
    const [head, body] = c.got().split('\r\n\r\n')
    expect(Number(/\r\ncontent-length: (\d+)/.exec(head!)?.[1])).toBe(Buffer.byteLength(body!))
    expect(await waitFor(() => h.records.some((r) => r.request_id === id))).toBe(true)
    expect(h.records.find((r) => r.request_id === id)).toMatchObject({ status: 503, error: 'TOO_MANY_CONNECTIONS' })
    expect(proxy.refused.connections).toBe(1)
    expect(proxy.clientConnections).toBe(2)
    // The two held connections still work.
    a.s.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await waitFor(() => a.got().includes('hi /a'))).toBe(true)
    b.s.destroy()
    await waitFor(() => b.closed())
    await Bun.sleep(50)
    const d = rawClient(proxy.port)
    d.s.write('GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(await waitFor(() => d.closed(), 3000)).toBe(true)
    expect(d.got()).toStartWith('HTTP/1.1 200 ')
  })

  test('absolute-form: another host is refused with nothing forwarded; the Host itself is reduced to origin-form', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const evil = rawClient(proxy.port)
    evil.s.write('GET http://evil.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n')
    expect(await waitFor(() => evil.closed(), 3000)).toBe(true)
    expect(evil.got()).toStartWith('HTTP/1.1 400 ')
    expect(seen).toEqual([])
    const same = rawClient(proxy.port)
    same.s.write('GET http://a.example/y?z HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n')
    expect(await waitFor(() => same.closed(), 3000)).toBe(true)
    expect(same.got()).toStartWith('HTTP/1.1 200 ')
    expect(seen).toEqual(['GET /y'])
  })

  test('pipelined requests are answered in order on one connection', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    const bodies = [...c.got().matchAll(/hi (\/\d)/g)].map((m) => m[1])
    expect(bodies).toEqual(['/1', '/2', '/3'])
    expect(seen).toEqual(['GET /1', 'POST /2 abc', 'GET /3'])
  })

  test('pipelined requests refused in the same turn (413, body whole) are each answered, in order, and the connection goes on', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { max_body_size: '1' })
    const c = rawClient(proxy.port)
    // 3,000 tiny refused requests in as few reads as the kernel makes of them, then one that passes.
    const refused = 3000
    c.s.write('POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab'.repeat(refused) + 'GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(await waitFor(() => c.closed(), 20_000, 50)).toBe(true)
    const statuses = [...c.got().matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => m[1])
    expect(statuses.length).toBe(refused + 1)
    expect(statuses.slice(0, refused).every((st) => st === '413')).toBe(true)
    expect(statuses.at(-1)).toBe('200')
    expect(c.got()).toEndWith('hi /ok')
    expect(seen).toEqual(['GET /ok'])
  })

  test('Expect: 100-continue gets 100 before the body is sent, then the final answer', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n')
    // The origin's (Bun.serve's) 100, relayed with the request's id: the body waits for it (expect-continue.test.ts).
    expect(await waitFor(() => /^HTTP\/1\.1 100 Continue\r\n(x-request-id: [^\r]+\r\n)?\r\n$/.test(c.got()), 3000)).toBe(true)
    c.s.write('hello')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toContain('HTTP/1.1 200 ')
    expect(seen).toEqual(['POST /up hello'])
  })

  test('Expect: 100-continue on a request refused before its body is read gets the refusal, no 100 (RFC 9110 §15.2.1)', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!, { max_body_size: '1KiB' })
    const c = rawClient(proxy.port)
    c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n')
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 413 ')
    expect(c.got()).not.toContain(' 100 ')
    expect(seen).toEqual([])
  })

  test('HTTP/1.0 with Expect: 100-continue gets no 100 (RFC 9110 §10.1.1), only the answer once the body is sent', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('POST /up HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n')
    // Long enough for a 100 to have come on loopback; then the body.
    await Bun.sleep(150)
    expect(c.got()).toBe('')
    c.s.write('hello')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(c.got()).not.toContain(' 100 ')
    expect(seen).toEqual(['POST /up hello'])
  })

  test('HTTP/1.0 with Connection: Upgrade is served as a plain request (RFC 9110 §7.8)', async () => {
    // The origin records the connection fields it got: a switch would send Upgrade on.
    const upgrades: (string | null)[] = []
    const origin = h.origin({
      fetch(req) {
        upgrades.push(req.headers.get('upgrade'), req.headers.get('connection'))
        return new Response('hi /ws')
      },
    })
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('GET /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(c.got()).toEndWith('hi /ws')
    expect(upgrades[0]).toBeNull()
    expect(upgrades[1]?.toLowerCase() ?? '').not.toContain('upgrade')
  })

  test.each([
    ['every line', 'GET /lf HTTP/1.1\nHost: a\n\n'],
    ['its last field line', 'GET /lf HTTP/1.1\r\nHost: a\n\r\n'],
  ])('a head with %s ended by a bare LF gets 400 at once, not the header timeout', async (_, raw) => {
    const { origin, seen } = countingOrigin()
    // The header timeout (10 s) is far past the wait below: a 400 within it is the head's own refusal.
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write(raw)
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 400 ')
    expect(seen).toEqual([])
  })

  test.each([
    ['a TLS ClientHello', Buffer.from('16030100c4010000c00303', 'hex'), 'a TLS handshake where an HTTP request line was expected'],
    ['NUL bytes', Buffer.from([0, 0, 0]), 'not an HTTP request'],
    ['a control byte in the method', Buffer.from('G\x01T', 'latin1'), 'not an HTTP request'],
    ['a space first', Buffer.from(' GET', 'latin1'), 'not an HTTP request'],
    // Past the method too (third review): a NUL or a control byte in the target, a TLS record after it, a version that is none.
    ['NULs in the target', Buffer.from('GET /\0\0\0', 'latin1'), 'not an HTTP request'],
    ['a TLS record after the method', Buffer.from('GET \x16\x03\x01', 'latin1'), 'not an HTTP request'],
    ['a version that is not HTTP', Buffer.from('GET / XTTP/1.1', 'latin1'), 'not an HTTP request'],
    ['a letter for a version digit', Buffer.from('GET / HTTP/x', 'latin1'), 'not an HTTP request'],
  ])('%s with no line end gets 400 at once, not 408 at the header timeout (nineteenth round)', async (_, bytes, why) => {
    const { origin, seen } = countingOrigin()
    // The header timeout (10 s) is far past the wait below: a 400 within it is the bytes' own refusal.
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write(bytes)
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 400 ')
    expect(c.got()).toContain(why)
    expect(seen).toEqual([])
  })

  test('a request line still arriving, a byte at a time, is waited for: empty lines first, a long method', async () => {
    const { origin } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    for (const piece of ['\r\n', 'P', 'ROPFIND', ' /', 'k', ' H', 'TTP/1', '.1', '\r', '\nHost: a\r\n\r\n']) {
      c.s.write(piece)
      await Bun.sleep(30)
    }
    expect(await waitFor(() => c.got().includes('hi /k'), 3000)).toBe(true)
  })

  test('HTTP/1.0: closed after the answer unless it asks for keep-alive', async () => {
    const { origin } = countingOrigin()
    const { proxy } = own(origin.port!)
    const plain = rawClient(proxy.port)
    plain.s.write('GET /p HTTP/1.0\r\n\r\n')
    expect(await waitFor(() => plain.closed(), 3000)).toBe(true)
    expect(plain.got()).toContain('connection: close')
    const kept = rawClient(proxy.port)
    kept.s.write('GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    expect(await waitFor(() => kept.got().includes('hi /k'), 3000)).toBe(true)
    expect(kept.got()).toContain('connection: keep-alive')
    kept.s.write('GET /k2 HTTP/1.0\r\n\r\n')
    expect(await waitFor(() => kept.got().includes('hi /k2') && kept.closed(), 3000)).toBe(true)
  })

  test('a streamed response keeps its Content-Length (no chunked re-framing)', async () => {
    // A raw origin (Bun.serve would chunk a streamed body itself): the head, then 3 MiB in pieces.
    const size = 3 * 1024 * 1024
    const origin = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        async data(s) {
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`)
          for (let i = 0; i < 3; i++) {
            await Bun.sleep(20)
            const piece = Buffer.alloc(1024 * 1024, 97 + i)
            let off = 0
            for (let tries = 0; off < piece.length && tries < 1000; tries++) {
              off += Math.max(0, s.write(piece.subarray(off)))
              if (off < piece.length) await Bun.sleep(5)
            }
          }
        },
      },
    })
    h.track(() => origin.stop(true))
    const { url } = own(origin.port!)
    const res = await fetch(url)
    expect(res.headers.get('content-length')).toBe(String(size))
    expect(res.headers.get('transfer-encoding')).toBeNull()
    const body = new Uint8Array(await res.arrayBuffer())
    expect(body.length).toBe(size)
    expect([body[0], body[size / 2], body[size - 1]]).toEqual([97, 98, 99])
  })

  test('a refused upgrade is relayed with the request id and Connection: close, then both sides close', async () => {
    const origin = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s) {
          s.write('HTTP/1.1 403 Forbidden\r\nConnection: keep-alive\r\nX-Why: no\r\nX-Request-Id: upstream-own\r\nKeep-Alive: timeout=5\r\nContent-Length: 4\r\n\r\nnope')
        },
      },
    })
    h.track(() => origin.stop(true))
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: client-id-1\r\n\r\n')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    const [head, body] = c.got().split('\r\n\r\n')
    const lines = head!.split('\r\n')
    expect(lines[0]).toBe('HTTP/1.1 403 Forbidden')
    expect(lines.slice(1)).toEqual(['X-Why: no', 'Content-Length: 4', 'x-request-id: client-id-1', 'connection: close'])
    expect(body).toBe('nope')
  })

  test('a refused upgrade\'s Content-Length goes as the forwarding path passes it: its one value, none beside Transfer-Encoding; fields Connection names are dropped', async () => {
    const answers = [
      'HTTP/1.1 401 Unauthorized\r\nConnection: x-private\r\nX-Private: 1\r\nContent-Length: 4, 4\r\n\r\nnope',
      // Connection naming Upgrade and Transfer-Encoding: a 426 keeps its Upgrade, a chunked body its framing.
      'HTTP/1.1 426 Upgrade Required\r\nConnection: Upgrade, transfer-encoding\r\nUpgrade: websocket\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n',
    ]
    const origin = Bun.listen<{ n: number }>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s, d) {
          s.write(answers[Buffer.from(d).toString('latin1').includes('/two') ? 1 : 0]!)
        },
      },
    })
    h.track(() => origin.stop(true))
    const { proxy } = own(origin.port!)
    const heads: string[][] = []
    const bodies: string[] = []
    for (const path of ['/one', '/two']) {
      const c = rawClient(proxy.port)
      c.s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
      expect(await waitFor(() => c.closed(), 3000)).toBe(true)
      const at = c.got().indexOf('\r\n\r\n')
      heads.push(c.got().slice(0, at).split('\r\n').slice(1).filter((l) => !l.startsWith('x-request-id')))
      bodies.push(c.got().slice(at + 4))
    }
    expect(heads[0]).toEqual(['content-length: 4', 'connection: close'])
    expect(bodies[0]).toBe('nope')
    expect(heads[1]).toEqual(['Upgrade: websocket', 'Transfer-Encoding: chunked', 'connection: close'])
    expect(bodies[1]).toBe('4\r\nnope\r\n0\r\n\r\n')
  })

  test('a non-WebSocket upgrade is tunnelled byte for byte after 101', async () => {
    // An origin on raw sockets that switches to an echo protocol.
    const origin = Bun.listen<{ switched: boolean }>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open(s) {
          s.data = { switched: false }
        },
        data(s, d) {
          if (!s.data.switched) {
            s.data.switched = true
            s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nready;')
            return
          }
          s.write(`echo:${Buffer.from(d).toString()};`)
        },
      },
    })
    h.track(() => origin.stop(true))
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
    expect(await waitFor(() => c.got().includes('ready;'), 3000)).toBe(true)
    c.s.write('one')
    expect(await waitFor(() => c.got().includes('echo:one;'), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 101 ')
    // When the tunnel closes, one access record: 101, the bytes each way after the heads.
    c.s.end()
    expect(await waitFor(() => h.records.some((r) => r.path === '/x'), 3000)).toBe(true)
    const rec = h.records.find((r) => r.path === '/x')!
    expect([rec.status, rec.bytes_in, rec.bytes_out, rec.upstream_addr]).toEqual([101, 3, 'ready;echo:one;'.length, `127.0.0.1:${origin.port}`])
  })

  test('an upgrade the upstream refuses is relayed, then the connection closes (nothing else reaches the upstream unchecked)', async () => {
    const { origin, seen } = countingOrigin()
    const { proxy } = own(origin.port!)
    const c = rawClient(proxy.port)
    c.s.write('GET /nows HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    expect(c.got()).toEndWith('hi /nows')
    expect(seen).toEqual(['GET /nows'])
    expect(await waitFor(() => h.records.some((r) => r.path === '/nows'), 3000)).toBe(true)
    const rec = h.records.find((r) => r.path === '/nows')!
    expect([rec.status, rec.bytes_out]).toEqual([200, 'hi /nows'.length])
  })

  test('an upgrade no upstream answers gets 502 and an access record', async () => {
    const dead = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = dead.port!
    dead.stop(true)
    const { proxy } = own(port)
    const c = rawClient(proxy.port)
    c.s.write('GET /gone HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    expect(await waitFor(() => c.closed(), 5000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 502 ')
    expect(await waitFor(() => h.records.some((r) => r.path === '/gone'), 3000)).toBe(true)
    expect(h.records.find((r) => r.path === '/gone')!.status).toBe(502)
    // The refused connect counts against the address, as a refused connect of a request does.
    const state = [...proxy.pool('default')!.addresses.values()][0]!
    expect(state.failures).toBeGreaterThanOrEqual(1)
    expect(state.ejectedUntilMonoMs).toBeGreaterThan(0)
  })
})
