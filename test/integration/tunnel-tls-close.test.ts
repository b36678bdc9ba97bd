/**
 * A tunnel to a TLS upstream that is closing: once the client has gone (a FIN, or cut), what the
 * upstream still sends has nowhere to go. Bun's TLS socket, once ended, reads on whatever pause()
 * says, so the proxy dropped those bytes as fast as the origin sent them (5.5 GB in 8 s in the
 * sixteenth round of outside reviews, and into a client's queue at idle_timeout: RSS 43 -> 185
 * MiB), until idle_timeout cut the upstream. Now the upstream is cut once nothing waits to be sent
 * to it. The origin here streams after its 101 as fast as it may; the test checks it is let go.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['origin.test'], ['127.0.0.1'])

async function run(variant: 'fin' | 'idle'): Promise<{ closed: boolean; sentAfter: number }> {
  let sent = 0
  let upstreamClosed = false
  const chunk = new Uint8Array(65_536).fill(0x61)
  // Pushes while the socket takes it (bounded: at most 4 GiB in all, the most this test could ever take).
  const push = (s: { write(b: Uint8Array): number }) => {
    for (let i = 0; i < 1000 && !upstreamClosed && sent < 4 * 2 ** 30; i++) {
      const n = s.write(chunk)
      if (n > 0) sent += n
      if (n < chunk.byteLength) return
    }
  }
  let switched = false
  // allowHalfOpen: it goes on sending after the proxy's close_notify and FIN, as an origin that does not read may.
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    allowHalfOpen: true,
    socket: {
      data(s) {
        if (switched) return
        switched = true
        s.pause() // it reads nothing more, so it never answers the proxy's close_notify (as an origin busy sending does not)
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
        push(s)
      },
      drain: (s) => push(s),
      close: () => void (upstreamClosed = true),
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `https://origin.test:${origin.port}`, ca_file: certs.caFile, idle_timeout: variant === 'idle' ? '1s' : '300s' } }, { addresses: [{ address: '127.0.0.1', family: 4 }] })
  const c = connect(proxy.port, '127.0.0.1')
  h.track(() => void c.destroy())
  c.on('error', () => {})
  let got = 0
  c.on('data', (d: Buffer) => (got += d.length))
  c.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  expect(await waitFor(() => got > 1_000_000, 5000)).toBe(true)
  c.pause() // it reads no more (the proxy's queue for it fills, and the upstream is paused)
  await Bun.sleep(200)
  // FIN: it is done, and its FIN ends the tunnel. Idle: nothing moves either way (both paused) until idle_timeout closes both.
  if (variant === 'fin') c.end()
  const at = sent
  const closed = await waitFor(() => upstreamClosed, 6000)
  return { closed, sentAfter: sent - at }
}

test('the client half-closes an open tunnel while a TLS upstream streams: the upstream is closed, not drained for ever', async () => {
  expect((await run('fin')).closed).toBe(true)
}, 20_000)

test('idle_timeout closes a tunnel whose client reads nothing while a TLS upstream waits to stream: what the upstream still sends is not queued for the client (RSS 43 -> 185 MiB in 1 s before)', async () => {
  const { closed, sentAfter } = await run('idle')
  expect(closed).toBe(true)
  expect(sentAfter).toBeLessThan(64 << 20)
}, 20_000)
