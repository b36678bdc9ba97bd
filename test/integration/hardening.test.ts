/**
 * Malformed and ambiguous requests, sent as raw bytes: each is refused before anything reaches
 * the upstream: by the own listener's strict parser (http1/request-head.ts, chunked.ts), and a
 * bad chunk in the first 64 KiB because small bodies are read before sending (request-body.ts).
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { CASES, sendRaw } from '../../scripts/differential.ts'
import { REPLAYABLE_BODY_BYTES } from '../../src/proxy/request-body.ts'
import { parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** The expected first status for each case of the differential table (scripts/differential.ts). */
const EXPECTED: Record<string, RegExp> = {
  'CL and TE both': /^400$/,
  'two differing CL': /^400$/,
  'CL list "3, 5"': /^400$/,
  'TE gzip (not chunked)': /^400$/,
  'TE "chunked, gzip"': /^400$/,
  'TE "gzip, chunked"': /^501$/, // chunked is final, but another coding is not one we read (RFC 9112 §6.1)
  'TE xchunked': /^400$/,
  'space before colon': /^400$/,
  'bad header name': /^400$/,
  'control char in value': /^400$/,
  'NUL in value': /^400$/,
  'obs-fold': /^400$/,
  'bare CR': /^400$/,
  'no Host (HTTP/1.1)': /^400$/,
  'two Host': /^400$/,
  'request line 70 KB': /^(414|431)$/,
  'headers 70 KB': /^431$/,
  CONNECT: /^405$/,
  'bad chunk size': /^400$/, // in the first 64 KiB: read ahead, so refused before the upstream
  'negative CL': /^400$/,
  'signed CL "+3"': /^400$/,
}
// Only SP and HTAB are whitespace (RFC 9110 §5.6.3): VT, FF, NEL and NBSP next to a framing
// value, Host, or in a chunk-size line are refused, never trimmed (issue 14).
for (const [name] of CASES) if (/ (VT|FF|NEL|NBSP) (before|after)/.test(name)) EXPECTED[name] = /^400$/
// An absolute-form target naming another host than Host: never an open proxy (RFC 9112 §3.2.2).
EXPECTED['absolute-form, other host'] = /^400$/
const REFUSED = CASES.filter(([name]) => name in EXPECTED)

test('every case of the differential table has an expectation here, or a README note', () => {
  expect(CASES.filter(([name]) => !(name in EXPECTED)).map(([n]) => n)).toEqual([])
})

