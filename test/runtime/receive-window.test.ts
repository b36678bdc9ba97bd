/**
 * runtime/receive-buffer.ts's ReadSizer on loopback, as the kernel sees it: the TCP window a
 * socket advertises (tcp_info's rcv_ssthresh, what `ss -i` prints) stays small until the reader
 * has kept up for WIDEN_AFTER_BYTES, and opens up after. A socket whose SO_RCVBUF was set small
 * keeps the small window clamp it was given, whatever SO_RCVBUF is raised to later, unless the
 * clamp is raised too: before that fix the window stayed at ~126 KiB for good (a 150 ms upstream
 * then moves at most ~0.8 MB/s, and 100 MiB on loopback cost ~1.3x the CPU per byte).
 * Linux only (tcp_info through libc's getsockopt and bun:ffi). Byte counts only, no timing.
 */
import { afterEach, expect, test } from 'bun:test'
import type { Socket, TCPSocketListener } from 'bun'
import { ReadSizer, RECEIVE_BUFFER_BYTES, TCP_INFO_RCV_SSTHRESH, tcpInfoField, WIDEN_AFTER_BYTES } from '../../src/runtime/receive-buffer.ts'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c()
})

/** The window threshold the socket advertises now (struct tcp_info's rcv_ssthresh). */
function advertisedWindowBytes(socket: object): number {
  const bytes = tcpInfoField(socket, TCP_INFO_RCV_SSTHRESH)
  if (bytes === undefined) throw new Error('getsockopt(TCP_INFO) failed')
  return bytes
}

const CHUNK = new Uint8Array(256 * 1024).fill(0x62)

/**
 * A sender (the listener's side) and a receiver whose ReadSizer is told every read was passed on
 * whole; `onReceived` sees the running total. The sender writes `totalBytes`, waiting for drains.
 */
async function transfer(totalBytes: number, onReceived: (received: number, receiver: Socket<undefined>) => void): Promise<Socket<undefined>> {
  let sendTo: (s: Socket<undefined>) => void = () => {}
  const accepted = new Promise<Socket<undefined>>((r) => (sendTo = r))
  let drained: () => void = () => {}
  const server: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: '127.0.0.1',
    port: 0,
    socket: { open: (s) => sendTo(s), data() {}, drain: () => drained() },
  })
  cleanups.push(() => server.stop(true))
  let received = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((r) => (done = r))
  let sizer: ReadSizer | undefined
  const receiver = await Bun.connect<undefined>({
    hostname: '127.0.0.1',
    port: server.port,
    socket: {
      open: (s) => {
        sizer = new ReadSizer(s, true)
      },
      data: (s, d) => {
        received += d.byteLength
        sizer!.wrote(true, d.byteLength)
        onReceived(received, s)
        if (received >= totalBytes) done()
      },
    },
  })
  cleanups.push(() => receiver.terminate())
  const sender = await accepted
  let sent = 0
  for (let i = 0; sent < totalBytes && i < 100_000; i++) {
    const n = sender.write(CHUNK.subarray(0, Math.min(CHUNK.byteLength, totalBytes - sent)))
    if (n > 0) sent += n
    if (n < CHUNK.byteLength && sent < totalBytes) await Promise.race([new Promise<void>((r) => (drained = r)), Bun.sleep(100)])
  }
  await Promise.race([finished, Bun.sleep(20_000)])
  expect(received).toBe(totalBytes)
  return receiver
}

test('the advertised window stays small until the reader has kept up, then opens beyond it', async () => {
  if (process.platform !== 'linux') return
  let smallWindowMax = 0
  const receiver = await transfer(WIDEN_AFTER_BYTES + 24 * 1024 * 1024, (received, s) => {
    // Before the widening: the window is bounded by the small receive buffer (Linux keeps twice it).
    if (received < WIDEN_AFTER_BYTES / 2) smallWindowMax = Math.max(smallWindowMax, advertisedWindowBytes(s))
  })
  const after = advertisedWindowBytes(receiver)
  console.log(`advertised window: at most ${(smallWindowMax / 1024).toFixed(0)} KiB before widening, ${(after / 1024).toFixed(0)} KiB after`)
  expect(smallWindowMax).toBeGreaterThan(0)
  expect(smallWindowMax).toBeLessThanOrEqual(2 * RECEIVE_BUFFER_BYTES)
  // Widened: several times the small window (the kernel grows it as segments arrive). Without
  // CAP_NET_ADMIN and with a stock net.core.rmem_max (208 KiB) the buffer is capped: ~346 KiB.
  expect(after).toBeGreaterThan(3 * smallWindowMax)
})
