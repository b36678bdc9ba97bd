/** The UDP client and the lookup function against our DNS server on 127.0.0.1. */
import { afterEach, describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DnsError, interpret, queryAddresses } from '../../src/dns/client.ts'
import { createLookup } from '../../src/dns/lookup.ts'
import { DnsServer } from '../../src/dns/server.ts'
import { encodeResponse, TYPE } from '../../src/dns/wire.ts'
import { freeUdpPort } from '../support/dnsmasq.ts'
import { testDir } from '../support/temp-dir.ts'

const servers: DnsServer[] = []
afterEach(() => servers.splice(0).forEach((s) => s.close()))

async function dns(): Promise<DnsServer> {
  const s = await new DnsServer().start(0)
  servers.push(s)
  return s
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return (err as DnsError).code
  }
}

describe('queryAddresses', () => {
  test('A and AAAA answers', async () => {
    const s = await dns()
    s.set('origin.test', { a: ['127.0.0.2', '127.0.0.3'], aaaa: ['::1'], ttl: 42 })
    const opts = { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 1000 }
    const a = await queryAddresses('origin.test', TYPE.A, opts)
    expect(a.addresses).toEqual(['127.0.0.2', '127.0.0.3'])
    expect(a.ttlS).toBe(42)
    expect(a.server).toBe(`127.0.0.1:${s.port}`)
    expect((await queryAddresses('origin.test', TYPE.AAAA, opts)).addresses).toEqual(['::1'])
  })

  test('a CNAME chain uses the smallest TTL along it', async () => {
    const s = await dns()
    s.set('api.test', { cname: 'edge.test', ttl: 7 })
    s.set('edge.test', { cname: 'lb.test', ttl: 300 })
    s.set('lb.test', { a: ['127.0.0.4'], ttl: 60 })
    const a = await queryAddresses('api.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 1000 })
    expect(a.addresses).toEqual(['127.0.0.4'])
    expect(a.ttlS).toBe(7)
  })

  test.each([
    ['NXDOMAIN', 'NXDOMAIN'],
    ['SERVFAIL', 'SERVFAIL'],
    ['REFUSED', 'REFUSED'],
    ['EMPTY', 'NODATA'],
    ['DROP', 'TIMEOUT'],
  ] as const)('%s -> %s', async (mode, want) => {
    const s = await dns()
    s.set('x.test', mode)
    expect(await code(queryAddresses('x.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 300 }))).toBe(want)
  })

  test('a stopped server is UNREACHABLE (its port is closed); SERVFAIL from the first server falls through to the second', async () => {
    const a = await dns()
    const b = await dns()
    a.set('x.test', 'SERVFAIL')
    b.set('x.test', { a: ['127.0.0.9'], ttl: 5 })
    const both = { servers: [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }], timeoutMs: 300 }
    expect((await queryAddresses('x.test', TYPE.A, both)).server).toBe(`127.0.0.1:${b.port}`)
    b.stop()
    expect(await code(queryAddresses('x.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: b.port }], timeoutMs: 300 }))).toBe('UNREACHABLE')
  })
})

describe('a server that is down', () => {
  test('a closed port is left at once (port unreachable on a connected socket), and the next server answers', async () => {
    const live = await dns()
    live.set('x.test', { a: ['127.0.0.9'], ttl: 5 })
    const dead = await freeUdpPort()
    // Before, the query waited out the whole timeout for a server whose port was closed.
    const err = await queryAddresses('x.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: dead }], timeoutMs: 3000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DnsError)
    // Its own code: it came at once, it is not a timeout.
    expect((err as DnsError).code).toBe('UNREACHABLE')
    expect((err as DnsError).message).toContain('refused the query')
    const both = { servers: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: live.port }], timeoutMs: 3000 }
    expect((await queryAddresses('x.test', TYPE.A, both)).server).toBe(`127.0.0.1:${live.port}`)
  })

  test('UNREACHABLE is a failure like a timeout, not an answer: it ends the search list', async () => {
    const dead = await freeUdpPort()
    const dir = testDir('proxy-dns-')
    const resolv = join(dir, 'resolv.conf')
    writeFileSync(resolv, 'nameserver 127.0.0.1\nsearch svc.test\n')
    const lookup = createLookup({ hostsPath: join(dir, 'hosts'), resolvConfPath: resolv, nameserverPort: dead })
    const err = (await lookup('api', { family: 'auto', timeoutMs: 3000 }).catch((e: unknown) => e)) as DnsError
    expect(err.code).toBe('UNREACHABLE')
    // One name asked, not the whole list ("no addresses for api.svc.test, api").
    expect(err.message).not.toContain('search list')
  })
})

describe('a reply with our id that cannot be read', () => {
  test('is BAD_RESPONSE at once, not a timeout', async () => {
    const { createSocket } = await import('node:dgram')
    const sock = createSocket('udp4')
    // Our id, a response with one question whose first label's length byte (0x40) is no label type.
    sock.on('message', (q, rinfo) => sock.send(Buffer.from([q[0]!, q[1]!, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0x61, 0, 0, 1, 0, 1]), rinfo.port, rinfo.address))
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    try {
      const got = await code(queryAddresses('origin.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: sock.address().port }], timeoutMs: 5000 }))
      expect(got).toBe('BAD_RESPONSE')
    } finally {
      sock.close()
    }
  })
})

describe('a reply to another question (RFC 5452 §9.1)', () => {
  // Each query gets a reply that differs from it in one thing (with the address 127.0.0.66),
  // then the right one (127.0.0.2), from the server's own address and with our id both times:
  // only the second may be taken. A case change in the name is the same question (RFC 4343).
  const reply = (id: number, address: string, questions = [{ name: 'origin.test', type: TYPE.A as number }]) =>
    Buffer.from(encodeResponse({ id, authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: false, rcode: 0, questions, answers: [{ name: 'origin.test', type: TYPE.A, ttl: 30, data: address }], authorities: [] }))
  // The question's class is the two bytes after its name ("origin.test": 13 bytes) and type.
  const classAt = 12 + 13 + 2
  test.each([
    ['class CH (3) in the question', (id: number) => (b => (b.writeUInt16BE(3, classAt), b))(reply(id, '127.0.0.66')), '127.0.0.2'],
    ['opcode STATUS (2)', (id: number) => (b => ((b[2]! |= 2 << 3), b))(reply(id, '127.0.0.66')), '127.0.0.2'],
    ['opcode NOTIFY (4)', (id: number) => (b => ((b[2]! |= 4 << 3), b))(reply(id, '127.0.0.66')), '127.0.0.2'],
    ['two questions, ours first', (id: number) => reply(id, '127.0.0.66', [{ name: 'origin.test', type: TYPE.A }, { name: 'other.test', type: TYPE.A }]), '127.0.0.2'],
    ['the QR bit clear', (id: number) => (b => ((b[2]! &= 0x7f), b))(reply(id, '127.0.0.66')), '127.0.0.2'],
    ['type AAAA', (id: number) => reply(id, '127.0.0.66', [{ name: 'origin.test', type: TYPE.AAAA }]), '127.0.0.2'],
    ['the name in upper case: the same question, taken', (id: number) => reply(id, '127.0.0.66', [{ name: 'ORIGIN.TEST', type: TYPE.A }]), '127.0.0.66'],
    // Not ours by its question: its records are never read (a pointer loop there is no bad answer of ours).
    ['type AAAA, with records that cannot be read', (id: number) => Buffer.concat([reply(id, '127.0.0.66', [{ name: 'origin.test', type: TYPE.AAAA }]).subarray(0, 12 + 13 + 4), Buffer.from([0xc0, 12 + 13 + 4])]), '127.0.0.2'],
  ] as const)('%s', async (_what, first, want) => {
    const { createSocket } = await import('node:dgram')
    const sock = createSocket('udp4')
    sock.on('message', (q, rinfo) => {
      sock.send(first(q.readUInt16BE(0)), rinfo.port, rinfo.address)
      sock.send(reply(q.readUInt16BE(0), '127.0.0.2'), rinfo.port, rinfo.address)
    })
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    try {
      const got = await queryAddresses('origin.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: sock.address().port }], timeoutMs: 3000 })
      expect(got.addresses).toEqual([want])
    } finally {
      sock.close()
    }
  })
})

describe('a malformed record', () => {
  test('an A record of 5 bytes is a failed A query (failedFamily), not "no A records" beside a good AAAA', async () => {
    const { createSocket } = await import('node:dgram')
    const { encodeResponse } = await import('../../src/dns/wire.ts')
    const sock = createSocket('udp4')
    sock.on('message', (q, rinfo) => {
      const question = [...q.subarray(12)]
      const id = [q[0]!, q[1]!]
      const reply =
        q.readUInt16BE(q.length - 4) === TYPE.A
          ? Buffer.from([...id, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, ...question, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 5, 127, 0, 0, 2, 0])
          : encodeResponse({ id: q.readUInt16BE(0), authoritative: true, truncated: false, recursionDesired: true, recursionAvailable: false, rcode: 0, questions: [{ name: 'origin.test', type: TYPE.AAAA }], answers: [{ name: 'origin.test', type: TYPE.AAAA, ttl: 30, data: '::1' }], authorities: [] })
      sock.send(reply, rinfo.port, rinfo.address)
    })
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    try {
      const lookup = createLookup({ resolvers: [{ host: '127.0.0.1', port: sock.address().port }] })
      const r = await lookup('origin.test', { family: 'auto', timeoutMs: 3000 })
      expect(r.addresses).toEqual([{ address: '::1', family: 6 }])
      // With a failed family the resolver keeps that family's last good addresses.
      expect(r.failedFamily?.family).toBe(4)
      expect((r.failedFamily?.error as DnsError).code).toBe('BAD_RESPONSE')
    } finally {
      sock.close()
    }
  })
})

/**
 * A server on one loopback port: UDP answers every query with the TC bit and no records (or,
 * `udp: 'cut'`, as a server that fills a datagram does: the 100 records' reply with the TC bit,
 * cut at 512 bytes, its counts still saying 100), TCP with `tcpReply(the whole reply for 100 A
 * records, framed)`; closed by the test.
 */
async function truncatingServer(tcpReply: (framed: Buffer) => Buffer, udpShape: 'empty' | 'cut' = 'empty'): Promise<{ port: number; close: () => void }> {
  const { createSocket } = await import('node:dgram')
  const { createServer } = await import('node:net')
  const { encodeResponse } = await import('../../src/dns/wire.ts')
  const reply = (id: number, truncated: boolean) => {
    if (truncated && udpShape === 'cut') return (b => ((b[2]! |= 0x02), b.subarray(0, 512)))(reply(id, false))
    const answers = truncated ? [] : Array.from({ length: 100 }, (_, i) => ({ name: 'many.test', type: TYPE.A, ttl: 30, data: `127.0.1.${i + 1}` }))
    return Buffer.from(encodeResponse({ id, authoritative: true, truncated, recursionDesired: true, recursionAvailable: false, rcode: 0, questions: [{ name: 'many.test', type: TYPE.A }], answers, authorities: [] }))
  }
  const tcp = createServer((c) => {
    c.on('error', () => {})
    c.once('data', (d: Buffer) => {
      const body = reply(d.readUInt16BE(2), false)
      const len = Buffer.alloc(2)
      len.writeUInt16BE(body.length)
      c.end(tcpReply(Buffer.concat([len, body])))
    })
  })
  // The UDP side takes the TCP side's port; another process may hold it for UDP: 5 tries.
  for (let attempt = 1; ; attempt++) {
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()))
    const port = (tcp.address() as { port: number }).port
    const udp = createSocket('udp4')
    const bound = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false))
      udp.bind(port, '127.0.0.1', () => r(true))
    })
    if (bound) {
      udp.on('message', (q, rinfo) => udp.send(reply(q.readUInt16BE(0), true), rinfo.port, rinfo.address))
      return { port, close: () => (udp.close(), tcp.close()) }
    }
    udp.close()
    await new Promise<void>((r) => tcp.close(() => r()))
    if (attempt >= 5) throw new Error('no port free for both UDP and TCP')
  }
}

describe('TCP fallback (RFC 7766)', () => {
  test.each([
    ['the whole reply: 100 addresses', (framed: Buffer) => framed, 'ok'],
    ['a length prefix larger than the message, then close: BAD_RESPONSE', (framed: Buffer) => Buffer.concat([Buffer.from([(framed.length + 48) >> 8, (framed.length + 48) & 0xff]), framed.subarray(2)]), 'BAD_RESPONSE'],
    ['cut mid-message: BAD_RESPONSE', (framed: Buffer) => framed.subarray(0, 40), 'BAD_RESPONSE'],
    ['closed with nothing sent: BAD_RESPONSE', () => Buffer.alloc(0), 'BAD_RESPONSE'],
  ] as const)('a TC answer, then over TCP %s (a close is a bad answer at once, not a timeout)', async (_what, tcpReply, want) => {
    const s = await truncatingServer(tcpReply)
    try {
      const p = queryAddresses('many.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 3000 })
      expect(await code(p)).toBe(want)
      if (want === 'ok') expect((await p).addresses).toHaveLength(100)
    } finally {
      s.close()
    }
  })
})

describe('a TC answer cut mid-record (RFC 2181 §9: the TC bit says ask over TCP, whatever the rest holds)', () => {
  test('its counts name records the datagram does not hold: asked over TCP, not a bad answer', async () => {
    const s = await truncatingServer((framed) => framed, 'cut')
    try {
      const got = await queryAddresses('many.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 3000 })
      expect(got.addresses).toHaveLength(100)
    } finally {
      s.close()
    }
  })
})

describe('the server\'s address', () => {
  test('an IPv6 resolver written in a non-canonical form is answered (the reply\'s source is compared canonically)', async () => {
    const s = await new DnsServer('::1').start(0)
    servers.push(s)
    s.set('origin.test', { a: ['127.0.0.2'], ttl: 30 })
    for (const host of ['0:0:0:0:0:0:0:1', '0::1', '::1']) {
      const a = await queryAddresses('origin.test', TYPE.A, { servers: [{ host, port: s.port }], timeoutMs: 1000 })
      expect(a.addresses).toEqual(['127.0.0.2'])
    }
  })
})

describe('createLookup', () => {
  test('explicit resolvers, family auto orders IPv4 first', async () => {
    const s = await dns()
    s.set('origin.test', { a: ['127.0.0.2'], aaaa: ['::1'], ttl: 30 })
    const lookup = createLookup({ resolvers: [{ host: '127.0.0.1', port: s.port }] })
    const r = await lookup('origin.test', { family: 'auto', timeoutMs: 500 })
    expect(r.addresses).toEqual([
      { address: '127.0.0.2', family: 4 },
      { address: '::1', family: 6 },
    ])
    expect(r.ttlMs).toBe(30_000)
    expect((await lookup('origin.test', { family: 'ipv6', timeoutMs: 500 })).addresses).toEqual([{ address: '::1', family: 6 }])
  })

  test('auto: one type failing while the other answers is said (failedFamily); NODATA for one is an answer', async () => {
    const s = await dns()
    s.set('a-fails.test', { a: 'SERVFAIL', aaaa: ['::1'], ttl: 30 })
    s.set('aaaa-silent.test', { a: ['127.0.0.2'], aaaa: 'DROP', ttl: 30 })
    s.set('v4only.test', { a: ['127.0.0.2'], ttl: 30 })
    const lookup = createLookup({ resolvers: [{ host: '127.0.0.1', port: s.port }] })
    const a = await lookup('a-fails.test', { family: 'auto', timeoutMs: 300 })
    expect(a.addresses).toEqual([{ address: '::1', family: 6 }])
    expect(a.failedFamily?.family).toBe(4)
    const b = await lookup('aaaa-silent.test', { family: 'auto', timeoutMs: 300 })
    expect(b.addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    expect(b.failedFamily?.family).toBe(6)
    expect((await lookup('v4only.test', { family: 'auto', timeoutMs: 300 })).failedFamily).toBeUndefined()
  })

  test('auto with only A records still answers; NXDOMAIN for both is NXDOMAIN', async () => {
    const s = await dns()
    s.set('v4only.test', { a: ['127.0.0.2'], ttl: 30 })
    s.set('gone.test', 'NXDOMAIN')
    const lookup = createLookup({ resolvers: [{ host: '127.0.0.1', port: s.port }] })
    expect((await lookup('v4only.test', { family: 'auto', timeoutMs: 500 })).addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    expect(await code(lookup('gone.test', { family: 'auto', timeoutMs: 500 }))).toBe('NXDOMAIN')
  })

  test('system mode: resolv.conf\'s search list and ndots (resolv.conf(5))', async () => {
    const s = await dns()
    s.set('api.corp.test', { a: ['127.0.0.2'], ttl: 30 })
    s.set('a.b.corp.test', { a: ['127.0.0.3'], ttl: 30 })
    s.set('a.b', { a: ['127.0.0.4'], ttl: 30 })
    s.set('down.svc.test', 'SERVFAIL')
    s.set('down.corp.test', { a: ['127.0.0.5'], ttl: 30 })
    const dir = testDir('proxy-dns-')
    const resolv = join(dir, 'resolv.conf')
    // svc.test is not in the zone: our server answers NXDOMAIN for it, and the next domain is tried.
    writeFileSync(resolv, 'nameserver 127.0.0.1\nsearch svc.test corp.test\noptions ndots:2\n')
    const lookup = createLookup({ hostsPath: join(dir, 'hosts'), resolvConfPath: resolv, nameserverPort: s.port })
    const v4 = { family: 'ipv4', timeoutMs: 1000 } as const
    // One dot, fewer than ndots: the search domains first (api.svc.test: NXDOMAIN; api.corp.test).
    expect((await lookup('api', v4)).addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    expect((await lookup('api', { family: 'auto', timeoutMs: 1000 })).addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    expect((await lookup('a.b', v4)).addresses).toEqual([{ address: '127.0.0.3', family: 4 }])
    writeFileSync(resolv, 'nameserver 127.0.0.1\nsearch svc.test corp.test\n')
    await Bun.sleep(20)
    // Default ndots 1: a name with a dot is asked as it is first.
    expect((await lookup('a.b', v4)).addresses).toEqual([{ address: '127.0.0.4', family: 4 }])
    // A trailing dot: absolute, no search.
    expect(await code(lookup('api.', v4))).toBe('NXDOMAIN')
    // SERVFAIL for a name on the list: the next name is asked (glibc res_nsearch).
    expect((await lookup('down', v4)).addresses).toEqual([{ address: '127.0.0.5', family: 4 }])
    const err = await lookup('nothing', v4).catch((e: unknown) => e as DnsError)
    expect((err as DnsError).code).toBe('NXDOMAIN')
    expect((err as DnsError).message).toContain('nothing.svc.test, nothing.corp.test, nothing')
  })

  test('system mode: a search domain answering SERVFAIL does not hide the name as written; a timeout ends the search (glibc res_nsearch)', async () => {
    const s = await dns()
    // Kubernetes-style: ndots 5, and the node's search domain has a broken server.
    s.set('api.example.com.node.test', 'SERVFAIL')
    s.set('api.example.com', { a: ['127.0.0.2'], ttl: 30 })
    s.set('gone.node.test', 'SERVFAIL')
    s.set('slow.node.test', 'DROP')
    s.set('slow', { a: ['127.0.0.3'], ttl: 30 })
    const dir = testDir('proxy-dns-')
    const resolv = join(dir, 'resolv.conf')
    writeFileSync(resolv, 'nameserver 127.0.0.1\nsearch svc.test node.test\noptions ndots:5\n')
    const lookup = createLookup({ hostsPath: join(dir, 'hosts'), resolvConfPath: resolv, nameserverPort: s.port })
    const v4 = { family: 'ipv4', timeoutMs: 300 } as const
    expect((await lookup('api.example.com', v4)).addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    expect((await lookup('api.example.com', { family: 'auto', timeoutMs: 300 })).addresses).toEqual([{ address: '127.0.0.2', family: 4 }])
    // No name has addresses: the SERVFAIL is the lookup's error (the resolver keeps its last good addresses), not the NXDOMAINs.
    const err = (await lookup('gone', v4).catch((e: unknown) => e)) as DnsError
    expect(err.code).toBe('SERVFAIL')
    expect(err.message).toContain('gone.svc.test, gone.node.test, gone')
    expect(err.message).toContain('SERVFAIL from')
    // No answer at all is still the lookup's failure: "slow" itself is not asked.
    expect(await code(lookup('slow', v4))).toBe('TIMEOUT')
  })

  test('system mode: no nameserver line, or no resolv.conf, asks the local machine\'s server (resolv.conf(5))', async () => {
    const s = await dns()
    s.set('local.test', { a: ['127.0.0.2'], ttl: 30 })
    const dir = testDir('proxy-dns-')
    const resolv = join(dir, 'resolv.conf')
    writeFileSync(resolv, '# written by a tool that found no servers\nsearch corp.test\n')
    const v4 = { family: 'ipv4', timeoutMs: 1000 } as const
    const withFile = createLookup({ hostsPath: join(dir, 'hosts'), resolvConfPath: resolv, nameserverPort: s.port })
    expect(await withFile('local.test', v4)).toEqual({ addresses: [{ address: '127.0.0.2', family: 4 }], ttlMs: 30_000, source: `127.0.0.1:${s.port}` })
    const noFile = createLookup({ hostsPath: join(dir, 'hosts'), resolvConfPath: join(dir, 'missing.conf'), nameserverPort: s.port })
    expect((await noFile('local.test', v4)).source).toBe(`127.0.0.1:${s.port}`)
  })

  test('system mode: /etc/hosts first (no TTL), then resolv.conf servers; a changed hosts file is re-read', async () => {
    const dir = testDir('proxy-dns-')
    const hosts = join(dir, 'hosts')
    const resolv = join(dir, 'resolv.conf')
    writeFileSync(hosts, '127.0.0.5 pinned.test\n')
    writeFileSync(resolv, 'nameserver 127.0.0.1\n')
    // (resolv.conf cannot name a port, so the DNS half of system mode is covered by the explicit-resolver tests.)
    const lookup = createLookup({ hostsPath: hosts, resolvConfPath: resolv })
    const r = await lookup('pinned.test', { family: 'auto', timeoutMs: 300 })
    expect(r).toEqual({ addresses: [{ address: '127.0.0.5', family: 4 }], ttlMs: undefined, source: 'hosts' })
    await Bun.sleep(20)
    writeFileSync(hosts, '127.0.0.6 pinned.test\n')
    expect((await lookup('pinned.test', { family: 'auto', timeoutMs: 300 })).addresses[0]!.address).toBe('127.0.0.6')
    expect((await lookup('127.0.0.8', { family: 'auto', timeoutMs: 300 })).source).toBe('literal')
  })
})

describe('outside review, thirteenth round', () => {
  test('a lost datagram: the query is sent again halfway through the timeout, and answered', async () => {
    const s = await dns()
    s.set('x.test', { a: ['127.0.0.9'], ttl: 5 })
    s.dropQueries = 1
    const a = await queryAddresses('x.test', TYPE.A, { servers: [{ host: '127.0.0.1', port: s.port }], timeoutMs: 600 })
    expect(a.addresses).toEqual(['127.0.0.9'])
    expect(s.queries).toBe(2)
  })

  test('a CNAME chain longer than the client follows is BAD_RESPONSE (last good kept), not NODATA (no addresses)', () => {
    const names = Array.from({ length: 18 }, (_, i) => `n${i}.test`)
    const chain = (hops: number) => ({
      id: 1, response: true, opcode: 0, authoritative: false, truncated: false, recursionDesired: true, recursionAvailable: true, rcode: 0,
      questions: [{ name: names[0]!, type: TYPE.A, qclass: 1 }],
      answers: [...names.slice(0, hops).map((n, i) => ({ name: n, type: TYPE.CNAME, ttl: 30, data: names[i + 1]! })), { name: names[hops]!, type: TYPE.A, ttl: 30, data: '127.0.0.2' }],
      authorities: [],
    })
    expect(interpret(chain(16), names[0]!, TYPE.A, 's').addresses).toEqual(['127.0.0.2'])
    let err: unknown
    try {
      interpret(chain(17), names[0]!, TYPE.A, 's')
    } catch (e) {
      err = e
    }
    expect((err as DnsError).code).toBe('BAD_RESPONSE')
  })
})
