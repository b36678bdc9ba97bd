/** parseRequestHead: the own listener's strict request-head parser, table-tested. */
import { describe, expect, test } from 'bun:test'
import { statusFor } from '../../src/proxy/errors.ts'
import { isHostValue, isHostValueBytes, mayBeginRequestLine } from '../../src/http1/chars.ts'
import { HeadHeaders, headValues, MAX_HEADER_COUNT, parseRequestHead, RequestHeadError } from '../../src/http1/request-head.ts'

/** The head as the listener hands it over: the bytes before CRLFCRLF. */
const head = (...lines: string[]) => lines.join('\r\n')

function statusOf(text: string): number | 'ok' {
  try {
    parseRequestHead(text)
    return 'ok'
  } catch (err) {
    if (err instanceof RequestHeadError) return statusFor(err.code).status
    throw err
  }
}

describe('refused', () => {
  const cases: [string, string, number][] = [
    ['CL and TE both', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Transfer-Encoding: chunked'), 400],
    ['two differing CL', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 5'), 400],
    ['CL list that disagrees', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 3, 5'), 400],
    ['negative CL', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: -1'), 400],
    ['signed CL', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: +3'), 400],
    ['CL with 16 digits', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 1234567890123456'), 400],
    ['TE gzip', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip'), 400],
    ['TE chunked then gzip', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, gzip'), 400],
    ['TE gzip then chunked (unsupported coding)', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked'), 501],
    ['TE chunked twice over two lines', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), 501],
    ['TE xchunked', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: xchunked'), 400],
    ['TE in HTTP/1.0', head('POST / HTTP/1.0', 'Transfer-Encoding: chunked'), 400],
    ['space before colon', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding : chunked'), 400],
    ['space in a name', head('GET / HTTP/1.1', 'Host: a', 'Bad Header: x'), 400],
    ['no colon', head('GET / HTTP/1.1', 'Host: a', 'NoColon'), 400],
    ['empty name', head('GET / HTTP/1.1', 'Host: a', ': x'), 400],
    ['control character', head('GET / HTTP/1.1', 'Host: a', 'X-A: a\x01b'), 400],
    ['NUL', head('GET / HTTP/1.1', 'Host: a', 'X-A: a\x00b'), 400],
    ['DEL', head('GET / HTTP/1.1', 'Host: a', 'X-A: a\x7fb'), 400],
    ['bare CR in a value', head('GET / HTTP/1.1', 'Host: a', 'X-A: a\rb'), 400],
    ['bare LF in a value', head('GET / HTTP/1.1', 'Host: a', 'X-A: a\nX-B: b'), 400],
    ['bare LF after the request line', 'GET / HTTP/1.1\nHost: a', 400],
    ['obs-fold', head('GET / HTTP/1.1', 'Host: a', 'X-A: a', ' b'), 400],
    ['no Host in HTTP/1.1', head('GET / HTTP/1.1'), 400],
    ['two Host', head('GET / HTTP/1.1', 'Host: a', 'Host: b'), 400],
    ['a Host list', head('GET / HTTP/1.1', 'Host: a, b'), 400],
    ['a Host with userinfo', head('GET / HTTP/1.1', 'Host: u@a'), 400],
    ['absolute-form naming another host', head('GET http://evil.example/x HTTP/1.1', 'Host: a.example'), 400],
    ['absolute-form in HTTP/1.0 without Host, its authority no host', head('GET http://a b/x HTTP/1.0'), 400],
    ['absolute-form in HTTP/1.0 without Host, its authority with userinfo', head('GET http://u@a/x HTTP/1.0'), 400],
    ['absolute-form with another port', head('GET http://a.example:8080/x HTTP/1.1', 'Host: a.example'), 400],
    ['CONNECT', head('CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443'), 405],
    ['asterisk for GET', head('GET * HTTP/1.1', 'Host: a'), 400],
    ['a fragment in the target', head('GET /a#b HTTP/1.1', 'Host: a'), 400],
    // A WHATWG URL parser (Bun.serve, Deno.serve, Node's URL) reads a backslash as "/": "/admin" to them, a name to nginx.
    ['a backslash in the path', head('GET /a\\..\\admin HTTP/1.1', 'Host: a'), 400],
    ['a backslash in an absolute-form path', head('GET http://a/\\\\evil.example/x HTTP/1.1', 'Host: a'), 400],
    ['a backslash in the path, one in the query', head('GET /a\\b?c\\d HTTP/1.1', 'Host: a'), 400],
    ['a target that is neither a path nor a URL', head('GET a/b HTTP/1.1', 'Host: a'), 400],
    ['non-ASCII in the target', head('GET /\xe9 HTTP/1.1', 'Host: a'), 400],
    ['two spaces in the request line', head('GET  / HTTP/1.1', 'Host: a'), 400],
    ['a lower-case version', head('GET / http/1.1', 'Host: a'), 400],
    ['HTTP/2.0 on an HTTP/1 connection', head('GET / HTTP/2.0', 'Host: a'), 505],
    ['HTTP/1.2 without Host (read as HTTP/1.1, which needs one)', head('GET / HTTP/1.2'), 400],
    ['HTTP/3.0', head('GET / HTTP/3.0', 'Host: a'), 505],
    ['a method with a space', head('GE T / HTTP/1.1', 'Host: a'), 400],
    ['too many header lines', head('GET / HTTP/1.1', 'Host: a', ...Array.from({ length: MAX_HEADER_COUNT }, (_, i) => `X-${i}: v`)), 431],
  ]
  test.each(cases)('%s', (_name, text, status) => {
    expect(statusOf(text)).toBe(status)
  })
})

// Only SP and HTAB are optional whitespace (RFC 9110 §5.6.3). VT, FF, NEL and NBSP next to a
// framing value (or Host) are what JavaScript's trim() used to strip: each must be a 400 now.
describe('whitespace that is not OWS, around framing values and Host', () => {
  const bytes: [string, string][] = [['VT', '\x0b'], ['FF', '\x0c'], ['NEL', '\x85'], ['NBSP', '\xa0']]
  const cases: [string, string][] = []
  for (const [label, b] of bytes) {
    for (const [where, v] of [['before', `${b}5`], ['after', `5${b}`], ['around', ` ${b}5${b} `]] as const) {
      cases.push([`Content-Length ${where} (${label})`, head('POST / HTTP/1.1', 'Host: a', `Content-Length: ${v}`)])
    }
    for (const [where, v] of [['before', `${b}chunked`], ['after', `chunked${b}`], ['around', `${b}chunked${b}`]] as const) {
      cases.push([`Transfer-Encoding ${where} (${label})`, head('POST / HTTP/1.1', 'Host: a', `Transfer-Encoding: ${v}`)])
    }
    cases.push([`Transfer-Encoding list member (${label})`, head('POST / HTTP/1.1', 'Host: a', `Transfer-Encoding: ${b}, chunked`)])
    for (const [where, v] of [['before', `${b}a.example`], ['after', `a.example${b}`]] as const) {
      cases.push([`Host ${where} (${label})`, head('GET / HTTP/1.1', `Host: ${v}`)])
    }
  }
  test.each(cases)('%s is a 400', (_name, text) => {
    expect(statusOf(text)).toBe(400)
  })
  test('SP and HTAB around the same values are accepted', () => {
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: \ta.example ', 'Content-Length: \t5 ')).body).toEqual({ kind: 'length', length: 5 })
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 0000000000000005')).body).toEqual({ kind: 'length', length: 5 })
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding:\t chunked \t')).body).toEqual({ kind: 'chunked' })
    // Not a framing header: NBSP stays part of the value (obs-text is allowed in a field value).
    const r = parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'X-A: \xa0v\xa0'))
    expect(HeadHeaders.of(r).get('x-a')).toBe('\xa0v\xa0')
  })
  test('"Connection: close" with NBSP is not the close token', () => {
    expect(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Connection: close\xa0')).keepAlive).toBe(true)
  })
})

describe('accepted', () => {
  test('a plain GET: origin-form, keep-alive, no body', () => {
    const r = parseRequestHead(head('GET /a?b=1 HTTP/1.1', 'Host: a.example:8080', 'X-Multi: 1', 'x-multi: 2'))
    expect(r.method).toBe('GET')
    expect(r.target).toBe('/a?b=1')
    expect(r.minor).toBe(1)
    expect(r.host).toBe('a.example:8080')
    expect(r.body).toEqual({ kind: 'none' })
    expect(r.keepAlive).toBe(true)
    const h = HeadHeaders.of(r)
    expect(h.get('x-multi')).toBe('1, 2')
    expect(h.get('absent')).toBeNull()
    const seen: string[] = []
    h.forEach((v, n) => seen.push(`${n}=${v}`))
    expect(seen).toEqual(['host=a.example:8080', 'x-multi=1', 'x-multi=2'])
  })

  test('HTTP/1.2 to 1.9 are read as HTTP/1.1 (RFC 9110 §2.5): keep-alive, Host needed, a chunked body allowed', () => {
    for (const minor of [2, 5, 9]) {
      const r = parseRequestHead(head(`POST /x HTTP/1.${minor}`, 'Host: a', 'Transfer-Encoding: chunked'))
      expect(r.minor).toBe(1)
      expect(r.keepAlive).toBe(true)
      expect(r.body).toEqual({ kind: 'chunked' })
    }
  })

  test('a backslash in the query (browsers send it there as typed)', () => {
    expect(parseRequestHead(head('GET /a?q=c:\\d\\e HTTP/1.1', 'Host: a')).target).toBe('/a?q=c:\\d\\e')
  })

  test('leading empty lines are skipped, and OWS around a value is trimmed', () => {
    const r = parseRequestHead(`\r\n\r\n${head('GET / HTTP/1.1', 'Host: a', 'X-A: \t v a l \t')}`)
    expect(HeadHeaders.of(r).get('x-a')).toBe('v a l')
  })

  test('absolute-form naming the Host becomes origin-form', () => {
    expect(parseRequestHead(head('GET http://A.example/x?y HTTP/1.1', 'Host: a.example')).target).toBe('/x?y')
    expect(parseRequestHead(head('GET http://a.example HTTP/1.1', 'Host: a.example')).target).toBe('/')
    expect(parseRequestHead(head('GET http://a.example?q HTTP/1.1', 'Host: a.example')).target).toBe('/?q')
    // OPTIONS of no path is about the whole server: "*" (RFC 9112 §3.2.4); with a path or query, origin-form.
    expect(parseRequestHead(head('OPTIONS http://a.example HTTP/1.1', 'Host: a.example')).target).toBe('*')
    expect(parseRequestHead(head('OPTIONS http://a.example/ HTTP/1.1', 'Host: a.example')).target).toBe('/')
    expect(parseRequestHead(head('OPTIONS http://a.example?q HTTP/1.1', 'Host: a.example')).target).toBe('/?q')
    // The scheme's default port names the same authority, on either side (RFC 9110 §4.2.3).
    expect(parseRequestHead(head('GET http://a.example:80/x HTTP/1.1', 'Host: a.example')).target).toBe('/x')
    expect(parseRequestHead(head('GET http://a.example/x HTTP/1.1', 'Host: a.example:80')).target).toBe('/x')
    expect(parseRequestHead(head('GET https://[::1]:443/x HTTP/1.1', 'Host: [::1]')).target).toBe('/x')
    // HTTP/1.0 without Host: the authority is its host (RFC 9112 §3.2.2; a 400 "another host than the Host header" until the fifteenth round of outside reviews).
    const noHost = parseRequestHead(head('GET http://example.test:8080/p/x HTTP/1.0', 'X-A: 1'))
    expect([noHost.target, noHost.host, HeadHeaders.of(noHost).get('host'), HeadHeaders.of(noHost).get('x-a')]).toEqual(['/p/x', 'example.test:8080', 'example.test:8080', '1'])
    // An empty port is the default one, on either side (RFC 3986 §6.2.3).
    expect(parseRequestHead(head('GET http://a.example:/x HTTP/1.1', 'Host: a.example')).target).toBe('/x')
    expect(parseRequestHead(head('GET http://a.example/x HTTP/1.1', 'Host: a.example:')).target).toBe('/x')
    expect(parseRequestHead(head('GET https://a.example:/x HTTP/1.1', 'Host: a.example:443')).target).toBe('/x')
    expect(parseRequestHead(head('GET /x HTTP/1.1', 'Host: a.example:')).host).toBe('a.example:')
    // Another scheme's default port is another port.
    expect(() => parseRequestHead(head('GET http://a.example:443/x HTTP/1.1', 'Host: a.example'))).toThrow(RequestHeadError)
    expect(() => parseRequestHead(head('GET http://a.example:/x HTTP/1.1', 'Host: a.example:8080'))).toThrow(RequestHeadError)
  })

  test('framing: Content-Length (repeated identical values too), chunked, zero', () => {
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Content-Length: 5')).body).toEqual({ kind: 'length', length: 5 })
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5, 5')).body).toEqual({ kind: 'length', length: 5 })
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: Chunked')).body).toEqual({ kind: 'chunked' })
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 0')).body).toEqual({ kind: 'none' })
  })

  test('connection rules: close in 1.1, keep-alive in 1.0, upgrade, 100-continue', () => {
    expect(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Connection: close')).keepAlive).toBe(false)
    expect(parseRequestHead(head('GET / HTTP/1.0')).keepAlive).toBe(false)
    expect(parseRequestHead(head('GET / HTTP/1.0', 'Connection: Keep-Alive')).keepAlive).toBe(true)
    const up = parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Connection: keep-alive, Upgrade', 'Upgrade: websocket'))
    expect(up.upgrade).toBe('websocket')
    // An upgrade with a body is served as a plain request (the body must not share the tunnel).
    expect(parseRequestHead(head('POST /ws HTTP/1.1', 'Host: a', 'Connection: upgrade', 'Upgrade: h2c', 'Content-Length: 3')).upgrade).toBeUndefined()
    // Upgrade without Connection: upgrade is not a request to switch.
    expect(parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Upgrade: websocket')).upgrade).toBeUndefined()
    expect(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Expect: 100-continue', 'Content-Length: 1')).expectContinue).toBe(true)
    // HTTP/1.0: a 100-continue expectation and an Upgrade are ignored (RFC 9110 §10.1.1, §7.8).
    expect(parseRequestHead(head('POST / HTTP/1.0', 'Host: a', 'Expect: 100-continue', 'Content-Length: 1')).expectContinue).toBe(false)
    expect(parseRequestHead(head('GET /ws HTTP/1.0', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket')).upgrade).toBeUndefined()
  })

  test('an Upgrade that names no valid protocol is not a request to switch (RFC 9110 §7.8: protocol-name ["/" protocol-version], tokens)', () => {
    const upgradeOf = (value: string) => parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Connection: Upgrade', `Upgrade:${value}`)).upgrade
    for (const bad of ['', ' ', ' ,', ' , ,', ' websocket garbage(', ' "x"', ' websocket/', ' /1', ' a b', ' websocket, x/1/2', ' websocket, (x)']) {
      expect([bad, upgradeOf(bad)]).toEqual([bad, undefined])
    }
    for (const good of ['websocket', 'WebSocket', 'h2c, websocket', 'HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11', ' , websocket ,']) {
      expect([good, upgradeOf(` ${good}`)]).toEqual([good, good.trim()])
    }
  })

  test('Upgrade on several lines is one list (RFC 9110 §5.3), all of it a valid one', () => {
    const lines = (...values: string[]) => parseRequestHead(head('GET /ws HTTP/1.1', 'Host: a', 'Connection: Upgrade', ...values.map((v) => `Upgrade: ${v}`))).upgrade
    expect(lines('websocket', 'echo/1')).toBe('websocket, echo/1')
    expect(lines('websocket', '"x"')).toBeUndefined()
  })

  test('OPTIONS * and an HTTP/1.0 request without Host', () => {
    expect(parseRequestHead(head('OPTIONS * HTTP/1.1', 'Host: a')).target).toBe('*')
    expect(parseRequestHead(head('GET / HTTP/1.0')).host).toBeUndefined()
  })

  test('a long hostile value is rejected in linear time (no regex backtracking)', () => {
    // 16 KiB of spaces then a control character: refused, and quickly enough not to time out.
    expect(statusOf(head('GET / HTTP/1.1', 'Host: a', `X-A: ${' '.repeat(16 * 1024)}\x01`))).toBe(400)
  })
})

describe('mutated heads (seeded, 5,000 cases)', () => {
  test('every head is either refused with an HTTP status or parsed into a value with no CR, LF or control character', () => {
    // A small deterministic PRNG (mulberry32): the same cases on every run.
    let seed = 0x5eed
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = seed
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const base = [
      head('GET /a?b HTTP/1.1', 'Host: a.example', 'User-Agent: t', 'Accept: */*'),
      head('POST /u HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Connection: close'),
      head('PUT /c HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Expect: 100-continue'),
      head('GET http://a/x HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket'),
    ]
    const pieces = ['\r', '\n', '\r\n', ' ', '\t', ':', '\x00', '\x7f', ',', 'Host: b', 'Content-Length: 7', 'Transfer-Encoding: gzip', '\xff', 'HTTP/1.0', '/', '@', '#', '\xa0', '\x0b', '\x0c', '\x85', 'Content-Length: \xa07\xa0', 'Transfer-Encoding:\xa0chunked\xa0']
    // The characters JavaScript's trim() strips beyond SP/HTAB: none may surround a framing value that parsed.
    const notOws = /^[\x0b\x0c\x0d\x0a\xa0\x85]|[\x0b\x0c\x0d\x0a\xa0\x85]$/
    const statuses = new Set([400, 405, 414, 431, 501, 505])
    let refused = 0
    for (let i = 0; i < 5000; i++) {
      let text = base[i % base.length]!
      const edits = 1 + Math.floor(rand() * 3)
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * (text.length + 1))
        const r = rand()
        if (r < 0.5) text = text.slice(0, at) + pieces[Math.floor(rand() * pieces.length)]! + text.slice(at)
        else if (r < 0.8) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 4))
        else text = text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + text.slice(at + 1)
      }
      let parsed
      try {
        parsed = parseRequestHead(text)
      } catch (err) {
        expect(err).toBeInstanceOf(RequestHeadError)
        expect(statuses.has(statusFor((err as RequestHeadError).code).status)).toBe(true)
        refused++
        continue
      }
      expect(parsed.target === '*' || parsed.target.startsWith('/')).toBe(true)
      expect(/^[\x21-\x7e]+$/.test(parsed.target)).toBe(true)
      for (const n of parsed.names) expect(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)).toBe(true)
      for (const v of headValues(parsed)) expect(/[\x00-\x08\x0a-\x1f\x7f]/.test(v)).toBe(false)
      expect(parsed.names.filter((n) => n === 'host').length).toBeLessThanOrEqual(1)
      parsed.names.forEach((n, j) => {
        if (n === 'transfer-encoding' || n === 'content-length' || n === 'host') expect(notOws.test(parsed.values[j]!)).toBe(false)
      })
      if (parsed.body.kind === 'length') {
        const cl = parsed.names.flatMap((n, j) => (n === 'content-length' ? parsed.values[j]!.split(',') : []))
        for (const v of cl) expect(v.replace(/^[ \t]+|[ \t]+$/g, '')).toBe(String(parsed.body.length))
      }
      const framing = parsed.names.filter((n) => n === 'transfer-encoding' || n === 'content-length')
      if (parsed.body.kind === 'chunked') expect(framing.every((n) => n === 'transfer-encoding')).toBe(true)
    }
    // The mutations are hostile enough that most heads are refused, and some still parse.
    expect(refused).toBeGreaterThan(2500)
    expect(refused).toBeLessThan(5000)
  })
})

describe('the Host value check on bytes (isHostValueBytes)', () => {
  test('agrees with isHostValue on hand-picked values', () => {
    const cases: [string, boolean][] = [
      ['example.com', true], ['example.com:8080', true], ['127.0.0.1:18802', true], ['[::1]:443', true], ['[::1]', true],
      // An empty port is allowed (RFC 3986 §3.2.3: port = *DIGIT; 400 until the nineteenth round of outside reviews, nginx and HAProxy accept it).
      ['a:', true], ['[::1]:', true], ['a::', false], ['a:123456', false], [':80', false], ['[]', false], ['[::1', false], ['[::1]x', false],
      ['a b', false], ['a@b', false], ['a:1:2', false], ['', false], ['é.com', false], ['[v1.x]', false],
      // Characters of an IPv6 address in no IPv6 order (an outside IPv6 sweep found them forwarded): 400.
      ['[:::1]', false], ['[1:2:3:4:5:6:7:8:9]', false], ['[12345::1]', false], ['[1.2.3.4]', false], ['[::ffff:127.0.0.1]:80', true], ['[2001:db8::1]', true],
    ]
    for (const [value, ok] of cases) {
      const b = Buffer.from(`>${value}<`, 'latin1')
      expect([value, isHostValue(value)]).toEqual([value, ok])
      expect([value, isHostValueBytes(b, 1, 1 + value.length)]).toEqual([value, ok])
    }
  })

  test('agrees with isHostValue on 20,000 generated values', () => {
    let seed = 7
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff
    const alphabet = "aZ09-._~!$&'()*+;=%:[]@/ ?#\x00\x7f\xe9fF."
    let valid = 0
    const differ: string[] = []
    for (let t = 0; t < 20_000; t++) {
      let s = ''
      for (let i = Math.floor(rnd() * 14); i > 0; i--) s += alphabet[Math.floor(rnd() * alphabet.length)]
      if (rnd() < 0.3) s = (rnd() < 0.5 ? `[${s}]` : s) + ':' + String(Math.floor(rnd() * 1234567)).slice(0, Math.floor(rnd() * 7))
      const expected = isHostValue(s)
      if (expected) valid++
      if (isHostValueBytes(Buffer.from(`xx${s}yy`, 'latin1'), 2, 2 + s.length) !== expected) differ.push(s)
    }
    expect(differ).toEqual([])
    // The corpus holds both kinds.
    expect(valid).toBeGreaterThan(1000)
    expect(valid).toBeLessThan(19_000)
  })
})

test('a head of MAX_HEADER_COUNT fields keeps each value, and the head parsed after it only its own', () => {
  const lines = Array.from({ length: MAX_HEADER_COUNT - 1 }, (_, i) => `X-${i}:\tvalue-${i}`)
  const big = parseRequestHead(['GET / HTTP/1.1', 'Host: a', ...lines].join('\r\n'))
  const small = parseRequestHead(['GET / HTTP/1.1', 'Host: b', 'X-One: 1'].join('\r\n'))
  expect(headValues(big)).toEqual(['a', ...lines.map((_, i) => `value-${i}`)])
  expect(big.spans.length).toBe(4 * MAX_HEADER_COUNT)
  expect(headValues(small)).toEqual(['b', '1'])
  expect(small.spans.length).toBe(8)
})

describe('mayBeginRequestLine: what an unfinished first line may still become', () => {
  test('every prefix of a valid request line (after empty lines) may begin one; the first wrong byte ends it', () => {
    const methods = ['GET', 'M-SEARCH', 'PROPFIND', "!#$%&'*+-.^_`|~09Az"]
    const targets = ['/', '/a/b?c=d&e', '*', 'http://a.example:80/x', '/%00%7F', "/~!$&'()*+,;=:@"]
    const leads = ['', '\r\n', '\r\n\r\n']
    for (const m of methods) for (const t of targets) for (const lead of leads) {
      const line = Buffer.from(`${lead}${m} ${t} HTTP/1.1\r\n`, 'latin1')
      for (let n = 0; n <= line.length; n++) expect([line.toString('latin1', 0, n), mayBeginRequestLine(line, n)]).toEqual([line.toString('latin1', 0, n), true])
    }
    for (const bad of ['\x16\x03\x01', '\x00', ' GET', 'GET  /', 'G\x01T', 'GET /\x00', 'GET /\x7f', 'GET /\xe9', 'GET \x16', 'GET / X', 'GET / HTTP/x', 'GET / HTTP/1,1', 'GET / HTTP/1.x']) {
      const b = Buffer.from(bad, 'latin1')
      expect([bad, mayBeginRequestLine(b, b.length)]).toEqual([bad, false])
    }
  })
})
