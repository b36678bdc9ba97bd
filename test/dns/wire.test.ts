import { describe, expect, test } from 'bun:test'
import { interpret, DnsError } from '../../src/dns/client.ts'
import { parseHosts, parseResolvConf } from '../../src/dns/system-config.ts'
import { decodeMessage, DnsWireError, encodeQuery, encodeResponse, RCODE, TYPE } from '../../src/dns/wire.ts'

describe('wire', () => {
  test('a query round-trips', () => {
    const m = decodeMessage(encodeQuery(0xbeef, 'Origin.Example.', TYPE.AAAA))
    expect(m.id).toBe(0xbeef)
    expect(m.response).toBe(false)
    expect(m.recursionDesired).toBe(true)
    expect(m.questions).toEqual([{ name: 'origin.example', type: TYPE.AAAA, qclass: 1 }])
  })

  test('a response with A, AAAA and CNAME round-trips', () => {
    const bytes = encodeResponse({
      id: 7,
      authoritative: true,
      truncated: false,
      recursionDesired: true,
      recursionAvailable: true,
      rcode: RCODE.NOERROR,
      questions: [{ name: 'www.example', type: TYPE.A }],
      answers: [
        { name: 'www.example', type: TYPE.CNAME, ttl: 300, data: 'lb.example' },
        { name: 'lb.example', type: TYPE.A, ttl: 60, data: '192.0.2.10' },
        { name: 'lb.example', type: TYPE.AAAA, ttl: 60, data: '2001:db8::1' },
      ],
      authorities: [],
    })
    const m = decodeMessage(bytes)
    expect(m.response).toBe(true)
    expect(m.answers.map((r) => r.data)).toEqual(['lb.example', '192.0.2.10', '2001:db8::1'])
  })

  test('an IPv4-mapped AAAA reads as ::ffff:a.b.c.d (RFC 5952 §5), and is written from that form (it printed ::ffff:7f00:2: outside IPv6 sweep)', () => {
    const bytes = encodeResponse({
      id: 8, authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: true, rcode: RCODE.NOERROR,
      questions: [{ name: 'm.example', type: TYPE.AAAA }],
      answers: [
        { name: 'm.example', type: TYPE.AAAA, ttl: 60, data: '::ffff:127.0.0.2' },
        { name: 'm.example', type: TYPE.AAAA, ttl: 60, data: '::ffff:7f00:3' },
        { name: 'm.example', type: TYPE.AAAA, ttl: 60, data: '64:ff9b::c000:201' }, // NAT64, not mapped: hex
      ],
      authorities: [],
    })
    expect(decodeMessage(bytes).answers.map((r) => r.data)).toEqual(['::ffff:127.0.0.2', '::ffff:127.0.0.3', '64:ff9b::c000:201'])
  })

  test('compression pointers are followed', () => {
    // Header, question "a.example" A IN, answer with name = pointer to offset 12 (the question name).
    const q = Array.from(encodeQuery(1, 'a.example', TYPE.A))
    q[2] = 0x81 // QR + RD
    q[7] = 1 // ANCOUNT = 1
    const answer = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 198, 51, 100, 7]
    const m = decodeMessage(Uint8Array.from([...q, ...answer]))
    expect(m.answers).toEqual([{ name: 'a.example', type: TYPE.A, ttl: 30, data: '198.51.100.7' }])
  })

  test('a compression pointer loop is an error, not a hang', () => {
    const q = Array.from(encodeQuery(1, 'a.example', TYPE.A))
    q[7] = 1
    const loop = [0xc0, q.length, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4] // points at itself
    expect(() => decodeMessage(Uint8Array.from([...q, ...loop]))).toThrow(DnsWireError)
  })

  /** A response to an A query for a.example, with `answer` bytes as its one answer record. */
  const withAnswer = (answer: number[]) => {
    const q = Array.from(encodeQuery(1, 'a.example', TYPE.A))
    q[2] = 0x81
    q[7] = 1
    return Uint8Array.from([...q, ...answer])
  }
  const label = (text: string) => [text.length, ...Array.from(text, (c) => c.charCodeAt(0))]

  test('a name longer than 255 bytes is an error, however compression builds it', () => {
    // Four labels of 63 bytes: 257 bytes with their lengths and the final zero.
    const long = [...label('a'.repeat(63)), ...label('b'.repeat(63)), ...label('c'.repeat(63)), ...label('d'.repeat(63)), 0]
    expect(() => decodeMessage(withAnswer([...long, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4]))).toThrow('longer than 255')
    // Three of them and one of 61: 255 bytes, the most there may be.
    const most = [...label('a'.repeat(63)), ...label('b'.repeat(63)), ...label('c'.repeat(63)), ...label('d'.repeat(61)), 0]
    expect(decodeMessage(withAnswer([...most, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4])).answers).toHaveLength(1)
  })

  test('a name compression builds past 255 bytes from a name already read is an error too (names are decoded once per offset)', () => {
    // The first answer's name (at offset 27, after the 12-byte header and the 15-byte question): three labels of 63 bytes, 193 bytes.
    const first = [...label('a'.repeat(63)), ...label('b'.repeat(63)), ...label('c'.repeat(63)), 0, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4]
    const twice = (second: number[]) => (m => ((m[7] = 2), m))(withAnswer([...first, ...second, 0xc0, 27, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 5, 6, 7, 8]))
    // A label of 61 before a pointer to it: 255 bytes; of 62: 256.
    const ok = decodeMessage(twice(label('d'.repeat(61))))
    expect(ok.answers.map((r) => [r.name.length, r.data])).toEqual([[191, '1.2.3.4'], [253, '5.6.7.8']])
    expect(ok.answers[1]!.name.endsWith(ok.answers[0]!.name)).toBe(true)
    expect(() => decodeMessage(twice(label('d'.repeat(62))))).toThrow('longer than 255')
  })

  test('4,000 records whose names point at one long name are each read whole', () => {
    const long = Array.from({ length: 100 }, () => label('x')).flat()
    const record = [0xc0, 27, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 9]
    const m = withAnswer([...long, 0, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 1, ...Array.from({ length: 3999 }, () => record).flat()])
    m[6] = 4000 >> 8
    m[7] = 4000 & 0xff
    const answers = decodeMessage(m).answers
    expect(answers).toHaveLength(4000)
    expect(new Set(answers.map((r) => r.name))).toEqual(new Set([Array(100).fill('x').join('.')]))
    expect(answers[3999]!.data).toBe('127.0.0.9')
  })

  test('a label holding a dot is an error (it would read as two labels)', () => {
    expect(() => decodeMessage(withAnswer([...label('a.example'), 0, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4]))).toThrow('dot')
  })

  test('records of another class than IN are left out; a CNAME\'s TTL with the top bit set is 0', () => {
    const ch = decodeMessage(withAnswer([0xc0, 12, 0, 1, 0, 3, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4]))
    expect(ch.answers).toEqual([])
    const cname = decodeMessage(withAnswer([0xc0, 12, 0, 5, 0, 1, 0x80, 0, 0, 0, 0, 2, 0xc0, 12]))
    expect(cname.answers).toEqual([{ name: 'a.example', type: TYPE.CNAME, ttl: 0, data: 'a.example' }])
  })

  test.each([
    ['an A record of 5 bytes', [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 5, 1, 2, 3, 4, 5], 'A record with 5 bytes'],
    ['an A record of 3 bytes', [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 3, 1, 2, 3], 'A record with 3 bytes'],
    ['an AAAA record of 4 bytes', [0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4], 'AAAA record with 4 bytes'],
    ['a CNAME of 0 bytes (its target would be read from what follows)', [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 0, 0xc0, 12], 'CNAME target'],
    ['a CNAME with bytes after its target', [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 3, 0xc0, 12, 9], 'CNAME target'],
  ])('%s is a malformed message, not a record to skip', (_what, answer, message) => {
    expect(() => decodeMessage(withAnswer(answer as number[]))).toThrow(message as string)
  })

  test.each([[new Uint8Array(5)], [Uint8Array.from([...encodeQuery(1, 'x', 1)].slice(0, 15))]])('truncated input is an error', (bytes) => {
    expect(() => decodeMessage(bytes)).toThrow(DnsWireError)
  })
})

