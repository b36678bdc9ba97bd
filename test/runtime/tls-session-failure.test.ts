/**
 * A kept upstream TLS session that a dial offers and whose handshake then fails is not offered
 * again (runtime/socket.ts, tls-sessions.ts): a peer that cuts a handshake offering a session (a
 * resumption-intolerant middlebox, a balancer that cannot read a stale ticket) costs one failed
 * connect, not every connect after it. The origin here sits behind a loopback middlebox that
 * resets any connection whose ClientHello offers a session (a TLS 1.3 pre_shared_key, a TLS 1.2
 * session ticket or ID), and passes the others through. After such a failure no session is kept
 * for the address for a while (TlsSessionCache.refused), so later connects are all full handshakes.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { dial } from '../../src/runtime/socket.ts'
import { TlsSessionCache } from '../../src/runtime/tls-sessions.ts'
import { makeCerts } from '../support/certs.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0)) c()
})

/** Whether a first TLS record, a ClientHello, offers a session to resume. */
function offersSession(b: Buffer): boolean {
  let p = 5 + 4 + 2 + 32
  const sidLen = b[p]!
  p += 1 + sidLen
  p += 2 + b.readUInt16BE(p)
  p += 1 + b[p]!
  const end = p + 2 + b.readUInt16BE(p)
  p += 2
  for (; p + 4 <= end; p += 4 + b.readUInt16BE(p + 2)) {
    const type = b.readUInt16BE(p)
    if (type === 0x29 || (type === 0x23 && b.readUInt16BE(p + 2) > 0)) return true
  }
  return false
}

function listen(server: Server): Promise<number> {
  closers.push(() => server.close())
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)))
}

/** An HTTPS/1.1 origin of one answer per connection behind the middlebox; `cut` turns the middlebox on. */
async function intolerantOrigin(version: 'TLSv1.2' | 'TLSv1.3', certs: { cert: string; key: string }) {
  const sockets = new Set<Socket>()
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
  }
  closers.push(() => {
    for (const s of sockets) s.destroy()
  })
  const origin = createTlsServer({ cert: certs.cert, key: certs.key, minVersion: version, maxVersion: version }, (s) => {
    track(s)
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'))
  })
  const originPort = await listen(origin)
  const state = { cut: false, cuts: 0 }
  const box = createServer((c) => {
    track(c)
    c.once('data', (hello: Buffer) => {
      if (state.cut && offersSession(hello)) {
        state.cuts++
        return void c.resetAndDestroy()
      }
      const u = connect(originPort, '127.0.0.1', () => {
        u.write(hello)
        c.pipe(u)
        u.pipe(c)
      })
      track(u)
      u.on('close', () => c.destroy())
      c.on('close', () => u.destroy())
    })
  })
  return { port: await listen(box), state }
}

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('%s', (version) => {
  test('a session whose resumed handshake was cut is dropped: the next connect makes a full handshake', async () => {
    const certs = makeCerts(['origin.test'])
    const { port, state } = await intolerantOrigin(version, certs)
    const sessions = new TlsSessionCache()
    const once = async (): Promise<string> => {
      try {
        const conn = await dial({ address: '127.0.0.1', port, connectTimeoutMs: 3000, tls: { serverName: 'origin.test', ca: certs.ca, rejectUnauthorized: true, sessions } })
        closers.push(() => conn.destroy())
        // The answer's first read is where the session is kept.
        await new Promise<void>((r) => {
          conn.handlers = { data: () => r(), drain() {}, close: () => r() }
          conn.write('GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n')
        })
        conn.destroy()
        return `ok resumed=${conn.timings.tlsResumed}`
      } catch (err) {
        return `failed ${(err as { code?: string }).code}`
      }
    }
    expect(await once()).toBe('ok resumed=false')
    expect(sessions.size).toBe(1)
    state.cut = true
    expect(await once()).toStartWith('failed')
    expect(state.cuts).toBe(1)
    expect(sessions.size).toBe(0)
    // Nothing offered: a full handshake gets through the middlebox.
    expect(await once()).toBe('ok resumed=false')
    expect(state.cuts).toBe(1)
    // And resumption stays off for the address a while: no session is kept, so the connects
    // after it do not alternate between a full handshake and a resumed one that is cut.
    expect(sessions.size).toBe(0)
    expect(await once()).toBe('ok resumed=false')
    expect(await once()).toBe('ok resumed=false')
    expect(state.cuts).toBe(1)
  })
})

test('TlsSessionCache: a refused key keeps nothing until its pause is over; other keys are not affected', async () => {
  const sessions = new TlsSessionCache(256, 50)
  const a = new Uint8Array([1])
  sessions.set('k', a)
  sessions.set('other', new Uint8Array([2]))
  sessions.refused('k')
  expect(sessions.get('k')).toBeUndefined()
  sessions.set('k', new Uint8Array([3]))
  expect(sessions.get('k')).toBeUndefined()
  expect(sessions.get('other')).toEqual(new Uint8Array([2]))
  await Bun.sleep(80)
  sessions.set('k', new Uint8Array([4]))
  expect(sessions.get('k')).toEqual(new Uint8Array([4]))
})
