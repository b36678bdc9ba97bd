import { describe, expect, test } from 'bun:test'
import { encodeRequestHead } from '../../src/http1/request-encode.ts'
import { HeadHeaders, headValues, parseRequestHead, parseRequestHeadBytes, RequestHeadError, type RequestHead } from '../../src/http1/request-head.ts'
import { ForwardingLines, upstreamRequestFields, upstreamRequestHeaders, upstreamRequestLines, type ForwardContext } from '../../src/proxy/headers.ts'
import { HeadReader } from '../../src/http1/head-reader.ts'

const ctx: ForwardContext = { clientIp: '127.0.0.7', trustedPeer: false, proto: 'http', clientHost: 'shop.test', hostOverride: undefined, requestId: 'rid-1' }

function parse(lines: string[]): RequestHead {
  return parseRequestHead(`GET /p HTTP/1.1\r\n${lines.join('\r\n')}`)
}

/** The upstream head the lines path writes, as text. */
function viaLines(head: RequestHead, c: ForwardContext = ctx): string {
  const { headers, lines } = upstreamRequestLines(HeadHeaders.of(head), head, c)
  return Buffer.from(encodeRequestHead('GET', '/p', headers, '', undefined, lines)).toString('latin1')
}

/** What an upstream reads from a head: lower-case names and their values, in order. */
function fieldsOf(bytes: Uint8Array): [string, string][] {
  const b = Buffer.from(bytes)
  const p = parseRequestHeadBytes(b, b.length - 4)
  const values = headValues(p)
  return p.names.map((n, i) => [n, values[i]!])
}

