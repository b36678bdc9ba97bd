/**
 * A write held for the end of the round (runtime/write-queue.ts, batched) is not lost when the
 * peer half-closes in the same round: Bun closes a socket once its `end` handler returns, so the
 * upstream connection (runtime/socket.ts) hands what it holds to the kernel first. Real sockets
 * on loopback; the two events are made to arrive in one poll by keeping the loop busy while both
 * become ready.
 */
import { afterEach, expect, test } from 'bun:test'
import net from 'node:net'
import { dial, type Conn } from '../../src/runtime/socket.ts'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

test('an upstream connection sends a held write before it closes on the peer\'s FIN', async () => {
  // The peer of our connection: records what it receives, half-closes when told to.
  let received = ''
  let peerSocket: net.Socket | undefined
  const peer = net.createServer({ allowHalfOpen: true }, (s) => {
    peerSocket = s
    s.on('data', (d) => (received += d.toString('latin1')))
  })
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r))
  cleanups.push(() => peer.close())
  const conn: Conn = await dial({ address: '127.0.0.1', port: (peer.address() as net.AddressInfo).port, connectTimeoutMs: 2000, tls: undefined })
  cleanups.push(() => conn.destroy())
  for (let i = 0; i < 100 && !peerSocket; i++) await Bun.sleep(10)
  expect(peerSocket).toBeDefined()

  // A trigger: its data event writes to our connection from a socket callback, as an answer or a
  // request is written from the event that produced it; the write is held for the batch.
  const trigger = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data() {
        conn.write(new TextEncoder().encode('REQUEST'))
      },
    },
  })
  cleanups.push(() => trigger.stop(true))
  const poke = net.connect({ host: '127.0.0.1', port: trigger.port })
  cleanups.push(() => poke.destroy())
  await new Promise<void>((r) => poke.once('connect', () => r()))

  // Both become ready while the loop is busy, so one poll sees the trigger's data, then the FIN.
  poke.write('x')
  peerSocket!.end()
  const until = Date.now() + 50
  while (Date.now() < until) {}

  for (let i = 0; i < 100 && received === ''; i++) await Bun.sleep(10)
  expect(received).toBe('REQUEST')
})
