/**
 * DNS messages on the wire (RFC 1035 §4): encoding queries and answers, decoding responses with
 * name compression. Only what an address resolver needs: A, AAAA, CNAME, the header flags and
 * rcode. Pure functions; the UDP client is client.ts, and the test/demo server reuses these.
 */
import { Buffer } from 'node:buffer'

export const TYPE = { A: 1, CNAME: 5, AAAA: 28 } as const
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

export interface Question {
  name: string
  type: number
  /** QCLASS; encoded as IN (1) when absent, always set when decoded. */
  qclass?: number
}

/** The Internet class, the only one asked for or read. */
export const CLASS_IN = 1

export interface ResourceRecord {
  name: string
  type: number
  ttl: number
  /** A/AAAA: the address text; CNAME: the target name; others: hex. */
  data: string
}

export interface Message {
  id: number
  /** QR bit: true for a response. */
  response: boolean
  opcode: number
  authoritative: boolean
  truncated: boolean
  recursionDesired: boolean
  recursionAvailable: boolean
  rcode: number
  questions: Question[]
  answers: ResourceRecord[]
  authorities: ResourceRecord[]
}

export class DnsWireError extends Error {
  override name = 'DnsWireError'
}

/** Lower-case, no trailing dot. */
export function normaliseName(name: string): string {
  const n = name.toLowerCase()
  return n.endsWith('.') ? n.slice(0, -1) : n
}

function encodeName(name: string, out: number[]): void {
  const n = normaliseName(name)
  if (n.length > 0) {
    for (const label of n.split('.')) {
      const bytes = Buffer.from(label, 'ascii')
      if (bytes.length === 0 || bytes.length > 63) throw new DnsWireError(`bad label in ${JSON.stringify(name)}`)
      out.push(bytes.length, ...bytes)
    }
  }
  out.push(0)
}

function u16(out: number[], v: number): void {
  out.push((v >> 8) & 0xff, v & 0xff)
}

function u32(out: number[], v: number): void {
  out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff)
}

export function encodeQuery(id: number, name: string, type: number): Uint8Array {
  const out: number[] = []
  u16(out, id)
  u16(out, 0x0100) // RD
  u16(out, 1)
  u16(out, 0)
  u16(out, 0)
  u16(out, 0)
  encodeName(name, out)
  u16(out, type)
  u16(out, CLASS_IN)
  return Uint8Array.from(out)
}

/** Encodes a response (used by the embedded demo server and tests). */
export function encodeResponse(m: Omit<Message, 'response' | 'opcode'>): Uint8Array {
  const out: number[] = []
  u16(out, m.id)
  const flags = 0x8000 | (m.authoritative ? 0x0400 : 0) | (m.truncated ? 0x0200 : 0) | (m.recursionDesired ? 0x0100 : 0) | (m.recursionAvailable ? 0x0080 : 0) | (m.rcode & 0xf)
  u16(out, flags)
  u16(out, m.questions.length)
  u16(out, m.answers.length)
  u16(out, m.authorities.length)
  u16(out, 0)
  for (const q of m.questions) {
    encodeName(q.name, out)
    u16(out, q.type)
    u16(out, q.qclass ?? CLASS_IN)
  }
  for (const rr of [...m.answers, ...m.authorities]) {
    encodeName(rr.name, out)
    u16(out, rr.type)
    u16(out, 1)
    u32(out, rr.ttl)
    const rdata: number[] = []
    if (rr.type === TYPE.A) rdata.push(...rr.data.split('.').map(Number))
    else if (rr.type === TYPE.AAAA) rdata.push(...ipv6Bytes(rr.data))
    else if (rr.type === TYPE.CNAME) encodeName(rr.data, rdata)
    else rdata.push(...Buffer.from(rr.data, 'hex'))
    u16(out, rdata.length)
    out.push(...rdata)
  }
  return Uint8Array.from(out)
}

/** A message's header and question section: what says whether it answers our query, read before its records. */
export interface MessageHead {
  id: number
  response: boolean
  opcode: number
  truncated: boolean
  rcode: number
  questions: Question[]
}

/**
 * Reads a message in two steps: `head()` the header and question section, then `records()` the
 * answer and authority sections. A reply that turns out not to be ours (another question), or
 * a truncated one (TC: asked again over TCP, RFC 2181 §9, whatever its cut records say), is
 * never read further. Names are decoded once per offset: records whose names point at the same
 * long name cost a lookup each, not the name again (a 64 KB reply of 4,000 such records took
 * 0.2-0.4 s to read before).
 */
