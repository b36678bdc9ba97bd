/**
 * A small authoritative DNS server over UDP, whose answers can be changed while it runs: the
 * demo's embedded "cloud DNS", and the real server the resolver tests talk to on loopback.
 * Names map to A/AAAA lists with a TTL (either type may fail alone: SERVFAIL, or no reply), a
 * CNAME, or a failure mode (NXDOMAIN, SERVFAIL, REFUSED, an empty answer, or no reply at all).
 */
import { createSocket, type Socket } from 'node:dgram'
import { decodeMessage, encodeResponse, normaliseName, RCODE, TYPE, type ResourceRecord } from './wire.ts'

/** A record type's addresses, or how its query fails while the other type's answers (a failing A or AAAA query alone). */
export type TypeAnswer = string[] | 'SERVFAIL' | 'DROP'

export type ZoneEntry =
  | { a?: TypeAnswer; aaaa?: TypeAnswer; ttl: number }
  | { cname: string; ttl: number }
  | 'NXDOMAIN'
  | 'SERVFAIL'
  | 'REFUSED'
  | 'EMPTY'
  | 'DROP'

export class DnsServer {
  private readonly zone = new Map<string, ZoneEntry>()
  private socket: Socket | undefined
  /** Queries received, for tests. */
  queries = 0
  /** The next this many queries get no reply (a lost datagram). */
  dropQueries = 0
  port = 0
  /** Every answer goes out this much later (a slow resolver, for tests). */
  answerDelayMs = 0

  constructor(readonly host = '127.0.0.1') {}

  /** Binds (port 0 picks a free port). After stop(), start() rebinds the same port. */
  async start(port = this.port): Promise<this> {
    const sock = createSocket(this.host.includes(':') ? 'udp6' : 'udp4')
    sock.on('message', (msg, rinfo) => this.answer(msg, rinfo.address, rinfo.port))
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(port, this.host, () => {
        sock.off('error', reject)
        resolve()
      })
    })
    sock.on('error', () => {})
    this.socket = sock
    this.port = sock.address().port
    return this
  }

  /** Sets what a name answers. */
  set(name: string, entry: ZoneEntry): void {
    this.zone.set(normaliseName(name), entry)
  }

  delete(name: string): void {
    this.zone.delete(normaliseName(name))
  }

  /** Stops answering (the port is closed) until start() is called again. */
  stop(): void {
    this.socket?.close()
    this.socket = undefined
  }

  close(): void {
    this.stop()
  }

  private answer(raw: Uint8Array, address: string, port: number): void {
    this.queries++
    if (this.dropQueries > 0) {
      this.dropQueries--
      return
    }
    let q
    try {
      q = decodeMessage(raw)
    } catch {
      return
    }
    const question = q.questions[0]
    if (q.response || !question) return
    const reply = (rcode: number, answers: ResourceRecord[] = []) => {
      const bytes = encodeResponse({ id: q.id, authoritative: true, truncated: false, recursionDesired: q.recursionDesired, recursionAvailable: false, rcode, questions: [question], answers, authorities: [] })
      if (this.answerDelayMs > 0) setTimeout(() => this.socket?.send(bytes, port, address), this.answerDelayMs)
      else this.socket?.send(bytes, port, address)
    }
    const answers: ResourceRecord[] = []
    let name = question.name
    for (let hop = 0; hop < 16; hop++) {
      const entry = this.zone.get(name)
      if (entry === undefined) return reply(answers.length ? RCODE.NOERROR : RCODE.NXDOMAIN, answers)
      if (entry === 'DROP') return
      if (entry === 'NXDOMAIN') return reply(RCODE.NXDOMAIN)
      if (entry === 'SERVFAIL') return reply(RCODE.SERVFAIL)
      if (entry === 'REFUSED') return reply(RCODE.REFUSED)
      if (entry === 'EMPTY') return reply(RCODE.NOERROR, answers)
      if ('cname' in entry) {
        answers.push({ name, type: TYPE.CNAME, ttl: entry.ttl, data: normaliseName(entry.cname) })
        name = normaliseName(entry.cname)
        continue
      }
      const list = question.type === TYPE.A ? entry.a : question.type === TYPE.AAAA ? entry.aaaa : undefined
      if (list === 'DROP') return
      if (list === 'SERVFAIL') return reply(RCODE.SERVFAIL)
      for (const data of list ?? []) answers.push({ name, type: question.type, ttl: entry.ttl, data })
      return reply(RCODE.NOERROR, answers)
    }
    reply(RCODE.SERVFAIL)
  }
}