test.each(REFUSED)('%s is refused before the upstream', async (name, raw) => {
  const status = EXPECTED[name]!
  let reached = 0
  let complete = 0
  const origin = h.origin({
    async fetch(req) {
      reached++
      await req.arrayBuffer()
      complete++
      return new Response('reached')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await sendRaw(proxy.port, raw)
  await Bun.sleep(50)
  const first = /^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? '(none)'
  expect(first).toMatch(status)
  expect(reached).toBe(0)
  expect(complete).toBe(0)
  // Nothing smuggled behind the first request reached the upstream either.
  expect(reply).not.toContain('reached')
  // The refusal carries a request id, and the access log has that request with its status and code.
  const id = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(reply)?.[1]
  expect(id).toBeTruthy()
  expect(await waitFor(() => h.records.some((r) => r.request_id === id))).toBe(true)
  const record = h.records.find((r) => r.request_id === id)!
  expect(record.status).toBe(Number(first))
  expect(record.error).toMatch(/^[A-Z_]+$/)
})

test('a refused head is logged with its method, target and Host (as sent, the refused one too) when their lines were read; a bad request line is logged "-"', async () => {
  const origin = h.origin({ fetch: () => new Response('ok') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const cases: [string, string, string, string, string][] = [
    ['PUT /bad-host?q=1 HTTP/1.1\r\nHost: a b\r\n\r\n', 'PUT', '/bad-host?q=1', 'a b', '400'],
    ['GET /folded HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n', 'GET', '/folded', 'a', '400'],
    ['GET /x HTTP/2.0\r\nHost: a\r\n\r\n', 'GET', '/x', 'a', '505'],
    ['GET  /two-spaces HTTP/1.1\r\nHost: a\r\n\r\n', '-', '-', '-', '400'],
  ]
  for (const [raw, method, path, host, status] of cases) {
    const reply = await sendRaw(proxy.port, raw)
    const id = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(reply)?.[1]
    expect(await waitFor(() => h.records.some((r) => r.request_id === id))).toBe(true)
    const r = h.records.find((x) => x.request_id === id)!
    expect([r.method, r.path, r.host, String(r.status)]).toEqual([method, path, host, status])
  }
})

test('a whole request line without a version is refused 400 at once, not after the header timeout (RFC 9112 §3)', async () => {
  let reached = 0
  const origin = h.origin({ fetch: () => (reached++, new Response('ok')) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { client_header_timeout: '60s' } })
  for (const line of ['GET /x\r\n', 'GET\r\n', 'GET /x HTTP/1.1 extra\r\nHost: a\r\n']) {
    const s = connect(proxy.port, '127.0.0.1')
    h.track(() => void s.destroy())
    let got = ''
    let closed = false
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', () => (closed = true))
    s.on('error', () => {})
    s.write(line) // and nothing more: the head never ends
    expect(await waitFor(() => closed, 5000)).toBe(true)
    expect(got).toMatch(/^HTTP\/1\.1 400 /)
  }
  // A line that is right waits for the rest of its head, sent a byte at a time.
  const reply = await sendRaw(proxy.port, 'GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(reply).toMatch(/^HTTP\/1\.1 200 /)
  expect(reached).toBe(1)
})

test('an HTTP/1.0 request without Host gets the upstream host name', async () => {
  let host = ''
  const origin = h.origin({ fetch: (req) => ((host = req.headers.get('host') ?? ''), new Response('ok')) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await sendRaw(proxy.port, 'GET / HTTP/1.0\r\n\r\n')
  expect(reply).toMatch(/^HTTP\/1\.[01] 200/)
  expect(host).toBe(`127.0.0.1:${origin.port}`)
})

test('an HTTP/1.0 request in absolute-form without Host takes the target\'s authority as its host (RFC 9112 §3.2.2): routed by it, sent upstream as Host, logged; it was a 400 naming "another host than the Host header"', async () => {
  const seen: string[] = []
  const origin = (name: string) => h.origin({ fetch: (req) => (seen.push(`${name} ${new URL(req.url).pathname} ${req.headers.get('host')} ${req.headers.get('x-forwarded-host')}`), new Response(name)) }).port!
  const [a, b] = [origin('a'), origin('b')]
  const text = `[server]\nlisten = "127.0.0.1:0"\ndefault_upstream = "a"\n[admin]\nlisten = "off"\n[upstream.a]\nurl = "http://127.0.0.1:${a}"\n[upstream.b]\nurl = "http://127.0.0.1:${b}"\n[[route]]\nhost = "b.example"\nupstream = "b"\n`
  const records: { host: string; upstream: string }[] = []
  const proxy = new ProxyServer(resolveConfig(parseConfigText(text, 'abs.toml')), { sourceFor: (u) => staticSource([{ address: u.host, family: 4 }]), hooks: { onRecord: (r) => records.push({ host: r.host, upstream: r.upstream }) } }).start()
  h.track(() => proxy.close())
  expect(await sendRaw(proxy.port, 'GET http://b.example/p/x HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.[01] 200 [^]*\r\n\r\nb$/)
  expect(await sendRaw(proxy.port, 'GET http://other.example:8080/y HTTP/1.0\r\n\r\n')).toMatch(/\r\n\r\na$/)
  // Its authority must be a host: userinfo is refused as it is in Host.
  expect(await sendRaw(proxy.port, 'GET http://u@b.example/p HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /)
  expect(seen).toEqual(['b /p/x b.example b.example', 'a /y other.example:8080 other.example:8080'])
  expect(await waitFor(() => records.length === 3, 3000)).toBe(true)
  expect(records.slice(0, 2).map((r) => [r.host, r.upstream])).toEqual([['b.example', 'b'], ['other.example:8080', 'a']])
})

test('a bad chunk after the 64 KiB read-ahead: the upstream sees an aborted request, never a complete one', async () => {
  let reached = 0
  let complete = 0
  let aborted = 0
  const origin = h.origin({
    async fetch(req) {
      reached++
      try {
        await req.arrayBuffer()
        complete++
      } catch {
        aborted++
      }
      return new Response('reached')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const s = connect(proxy.port, '127.0.0.1')
  h.track(() => void s.destroy())
  let reply = ''
  s.on('data', (d) => (reply += d.toString('latin1')))
  s.on('error', () => {})
  const chunk = 'x'.repeat(16 * 1024)
  s.write('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
  for (let sent = 0; sent <= REPLAYABLE_BODY_BYTES; sent += chunk.length) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
  await Bun.sleep(200)
  s.write('zz\r\nabc\r\n0\r\n\r\n')
  const end = Date.now() + 5000
  while (Date.now() < end && (reached === 0 || complete + aborted === 0)) await Bun.sleep(20)
  expect(reached).toBe(1)
  expect(aborted).toBe(1)
  expect(complete).toBe(0)
  expect(reply).not.toContain('reached')
})
