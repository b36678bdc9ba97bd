/**
 * The bench's untimed warm-up, before its first timed request: one request through the same
 * client code (dial.ts, timing-client.ts) to a throwaway server of its own on loopback and, when
 * a target is https, a TLS handshake begun against that server (which hangs up at the
 * ClientHello). A runtime loads and compiles its socket and TLS code and builds its first TLS
 * context on first use; without this, the first connection of a run counted that as the
 * network's (loopback, Bun: CONNECT 8-10 ms against 0.4-1 ms for the next ones, TLS 17-28 ms
 * against 2-4), which made a `-n 1` waterfall and side A of every --vs comparison look slower.
 * Nothing reaches the targets; a warm-up that fails changes nothing (the run reports its own
 * errors).
 */
import type { Buffer } from 'node:buffer'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { dial, type ClientOptions, type Target } from './dial.ts'
import { TimingConnection } from './timing-client.ts'

/** What the warm-up may take at most, so that a machine where loopback misbehaves still runs the bench. */
const WARM_UP_TIMEOUT_MS = 2000

/** What the warm-up got through: a whole request and answer, and (asked for) a TLS handshake begun. */
export interface WarmedUp {
  request: boolean
  tlsBegun: boolean
}

export async function warmUp(client: ClientOptions, tls: boolean): Promise<WarmedUp> {
  const done: WarmedUp = { request: false, tlsBegun: false }
  const accepted = new Set<Socket>()
  const server = createServer((s) => {
    accepted.add(s)
    s.on('error', () => {})
    s.on('close', () => accepted.delete(s))
    let head = ''
    s.on('data', (d: Buffer) => {
      if (d[0] === 0x16) return void ((done.tlsBegun = true), s.destroy()) // a TLS ClientHello: the handshake was begun, which is all it is for
      head += d.toString('latin1')
      if (head.includes('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
  })
  server.on('error', () => {})
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
    })
    const opts: ClientOptions = { ...client, timeoutMs: WARM_UP_TIMEOUT_MS, tlsSessions: undefined }
    const target: Target = { scheme: 'http', host: '127.0.0.1', port, path: '/', connectHost: '127.0.0.1', connectPort: port, pinnedAddress: undefined }
    const marks = { start: performance.now() }
    const { socket, info } = await dial(target, opts, marks, ['http/1.1'])
    const conn = new TimingConnection(socket, info, 0)
    try {
      await conn.request(target, { method: 'GET', headers: [], body: undefined }, opts, marks)
      done.request = true
    } finally {
      conn.close()
    }
    if (tls) {
      const begun = await dial({ ...target, scheme: 'https', host: 'localhost' }, opts, { start: performance.now() }, ['http/1.1']).catch(() => undefined)
      begun?.socket.destroy()
    }
  } catch {
    // Nothing to say: the timed requests meet whatever made this fail, and report it.
  } finally {
    for (const s of accepted) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return done
}
