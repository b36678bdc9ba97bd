import { describe, expect, test } from 'bun:test'
import { clientResponseHeaders, hostWithoutPort, requestIdFor, upstreamRequestHeaders, withoutH2c } from '../../src/proxy/headers.ts'
import { cidrContains, parseCidr } from '../../src/lib/cidr.ts'

const ctx = { clientIp: '192.0.2.7', trustedPeer: false, proto: 'https' as const, clientHost: 'shop.example', hostOverride: undefined, requestId: 'rid-1' }

describe('upstreamRequestHeaders', () => {
  test('drops hop-by-hop and Connection-listed headers, sets forwarding headers', () => {
    const incoming = new Headers({
      connection: 'keep-alive, x-drop-me',
      'keep-alive': 'timeout=5',
      'x-drop-me': '1',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'secret',
      'transfer-encoding': 'chunked',
      'x-forwarded-for': '198.51.100.1',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=1.2.3.4',
      accept: 'text/html',
      cookie: 'a=b',
    })
    const out = Object.fromEntries(upstreamRequestHeaders(incoming, ctx))
    for (const gone of ['connection', 'keep-alive', 'x-drop-me', 'te', 'upgrade', 'proxy-authorization', 'transfer-encoding', 'forwarded']) expect(out[gone]).toBeUndefined()
    expect(out.host).toBe('shop.example')
    expect(out.accept).toBe('text/html')
    expect(out.cookie).toBe('a=b')
    expect(out['x-forwarded-for']).toBe('192.0.2.7')
    expect(out['x-forwarded-host']).toBe('shop.example')
    expect(out['x-forwarded-proto']).toBe('https')
    expect(out['x-request-id']).toBe('rid-1')
  })

  test('a trusted peer has its X-Forwarded-* kept and appended to', () => {
    const incoming = new Headers({ 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'orig.example', forwarded: 'for=198.51.100.1' })
    const out = Object.fromEntries(upstreamRequestHeaders(incoming, { ...ctx, trustedPeer: true }))
    expect(out['x-forwarded-for']).toBe('198.51.100.1, 192.0.2.7')
    expect(out['x-forwarded-proto']).toBe('http')
    expect(out['x-forwarded-host']).toBe('orig.example')
    expect(out.forwarded).toBe('for=198.51.100.1')
  })

  test('a trusted peer\'s X-Forwarded-Proto list (its line after the client\'s, or two lines) goes on as its last member, what the peer itself says (eighteenth round of review; second opinion)', () => {
    const sent = (value: string, tls = false) => Object.fromEntries(upstreamRequestHeaders(new Headers([['x-forwarded-proto', value]]), { ...ctx, proto: tls ? 'https' : 'http', trustedPeer: true }))['x-forwarded-proto']
    expect(sent('https, http')).toBe('http')
    expect(sent('http ,HTTPS ')).toBe('https')
    expect(sent('http, https', true)).toBe('https')
    // Not http or https last: the proxy's own scheme, as for a single value.
    expect(sent('https, wss')).toBe('http')
    expect(sent('')).toBe('http')
    // A client's own line before a balancer's added one (HAProxy http-request add-header): the balancer's.
    const twoLines = new Headers()
    twoLines.append('x-forwarded-proto', 'https')
    twoLines.append('x-forwarded-proto', 'http')
    expect(Object.fromEntries(upstreamRequestHeaders(twoLines, { ...ctx, trustedPeer: true }))['x-forwarded-proto']).toBe('http')
  })

  test('a trusted peer\'s forwarding fields that its Connection lists are hop-by-hop (RFC 9110 §7.6.1): not appended to; nor is a Via it lists (outside review, thirteenth round)', () => {
    const incoming = new Headers({ connection: 'close, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Forwarded, Via', 'x-forwarded-for': '1.1.1.1', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'for=1.1.1.1', via: '1.1 lb' })
    const out = Object.fromEntries(upstreamRequestHeaders(incoming, { ...ctx, trustedPeer: true, proto: 'http', via: '1.1 proxy' }))
    expect([out['x-forwarded-for'], out['x-forwarded-host'], out['x-forwarded-proto'], out.forwarded, out.via]).toEqual(['192.0.2.7', 'shop.example', 'http', undefined, '1.1 proxy'])
    const untrusted = Object.fromEntries(upstreamRequestHeaders(new Headers({ connection: 'via', via: '1.1 internal-gw' }), { ...ctx, via: '1.1 proxy' }))
    expect(untrusted.via).toBe('1.1 proxy')
  })

  test("the client's spellings of our fields with '_' (X_Forwarded_For) are dropped: CGI/WSGI servers read them as ours", () => {
    const incoming = new Headers({ x_forwarded_for: '6.6.6.6', 'x-forwarded_proto': 'http', x_forwarded_host: 'evil.example', x_request_id: 'forged', x_custom_name: 'kept' })
    const out = upstreamRequestHeaders(incoming, ctx)
    expect(out.filter(([n]) => n.includes('_')).map(([n]) => n)).toEqual(['x_custom_name'])
    expect(Object.fromEntries(out)['x-forwarded-for']).toBe('192.0.2.7')
  })

  test('from a peer that is not trusted, the fields apps read as the client\'s address, scheme or port are dropped; a trusted peer\'s pass', () => {
    const spoof = { 'x-real-ip': '6.6.6.6', 'true-client-ip': '6.6.6.6', 'client-ip': '6.6.6.6', 'cf-connecting-ip': '6.6.6.6', 'x-forwarded-port': '443', 'x-forwarded-scheme': 'https', 'x-forwarded-protocol': 'https', 'x-url-scheme': 'https', 'front-end-https': 'on', 'x-forwarded-ssl': 'on', 'x-forwarded-prefix': '/admin', x_real_ip: '6.6.6.6', accept: '*/*',
      // The thirteenth round of review: Tornado, Mojolicious, Symfony/IIS, WebLogic and Envoy read these.
      'x-scheme': 'https', 'x-forwarded-https': 'on', 'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-forwarded-uri': '/admin', 'x-forwarded-client-cert': 'Hash=x', 'wl-proxy-client-ip': '10.0.0.1', 'x_remote_addr': '10.0.0.1', 'x-originating-ip': '10.0.0.1', 'x-arr-ssl': 'on',
      // The eighteenth: Jetty's ForwardedRequestCustomizer reads these as "the client came over TLS".
      'x-proxied-https': 'on', 'proxy-ssl-id': 'abc', 'proxy-auth-cert': 'MII' }
    const untrusted = upstreamRequestHeaders(new Headers(spoof), ctx).map(([n]) => n)
    for (const name of Object.keys(spoof).filter((n) => n !== 'accept')) expect([name, untrusted.includes(name)]).toEqual([name, false])
    expect(untrusted).toContain('accept')
    const trusted = upstreamRequestHeaders(new Headers(spoof), { ...ctx, trustedPeer: true }).map(([n]) => n)
    for (const name of ['x-real-ip', 'x-forwarded-port', 'x-forwarded-scheme', 'x-forwarded-prefix']) expect([name, trusted.includes(name)]).toEqual([name, true])
  })

  test('host_header overrides Host', () => {
    const out = Object.fromEntries(upstreamRequestHeaders(new Headers(), { ...ctx, hostOverride: 'origin.internal' }))
    expect(out.host).toBe('origin.internal')
  })
})