export class MessageReader {
  private readonly view: DataView
  private pos = 12
  private readonly names = new Map<number, { text: string; wireLength: number }>()
  private headRead: MessageHead | undefined
  constructor(private readonly buf: Uint8Array) {
    if (buf.length < 12) throw new DnsWireError('message shorter than its header')
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  head(): MessageHead {
    if (this.headRead) return this.headRead
    const view = this.view
    const flags = view.getUint16(2)
    const questions: Question[] = []
    for (let i = 0, n = view.getUint16(4); i < n; i++) {
      const name = this.readName()
      this.need(4)
      questions.push({ name, type: view.getUint16(this.pos), qclass: view.getUint16(this.pos + 2) })
      this.pos += 4
    }
    return (this.headRead = { id: view.getUint16(0), response: (flags & 0x8000) !== 0, opcode: (flags >> 11) & 0xf, truncated: (flags & 0x0200) !== 0, rcode: flags & 0xf, questions })
  }

  /** The whole message: the head, then its answer and authority records. */
  message(): Message {
    const head = this.head()
    const flags = this.view.getUint16(2)
    const answers = this.readRecords(this.view.getUint16(6))
    const authorities = this.readRecords(this.view.getUint16(8))
    return { ...head, authoritative: (flags & 0x0400) !== 0, recursionDesired: (flags & 0x0100) !== 0, recursionAvailable: (flags & 0x0080) !== 0, answers, authorities }
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DnsWireError('record runs past the end')
  }

  /** The name at this.pos (moved past it). */
  private readName(): string {
    const [text, end] = this.nameAt(this.pos, 0)
    this.pos = end
    return normaliseName(text.text)
  }

  /**
   * The name that starts at `p` (its labels joined with dots) and its length as on the wire (a
   * length byte and the bytes of each label, and the final zero: at most 255, RFC 1035 §3.1,
   * compression pointers cannot make one longer), and where the bytes at `p` end.
   */
  private nameAt(p: number, hops: number): [{ text: string; wireLength: number }, number] {
    const buf = this.buf
    const labels: string[] = []
    let wireLength = 1
    for (;;) {
      if (p >= buf.length) throw new DnsWireError('name runs past the end')
      const len = buf[p]!
      if (len === 0) return [this.joined(labels, '', wireLength), p + 1]
      if ((len & 0xc0) === 0xc0) {
        if (p + 1 >= buf.length) throw new DnsWireError('truncated compression pointer')
        if (++hops > 32) throw new DnsWireError('compression pointer loop')
        const target = ((len & 0x3f) << 8) | buf[p + 1]!
        let rest = this.names.get(target)
        if (!rest) {
          rest = this.nameAt(target, hops)[0]
          this.names.set(target, rest)
        }
        return [this.joined(labels, rest.text, wireLength - 1 + rest.wireLength), p + 2]
      }
      if ((len & 0xc0) !== 0) throw new DnsWireError('bad label type')
      if (p + 1 + len > buf.length) throw new DnsWireError('label runs past the end')
      wireLength += 1 + len
      if (wireLength > 255) throw new DnsWireError('name longer than 255 bytes')
      const label = Buffer.from(buf.subarray(p + 1, p + 1 + len)).toString('latin1')
      // A dot inside a label would read as two labels once joined: another name than the one sent.
      if (label.includes('.')) throw new DnsWireError('a label holds a dot')
      labels.push(label)
      p += 1 + len
    }
  }

  private joined(labels: string[], rest: string, wireLength: number): { text: string; wireLength: number } {
    if (wireLength > 255) throw new DnsWireError('name longer than 255 bytes')
    if (labels.length === 0) return { text: rest, wireLength }
    return { text: rest === '' ? labels.join('.') : `${labels.join('.')}.${rest}`, wireLength }
  }

  private readRecords(count: number): ResourceRecord[] {
    const { buf, view } = this
    const rrs: ResourceRecord[] = []
    for (let i = 0; i < count; i++) {
      const name = this.readName()
      this.need(10)
      const type = view.getUint16(this.pos)
      const klass = view.getUint16(this.pos + 2)
      const raw = view.getUint32(this.pos + 4)
      // TTLs with the top bit set are treated as 0 (RFC 2181 §8), for every record type.
      const ttl = raw > 0x7fffffff ? 0 : raw
      const rdlen = view.getUint16(this.pos + 8)
      this.pos += 10
      this.need(rdlen)
      const pos = this.pos
      // Only the Internet class is ours: a record of another (CH, HS) answers nothing asked.
      if (klass !== CLASS_IN) {
        this.pos += rdlen
        continue
      }
      // An address of another size, or a CNAME target that does not fill its RDATA exactly
      // (RFC 1035 §3.3.1, §3.4.1; RFC 3596 §2.2), makes the message malformed: a bad answer,
      // never "no such records" (which would drop a family's last good addresses).
      const wantLength = type === TYPE.A ? 4 : type === TYPE.AAAA ? 16 : undefined
      if (wantLength !== undefined && rdlen !== wantLength) throw new DnsWireError(`${type === TYPE.A ? 'A' : 'AAAA'} record with ${rdlen} bytes of data (not ${wantLength})`)
      let data: string
      if (type === TYPE.A) data = Array.from(buf.subarray(pos, pos + 4)).join('.')
      else if (type === TYPE.AAAA) data = ipv6Text(buf.subarray(pos, pos + 16))
      else if (type === TYPE.CNAME) {
        data = this.readName()
        if (this.pos !== pos + rdlen) throw new DnsWireError(`CNAME target does not fill its ${rdlen} bytes of data`)
        rrs.push({ name, type, ttl, data })
        continue
      } else data = Buffer.from(buf.subarray(pos, pos + rdlen)).toString('hex')
      this.pos = pos + rdlen
      rrs.push({ name, type, ttl, data })
    }
    return rrs
  }
}

export function decodeMessage(buf: Uint8Array): Message {
  return new MessageReader(buf).message()
}

function ipv6Bytes(address: string): number[] {
  // A dotted IPv4 tail (::ffff:192.0.2.1, RFC 4291 §2.2) as its two groups.
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address)
  const text = dotted ? `${dotted[1]}${((+dotted[2]! << 8) | +dotted[3]!).toString(16)}:${((+dotted[4]! << 8) | +dotted[5]!).toString(16)}` : address
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail ? tail.split(':') : []
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const out: number[] = []
  for (const g of groups) {
    const v = parseInt(g, 16)
    out.push((v >> 8) & 0xff, v & 0xff)
  }
  return out
}

function ipv6Text(b: Uint8Array): string {
  // An IPv4-mapped address with its IPv4 part dotted, as RFC 5952 §5 recommends (and ss, nginx and Node print it).
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}
