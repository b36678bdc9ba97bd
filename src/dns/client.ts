/**
 * A stub DNS resolver over UDP (with TCP when the answer is truncated): asks each configured
 * server in turn, validates the reply (source, id, QR and opcode, the question's name, type and
 * class), follows the CNAME chain inside the answer, and returns the addresses with the smallest TTL along the chain. Failures are
 * DnsErrors with stable codes. It keeps no cache: the resolver decides when to ask again.
 */
import { Buffer } from 'node:buffer'
import { createSocket } from 'node:dgram'
import { isIP, connect } from 'node:net'
import type { HostPort } from '../config/schema.ts'
import { CLASS_IN, encodeQuery, MessageReader, normaliseName, RCODE, TYPE, type Message, type MessageHead } from './wire.ts'
import { hostPort } from '../lib/net.ts'

/**
 * UNREACHABLE: the server's port is closed (ICMP port unreachable), said at once; like TIMEOUT,
 * a failure to get an answer: the next server is asked and the last good addresses stay.
 */
export type DnsErrorCode = 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'TIMEOUT' | 'UNREACHABLE' | 'NODATA' | 'BAD_RESPONSE' | 'NO_SERVERS'

export class DnsError extends Error {
  readonly code: DnsErrorCode
  /** The server that gave this answer ("ip:port"), when one did. */
  readonly server: string | undefined
  constructor(code: DnsErrorCode, message: string, server?: string) {
    super(message)
    this.name = 'DnsError'
    this.code = code
    this.server = server
  }
}

export interface DnsAnswer {
  addresses: string[]
  /** Smallest TTL along the CNAME chain and the address records, in seconds. */
  ttlS: number
  /** "ip:port" of the server that answered. */
  server: string
}

export interface QueryOptions {
  servers: readonly HostPort[]
  timeoutMs: number
}

const MAX_CNAME_HOPS = 16

function serverText(s: HostPort): string {
  return hostPort(s.host, s.port)
}

/** Asks the servers in order for one record type. NXDOMAIN and NODATA are final; others try the next server. */
export async function queryAddresses(name: string, type: typeof TYPE.A | typeof TYPE.AAAA, opts: QueryOptions): Promise<DnsAnswer> {
  if (opts.servers.length === 0) throw new DnsError('NO_SERVERS', 'no DNS servers configured')
  let last: DnsError | undefined
  for (const server of opts.servers) {
    try {
      const udp = await udpExchange(name, type, server, opts.timeoutMs)
      const msg = udp === TRUNCATED ? await tcpExchange(name, type, server, opts.timeoutMs) : udp
      return interpret(msg, name, type, serverText(server))
    } catch (err) {
      if (!(err instanceof DnsError)) throw err
      last = err
      if (err.code === 'NXDOMAIN' || err.code === 'NODATA') throw err
    }
  }
  throw last!
}