describe('upstreamRequestLines', () => {
  test("a head copied as it came drops the client's X_Forwarded_For-like spellings of the fields the proxy sets", () => {
    const head = parse(['Host: shop.test', 'Accept: */*', 'X_Forwarded_For: 6.6.6.6', 'X-Forwarded_Host: evil.example', 'X_Request_Id: forged', 'X_Custom: kept'])
    const names = fieldsOf(Buffer.from(viaLines(head), 'latin1')).map(([n]) => n)
    expect(names.filter((n) => n.includes('_'))).toEqual(['x_custom'])
    expect(names).toContain('x-forwarded-for')
  })

  test('a head copied as it came drops, from a peer that is not trusted, X-Real-IP and the other client-address fields', () => {
    const head = parse(['Host: shop.test', 'Accept: */*', 'X-Real-IP: 6.6.6.6', 'X-Forwarded-Port: 443', 'X-Custom: kept'])
    const names = fieldsOf(Buffer.from(viaLines(head), 'latin1')).map(([n]) => n)
    expect(names.includes('x-real-ip') || names.includes('x-forwarded-port')).toBe(false)
    expect(names).toContain('x-custom')
  })

  test("copies the client's kept lines as they came, after Host, and drops what the list drops", () => {
    const head = parse([
      'Host: shop.test',
      'User-Agent:  curl/8  ',
      'Connection: keep-alive, X-Drop-Me',
      'X-Drop-Me: 1',
      'Keep-Alive: timeout=5',
      'TE: trailers',
      'Proxy-Authorization: secret',
      'X-Forwarded-For: 198.51.100.1',
      'X-Request-Id: abc',
      'Accept: */*',
      'Cookie: a=1',
    ])
    expect(viaLines(head)).toBe(
      'GET /p HTTP/1.1\r\nhost: shop.test\r\nUser-Agent:  curl/8  \r\nAccept: */*\r\nCookie: a=1\r\n' +
        'x-forwarded-for: 127.0.0.7\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.test\r\nx-request-id: rid-1\r\n\r\n',
    )
  })

  test('a trusted peer keeps its forwarding fields, appended to, as the list path does', () => {
    const head = parse(['Host: shop.test', 'X-Forwarded-For: 198.51.100.1', 'X-Forwarded-Proto: HTTPS', 'Forwarded: for=198.51.100.1', 'Accept: */*'])
    const trusted = { ...ctx, trustedPeer: true, hostOverride: 'origin.test' }
    const { headers } = upstreamRequestLines(HeadHeaders.of(head), head, trusted)
    expect(headers).toEqual([
      ['host', 'origin.test'],
      ['x-forwarded-for', '198.51.100.1, 127.0.0.7'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'shop.test'],
      ['forwarded', 'for=198.51.100.1'],
      ['x-request-id', 'rid-1'],
    ])
  })

  test('consecutive kept lines are copied as one range', () => {
    const head = parse(['Host: shop.test', 'A: 1', 'B: 2', 'Connection: close', 'C: 3'])
    const { lines } = upstreamRequestLines(HeadHeaders.of(head), head, ctx)
    expect(lines.ranges.length).toBe(4)
  })

  test('values the parser left undecoded are decoded when asked for, and once', () => {
    const head = parse(['Host: shop.test', 'Accept:  text/html ', 'X-A: \xa0v\xa0'])
    expect(head.values).toEqual(['shop.test', undefined, undefined])
    const h = HeadHeaders.of(head)
    expect(h.get('accept')).toBe('text/html')
    expect(head.values[1]).toBe('text/html')
    expect(headValues(head)).toEqual(['shop.test', 'text/html', '\xa0v\xa0'])
  })

  test('generated heads: an upstream reads the same fields from the lines path as from the list path', () => {
    const NAMES = ['Host', 'host', 'Connection', 'Keep-Alive', 'TE', 'Upgrade', 'X-Forwarded-For', 'x-forwarded-proto', 'X-Forwarded-Host', 'Forwarded', 'X-Request-Id', 'Proxy-Authorization', 'Trailer', 'X-A', 'x-b', 'Accept', 'Cookie', 'Via', 'Transfer-Encoding', 'Content-Length', 'proxy-connection']
    const VALUES = ['', 'v', ' spaced ', '\tx\t', 'a, b', 'close', 'x-a, X-B', 'keep-alive, x-b', '127.0.0.9', '0', '5', 'chunked', 'h\xe9llo', 'https']
    let seed = 7
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
    let compared = 0
    for (let n = 0; n < 3000; n++) {
      const lines = ['Host: shop.test']
      for (let i = rnd(8); i > 0; i--) lines.push(`${NAMES[rnd(NAMES.length)]}:${rnd(2) ? ' ' : ''}${VALUES[rnd(VALUES.length)]}`)
      let head: RequestHead
      try {
        head = parse(lines)
      } catch (err) {
        expect(err).toBeInstanceOf(RequestHeadError)
        continue
      }
      const c = { ...ctx, trustedPeer: rnd(2) === 0, clientHost: head.host!, hostOverride: rnd(3) === 0 ? 'origin.test' : undefined }
      const list = encodeRequestHead('GET', '/p', upstreamRequestHeaders(HeadHeaders.of(parse(lines)), c), '')
      const { headers, lines: kept } = upstreamRequestLines(HeadHeaders.of(head), head, c)
      expect(fieldsOf(encodeRequestHead('GET', '/p', headers, '', undefined, kept))).toEqual(fieldsOf(list))
      compared++
    }
    expect(compared).toBeGreaterThan(1000)
  })
})