describe('clientResponseHeaders', () => {
  test('removes hop-by-hop, keeps repeated Set-Cookie, adds the request id', () => {
    const out = clientResponseHeaders(
      [
        ['Connection', 'close, X-Internal'],
        ['X-Internal', '1'],
        ['Keep-Alive', 'timeout=5'],
        ['Transfer-Encoding', 'chunked'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['Content-Length', '10'],
        ['X-Request-Id', 'spoofed'],
      ],
      'rid-2',
      false,
    )
    expect(out).toEqual([
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['x-request-id', 'rid-2'],
    ])
  })
  test('Content-Length is kept for a buffered body', () => {
    expect(clientResponseHeaders([['Content-Length', '10']], 'r', true)).toContainEqual(['Content-Length', '10'])
  })
})

test.each([
  ['abc-123', 'abc-123'],
  ['a'.repeat(201), null],
  ['has space', null],
  ['new\nline', null],
  [null, null],
])('requestIdFor(%p)', (incoming, kept) => {
  const id = requestIdFor({ get: (name: string) => (name === 'x-request-id' ? incoming : null) })
  if (kept) expect(id).toBe(kept)
  else expect(id).toMatch(/^[0-9a-f-]{36}$/)
})

test.each([
  ['keep-alive, X-Request-Id', false],
  ['x-request-id', false],
  ['keep-alive, x-request-idx', true],
  ['close', true],
])('requestIdFor with Connection: %p keeps the client\'s id: %p', (connection, kept) => {
  const id = requestIdFor(new Headers({ connection, 'x-request-id': 'abc-123' }))
  if (kept) expect(id).toBe('abc-123')
  else expect(id).toMatch(/^[0-9a-f-]{36}$/)
})

test.each([
  ['Example.COM:8080', 'example.com'],
  ['[::1]:8080', '[::1]'],
  ['plain', 'plain'],
])('hostWithoutPort(%p)', (raw, want) => expect(hostWithoutPort(raw)).toBe(want))

test.each([
  ['127.0.0.0/8', '127.1.2.3', true],
  ['127.0.0.0/8', '11.0.0.1', false],
  ['127.0.0.1', '127.0.0.1', true],
  ['::1/128', '::1', true],
  ['2001:db8::/32', '2001:db8:1::5', true],
  ['2001:db8::/32', '2001:db9::5', false],
  ['192.0.2.0/24', '::ffff:192.0.2.9', true],
  ['0.0.0.0/0', '8.8.8.8', true],
  // An IPv6 range shorter than /96 names IPv6 clients only, as in nginx (eighteenth round of review).
  ['::/0', '127.0.0.1', false],
  ['::/0', '::ffff:127.0.0.1', false],
  ['::/8', '10.1.2.3', false],
  ['::/64', '192.0.2.9', false],
  ['::/0', '2001:db8::1', true],
  ['::/0', '::1', true],
  ['::ffff:0:0/96', '10.1.2.3', true],
  ['::ffff:10.0.0.0/104', '10.1.2.3', true],
  ['::ffff:10.0.0.0/104', '11.1.2.3', false],
])('cidr %p contains %p: %p', (cidr, ip, want) => expect(cidrContains(parseCidr(cidr)!, ip)).toBe(want))

test.each([
  ['websocket', 'websocket'],
  ['h2c', undefined],
  ['H2C', undefined],
  // h2c by its name, with a version too: it is never tunnelled (RFC 9113 §3.1).
  ['h2c/2', undefined],
  ['H2C/1.1', undefined],
  ['websocket, h2c/2', 'websocket'],
  ['h2c , foo/1', 'foo/1'],
  ['h2cx', 'h2cx'],
])('withoutH2c(%p) is %p', (upgrade, expected) => {
  expect(withoutH2c(upgrade)).toBe(expected)
})