/** Reads the answer section: follows CNAMEs from `name`, collects addresses, takes the minimum TTL. */
export function interpret(msg: Message, name: string, type: number, server: string): DnsAnswer {
  if (msg.rcode === RCODE.NXDOMAIN) throw new DnsError('NXDOMAIN', `${name}: no such domain (NXDOMAIN from ${server})`, server)
  if (msg.rcode === RCODE.SERVFAIL) throw new DnsError('SERVFAIL', `${name}: server failure (SERVFAIL from ${server})`, server)
  if (msg.rcode === RCODE.REFUSED) throw new DnsError('REFUSED', `${name}: query refused by ${server}`, server)
  if (msg.rcode !== RCODE.NOERROR) throw new DnsError('BAD_RESPONSE', `${name}: rcode ${msg.rcode} from ${server}`, server)
  let current = normaliseName(name)
  let ttlS = Number.POSITIVE_INFINITY
  const seen = new Set([current])
  for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
    const cname = msg.answers.find((rr) => rr.type === TYPE.CNAME && rr.name === current)
    if (!cname) break
    ttlS = Math.min(ttlS, cname.ttl)
    current = normaliseName(cname.data)
    // A chain that comes back to a name it passed names no address: a loop, whatever else came.
    if (seen.has(current)) throw new DnsError('BAD_RESPONSE', `${name}: CNAME loop at ${current} in the answer from ${server}`, server)
    seen.add(current)
  }
  // A chain longer than we follow is an answer we did not read, not an answer without addresses
  // (NODATA would drop this family's addresses beside the other's): a bad answer, last good kept.
  if (msg.answers.some((rr) => rr.type === TYPE.CNAME && rr.name === current)) throw new DnsError('BAD_RESPONSE', `${name}: CNAME chain longer than ${MAX_CNAME_HOPS} in the answer from ${server}`, server)
  const addresses: string[] = []
  for (const rr of msg.answers) {
    // The same address twice is one (RFC 2181 §5: a set has no duplicates).
    if (rr.type === type && rr.name === current && isIP(rr.data) && !addresses.includes(rr.data)) {
      addresses.push(rr.data)
      ttlS = Math.min(ttlS, rr.ttl)
    }
  }
  if (addresses.length === 0) throw new DnsError('NODATA', `${name}: no ${type === TYPE.A ? 'A' : 'AAAA'} records (empty answer from ${server})`, server)
  return { addresses, ttlS: Number.isFinite(ttlS) ? ttlS : 0, server }
}

/**
 * Whether `msg` is the answer to our query (RFC 5452 §9.1, RFC 1035 §7.3): a response (QR) to a
 * standard query (opcode 0) with our id, and a question section that is exactly our question:
 * one entry, the same name (case-insensitively, RFC 4343), type and class IN. Read from the head
 * alone: the records of a reply that is not ours are never decoded.
 */
function checkReply(msg: MessageHead, id: number, name: string, type: number, server: string): void {
  if (!msg.response || msg.id !== id || msg.opcode !== 0) throw new DnsError('BAD_RESPONSE', `reply from ${server} does not match the query`, server)
  const q = msg.questions[0]
  if (msg.questions.length !== 1 || !q || q.name !== normaliseName(name) || q.type !== type || q.qclass !== CLASS_IN) {
    throw new DnsError('BAD_RESPONSE', `reply from ${server} answers another question`, server)
  }
}

/** A query id from the CSPRNG: an off-path spoofer must guess it (RFC 5452 §9.2). */
function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0]!
}

/**
 * The id of a reply, read before the message is decoded: a datagram that is not the answer to
 * our query costs no decoding (a 64 KB message of long compressed names could take a while).
 */
function idOf(data: Uint8Array): number {
  return data.byteLength >= 2 ? (data[0]! << 8) | data[1]! : -1
}

/** A UDP reply with the TC bit: its records are not read (a cut message may not parse), the question is asked again over TCP. */
const TRUNCATED = Symbol('truncated')