describe("a client connection's ForwardingLines", () => {
  /** The fields grouped by name, each name's values in their order (the lines the list path adds go after the client's). */
  const byName = (fields: [string, string][]) => fields.map((f, i) => [f, i] as const).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([f]) => f)

  test('generated heads on one connection whose Host, address and scheme change: the fields the list path sends', () => {
    const NAMES = ['Connection', 'X-Forwarded-For', 'x-forwarded-proto', 'X-Forwarded-Host', 'Forwarded', 'X-Request-Id', 'X-A', 'Accept', 'Cookie']
    const VALUES = ['v', ' spaced ', 'x-a', 'keep-alive', '127.0.0.9', 'https']
    const HOSTS = ['shop.test', 'shop.test:8080', 'other.test', 'SHOP.test']
    let seed = 11
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n)
    const forwarding = new ForwardingLines()
    let own = 0
    for (let n = 0; n < 2000; n++) {
      const lines = [`Host: ${HOSTS[rnd(HOSTS.length)]}`]
      for (let i = rnd(7); i > 0; i--) lines.push(`${NAMES[rnd(NAMES.length)]}: ${VALUES[rnd(VALUES.length)]}`)
      const head = parse(lines)
      const c: ForwardContext = { ...ctx, clientIp: rnd(4) === 0 ? '::1' : '127.0.0.7', proto: rnd(3) === 0 ? 'https' : 'http', trustedPeer: rnd(4) === 0, clientHost: head.host!, hostOverride: rnd(3) === 0 ? 'origin.test' : undefined, forwarding }
      const list = fieldsOf(encodeRequestHead('GET', '/p', upstreamRequestHeaders(HeadHeaders.of(head), { ...c, forwarding: undefined }), ''))
      const viaLines = upstreamRequestLines(HeadHeaders.of(head), head, c)
      const viaFields = upstreamRequestFields(HeadHeaders.of(head), c)
      if (viaLines.lines.own) own++
      // The client's lines and the proxy's own keep the list's order; the list path's own lines come before the client's fields.
      expect(fieldsOf(encodeRequestHead('GET', '/p', viaLines.headers, '', undefined, viaLines.lines))).toEqual(list)
      expect(byName(fieldsOf(encodeRequestHead('GET', '/p', viaFields.headers, '', undefined, viaFields.lines)))).toEqual(byName(list))
      expect(viaFields.lines?.own === undefined).toBe(c.trustedPeer)
    }
    expect(own).toBeGreaterThan(1000)
  })

  test("the list path: Host, the proxy's X-Forwarded-* lines, the client's fields, then X-Request-Id", () => {
    const head = parse(['Host: shop.test', 'User-Agent: curl/8', 'Accept: */*'])
    const { headers, lines } = upstreamRequestFields(HeadHeaders.of(head), { ...ctx, clientHost: 'shop.test', forwarding: new ForwardingLines() })
    expect(fieldsOf(encodeRequestHead('GET', '/p', headers, '', undefined, lines))).toEqual([
      ['host', 'shop.test'],
      ['x-forwarded-for', '127.0.0.7'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'shop.test'],
      ['user-agent', 'curl/8'],
      ['accept', '*/*'],
      ['x-request-id', 'rid-1'],
    ])
  })
})

describe('HeadReader.headBytes: a head kept for forwarding never pins a large read', () => {
  const head = Buffer.from('GET /p HTTP/1.1\r\nHost: shop.test\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', 'latin1')
  const end = head.length - 4

  test('a small read of its own is kept as it is', () => {
    const r = new HeadReader()
    r.append(Buffer.from(head))
    expect(r.headBytes(end + 4).byteLength).toBe(head.length)
  })

  test('a head at the start of a large read (a body after it) is copied', () => {
    const read = Buffer.concat([head, Buffer.alloc(60_000, 0x78)])
    const r = new HeadReader()
    r.append(read)
    const bytes = r.headBytes(end + 4)
    expect(bytes.byteLength).toBe(end + 4)
    expect(bytes.buffer).not.toBe(read.buffer)
  })

  test('a pipelined head left as a view at the end of a large read is copied', () => {
    // What the listener does after an inline body: keep() the rest of the read, the next head.
    const read = Buffer.concat([Buffer.alloc(60_000, 0x78), head])
    const r = new HeadReader()
    r.keep(read.subarray(60_000))
    expect(r.findEnd()).toBe(end)
    const bytes = r.headBytes(end + 4)
    expect(bytes.buffer).not.toBe(read.buffer)
    expect(bytes.toString('latin1')).toBe(head.toString('latin1'))
  })
})
