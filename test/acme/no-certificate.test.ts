/**
 * Before the first certificate exists (runtime/tls-per-connection.ts): a connection waits for
 * its ClientHello and gets a TLS alert, and only a bounded number may wait at once; beyond it a
 * newcomer is closed at accept instead of being held.
 */
import { expect, test } from 'bun:test'
import type { Socket, SocketHandler } from 'bun'
import { perConnectionTls } from '../../src/runtime/tls-per-connection.ts'

const ALERT = '15030300020250' // fatal internal_error

/** A loopback client; `send()` writes a byte (as a ClientHello would), `closed` is what it read until the close. */
async function client(port: number): Promise<{ send(): void; closed: Promise<string> }> {
  let got = ''
  let done!: (s: string) => void
  const closed = new Promise<string>((r) => (done = r))
  const sock: Socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: { data: (_s, d) => void (got += Buffer.from(d).toString('hex')), close: () => done(got), error: () => done(got) },
  })
  return { send: () => void sock.write('\x16'), closed }
}

test('without a certificate at most maxWaiting connections wait for their ClientHello; one more is closed at once', async () => {
  let opens = 0
  let onOpen: (() => void) | undefined
  const tls = perConnectionTls({ data() {} } as SocketHandler<unknown>, () => undefined, { maxWaiting: 2 })
  const listener = Bun.listen<boolean>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      ...tls,
      open(raw) {
        tls.open!(raw)
        opens++
        onOpen?.()
      },
    },
  })
  /** Connects and returns once the listener has run its open() for the connection. */
  const accepted = async () => {
    const want = opens + 1
    const seen = new Promise<void>((r) => (onOpen = () => opens >= want && r()))
    const c = await client(listener.port)
    await seen
    return c
  }
  try {
    const first = await accepted()
    const second = await accepted()
    const third = await accepted()
    third.send()
    // Closed at accept: no alert, although it sent a byte.
    expect(await third.closed).toBe('')
    // The two waiting ones are still there and get the alert.
    first.send()
    second.send()
    expect(await first.closed).toBe(ALERT)
    expect(await second.closed).toBe(ALERT)
    // They no longer count: a new connection waits again.
    const fourth = await accepted()
    fourth.send()
    expect(await fourth.closed).toBe(ALERT)
  } finally {
    listener.stop(true)
  }
})