function udpExchange(name: string, type: number, server: HostPort, timeoutMs: number): Promise<Message | typeof TRUNCATED> {
  const id = randomId()
  const query = encodeQuery(id, name, type)
  const label = serverText(server)
  return new Promise<Message | typeof TRUNCATED>((resolve, reject) => {
    const sock = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4')
    let done = false
    const finish = (err: Error | undefined, msg?: Message | typeof TRUNCATED) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearTimeout(resend)
      try {
        sock.close()
      } catch {
        // already closed
      }
      if (err) reject(err)
      else resolve(msg!)
    }
    const timer = setTimeout(() => finish(new DnsError('TIMEOUT', `${name}: no answer from ${label} within ${timeoutMs}ms`, label)), timeoutMs)
    // Sent again, once, halfway through (the same id): a lost datagram, query or answer, costs
    // half the timeout rather than all of it and a failed lookup (stub resolvers resend too).
    const resend = setTimeout(send, timeoutMs / 2)
    sock.on('error', (err) => {
      // A connected socket hears the ICMP port unreachable of a server that is down: the next
      // server is asked at once (as glibc does), not after the whole timeout.
      const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED'
      if (refused) finish(new DnsError('UNREACHABLE', `${name}: ${label} refused the query (port unreachable: no DNS server listens there)`, label))
      else finish(new DnsError('TIMEOUT', `${name}: ${label}: ${err.message}`, label))
    })
    // The server's address as the socket reports a source: IPv6 in its canonical text.
    const from = canonicalIp(server.host)
    sock.on('message', (data, rinfo) => {
      // Ignore datagrams from anyone but the server we asked (off-path spoofing), and any that
      // is not the answer to our query id.
      if (canonicalIp(rinfo.address) !== from || rinfo.port !== server.port || idOf(data) !== id) return
      // Our id from our server, and not a DNS message we read: a bad answer, said at once (the
      // next server is asked) rather than waited out as a timeout.
      const unreadable = (err: unknown) => finish(new DnsError('BAD_RESPONSE', `${name}: unreadable reply from ${label}: ${(err as Error).message}`, label))
      let reader: MessageReader
      try {
        reader = new MessageReader(data)
        checkReply(reader.head(), id, name, type, label)
      } catch (err) {
        // Not our answer (another question, or not a response): keep waiting until the timeout.
        return err instanceof DnsError ? undefined : unreadable(err)
      }
      if (reader.head().truncated) return finish(undefined, TRUNCATED)
      try {
        finish(undefined, reader.message())
      } catch (err) {
        unreadable(err)
      }
    })
    let connected = false
    function send() {
      if (done || !connected) return
      sock.send(query, (err) => {
        if (err) finish(new DnsError('TIMEOUT', `${name}: cannot send to ${label}: ${err.message}`, label))
      })
    }
    sock.connect(server.port, server.host, () => {
      connected = true
      send()
    })
  })
}

/** An IP address in one text form (IPv6 as the URL parser writes it: lower case, zeros compressed). */
function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1)
  } catch {
    return address
  }
}

function tcpExchange(name: string, type: number, server: HostPort, timeoutMs: number): Promise<Message> {
  const id = randomId()
  const query = encodeQuery(id, name, type)
  const label = serverText(server)
  return new Promise<Message>((resolve, reject) => {
    const sock = connect(server.port, server.host)
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (err: DnsError | undefined, msg?: Message) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(msg!)
    }
    const timer = setTimeout(() => finish(new DnsError('TIMEOUT', `${name}: no TCP answer from ${label} within ${timeoutMs}ms`, label)), timeoutMs)
    sock.on('connect', () => {
      const len = Buffer.alloc(2)
      len.writeUInt16BE(query.length)
      sock.write(Buffer.concat([len, query]))
    })
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return
      try {
        const reader = new MessageReader(buf.subarray(2, 2 + buf.readUInt16BE(0)))
        checkReply(reader.head(), id, name, type, label)
        finish(undefined, reader.message())
      } catch (err) {
        finish(err instanceof DnsError ? err : new DnsError('BAD_RESPONSE', `${name}: unreadable TCP reply from ${label}: ${(err as Error).message}`, label))
      }
    })
    // The server closed before the whole message its two-byte length prefix announced (RFC 1035
    // §4.2.2): cut mid-message, or a prefix larger than what it sent. A bad answer now (the next
    // server is asked), not a timeout at the end of timeoutMs.
    sock.on('end', () => {
      const want = buf.length >= 2 ? `${buf.readUInt16BE(0)} bytes` : 'its length'
      finish(new DnsError('BAD_RESPONSE', `${name}: ${label} closed the TCP connection after ${Math.max(0, buf.length - 2)} bytes of the reply, before ${want}`, label))
    })
    sock.on('error', (err) => finish(new DnsError('TIMEOUT', `${name}: TCP to ${label}: ${err.message}`, label)))
  })
}
