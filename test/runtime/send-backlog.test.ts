/**
 * runtime/send-backlog.ts on loopback: a client that reads nothing is handed at most the unsent
 * bound plus what its window and the kernel's segments take, and after widen the bound is
 * larger. Bytes counted from write()'s return value, so no timing is involved.
 */
import { afterEach, expect, test } from 'bun:test'
import type { Socket, TCPSocketListener } from 'bun'
import { SEND_BACKLOG_BYTES, SendBacklog, RAISE_AFTER_BYTES } from '../../src/runtime/send-backlog.ts'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

const CHUNK = new Uint8Array(256 * 1024).fill(0x61)

/** A server socket whose client never reads; resolves with it once connected. */
async function stalledPair(): Promise<Socket<undefined>> {
  let accepted: (s: Socket<undefined>) => void = () => {}
  const got = new Promise<Socket<undefined>>((r) => (accepted = r))
  const server: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: '127.0.0.1',
    port: 0,
    socket: { open: (s) => accepted(s), data() {} },
  })
  cleanups.push(() => server.stop(true))
  const client = await Bun.connect<undefined>({
    hostname: '127.0.0.1',
    port: server.port,
    socket: { open: (s) => s.pause(), data() {} },
  })
  client.pause()
  cleanups.push(() => client.terminate())
  return got
}

/** Writes until the socket stops taking bytes, a bounded number of times; returns how many it took. */
async function fill(s: Socket<undefined>): Promise<number> {
  let total = 0
  for (let i = 0; i < 200; i++) {
    const n = s.write(CHUNK)
    if (n > 0) total += n
    if (n < CHUNK.byteLength) {
      // Segments in flight are acknowledged meanwhile; a second try takes what that freed.
      await Bun.sleep(50)
      const m = s.write(CHUNK)
      if (m > 0) total += m
      if (m < CHUNK.byteLength) return total
    }
  }
  return total
}

test('a client that reads nothing is handed about the bound, not what the kernel would buffer', async () => {
  if (process.platform !== 'linux') return
  const s = await stalledPair()
  new SendBacklog(s)
  const taken = await fill(s)
  console.log(`stalled client took ${(taken / 1024).toFixed(0)} KiB with a ${SEND_BACKLOG_BYTES / 1024} KiB bound`)
  expect(taken).toBeGreaterThan(0)
  // The bound, one segment past it (64 KiB on loopback), and the client's receive window.
  expect(taken).toBeLessThan(SEND_BACKLOG_BYTES + 64 * 1024 + 256 * 1024)
})

test('without the bound, and after widening, the same client is handed more', async () => {
  if (process.platform !== 'linux') return
  const plain = await stalledPair()
  const takenPlain = await fill(plain)
  const s = await stalledPair()
  const backlog = new SendBacklog(s)
  backlog.wrote(RAISE_AFTER_BYTES)
  const takenWide = await fill(s)
  console.log(`stalled client took ${(takenPlain / 1024).toFixed(0)} KiB without a bound, ${(takenWide / 1024).toFixed(0)} KiB after widening`)
  expect(takenPlain).toBeGreaterThan(SEND_BACKLOG_BYTES + 64 * 1024 + 256 * 1024)
  expect(takenWide).toBeGreaterThan(SEND_BACKLOG_BYTES + 64 * 1024 + 256 * 1024)
})