describe('interpret', () => {
  const base = { id: 1, response: true, opcode: 0, authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: true, questions: [], authorities: [] }
  test('follows a CNAME chain and takes the smallest TTL', () => {
    const a = interpret(
      {
        ...base,
        rcode: 0,
        answers: [
          { name: 'www.example', type: TYPE.CNAME, ttl: 20, data: 'edge.example' },
          { name: 'edge.example', type: TYPE.CNAME, ttl: 300, data: 'lb.example' },
          { name: 'lb.example', type: TYPE.A, ttl: 60, data: '192.0.2.1' },
          { name: 'lb.example', type: TYPE.A, ttl: 60, data: '192.0.2.2' },
          { name: 'unrelated.example', type: TYPE.A, ttl: 1, data: '192.0.2.99' },
        ],
      },
      'www.example',
      TYPE.A,
      '127.0.0.1:53',
    )
    expect(a.addresses).toEqual(['192.0.2.1', '192.0.2.2'])
    expect(a.ttlS).toBe(20)
  })
  test.each([
    [RCODE.NXDOMAIN, 'NXDOMAIN'],
    [RCODE.SERVFAIL, 'SERVFAIL'],
    [RCODE.REFUSED, 'REFUSED'],
    [RCODE.NOTIMP, 'BAD_RESPONSE'],
  ])('rcode %p -> %p', (rcode, code) => {
    try {
      interpret({ ...base, rcode, answers: [] }, 'x.example', TYPE.A, 's')
      throw new Error('no error')
    } catch (err) {
      expect((err as DnsError).code).toBe(code as DnsError['code'])
    }
  })
  test('an empty NOERROR answer is NODATA', () => {
    expect(() => interpret({ ...base, rcode: 0, answers: [] }, 'x.example', TYPE.A, 's')).toThrow(DnsError)
  })
  test('the same address twice is one (RFC 2181 §5)', () => {
    const answers = ['192.0.2.1', '192.0.2.1', '192.0.2.2', '192.0.2.1'].map((data) => ({ name: 'x.example', type: TYPE.A, ttl: 60, data }))
    expect(interpret({ ...base, rcode: 0, answers }, 'x.example', TYPE.A, 's').addresses).toEqual(['192.0.2.1', '192.0.2.2'])
  })
  test('a CNAME chain that loops is BAD_RESPONSE, even with an address record at a name in it', () => {
    const answers = [
      { name: 'x.example', type: TYPE.CNAME, ttl: 60, data: 'c1.example' },
      { name: 'c1.example', type: TYPE.CNAME, ttl: 60, data: 'x.example' },
      { name: 'x.example', type: TYPE.A, ttl: 60, data: '192.0.2.3' },
    ]
    let code = ''
    try {
      interpret({ ...base, rcode: 0, answers }, 'x.example', TYPE.A, 's')
    } catch (err) {
      code = (err as DnsError).code
    }
    expect(code).toBe('BAD_RESPONSE')
  })
})

describe('system config', () => {
  test('resolv.conf', () => {
    const c = parseResolvConf('# comment\nnameserver 127.0.2.2\nnameserver ::1\nnameserver not-an-ip\nsearch example\noptions timeout:2 attempts:3 rotate\n')
    expect(c.servers).toEqual([
      { host: '127.0.2.2', port: 53 },
      { host: '::1', port: 53 },
    ])
    expect(c.timeoutMs).toBe(2000)
    expect(c.attempts).toBe(3)
    expect(c.search).toEqual(['example'])
    expect(c.ndots).toBe(1)
    // The last of search and domain wins; a trailing dot is dropped; ndots is at most 15.
    const k8s = parseResolvConf('domain old.example\nsearch Default.svc.cluster.local. svc.cluster.local cluster.local\noptions ndots:5\n')
    expect(k8s.search).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'])
    expect(k8s.ndots).toBe(5)
    const domain = parseResolvConf('search a.example b.example\ndomain corp.example\noptions ndots:40\n')
    expect(domain.search).toEqual(['corp.example'])
    expect(domain.ndots).toBe(15)
    // No nameserver line: the local machine's server, as glibc and musl.
    expect(parseResolvConf('nameserver not-an-ip\n').servers).toEqual([{ host: '127.0.0.1', port: 53 }])
  })
  test('hosts', () => {
    const h = parseHosts('127.0.0.1 localhost\n::1 localhost ip6-localhost\n192.0.2.5  Origin.Example  origin # the origin\n# 192.0.2.6 commented\nbogus line\n')
    expect(h.get('localhost')).toEqual([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ])
    expect(h.get('origin.example')).toEqual([{ address: '192.0.2.5', family: 4 }])
    expect(h.get('origin')).toEqual([{ address: '192.0.2.5', family: 4 }])
    expect(h.has('bogus')).toBe(false)
  })
})
