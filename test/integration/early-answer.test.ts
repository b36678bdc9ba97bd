/**
 * An origin that answers before it read the request body (an early 413 or 401, RFC 9110 §15.5.14
 * lets it): the client gets the answer, the upstream connection is not reused, and the record
 * has the answer's status with no error, since nothing failed (it said CLIENT_GONE: the proxy's
 * own close of the client's upload after the answer was taken for the client leaving).
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('an early 413 while the client uploads: relayed, and logged as a 413 with no error (outside sweep, twentieth session)', async () => {
  let connections = 0
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open: () => void connections++,
      data(s, d) {
        if (!Buffer.from(d).toString('latin1').includes('\r\n\r\n')) return
        s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig')
        s.end()
      },
    },
  })
  h.track(() => origin.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(h, proxy.port)
  c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000\r\n\r\n')
  c.s.write(Buffer.alloc(200_000, 97)) // past the 64 KiB read-ahead: the head goes upstream, the origin answers at once
  expect(await waitFor(() => c.got().includes('\r\n\r\nbig'), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 413 ')
  // The client goes on sending; the proxy ends the upload.
  for (let i = 0; i < 10 && !c.closed(); i++) {
    c.s.write(Buffer.alloc(100_000, 97))
    await Bun.sleep(20)
  }
  expect(await waitFor(() => h.records.some((r) => r.path === '/up'), 3000)).toBe(true)
  const rec = h.records.find((r) => r.path === '/up')!
  // Before: error CLIENT_GONE.
  expect([rec.status, rec.error]).toEqual([413, undefined])
  expect(connections).toBe(1)
})

test('an early whole answer from an origin that then stops reading and keeps the connection: the exchange ends with the answer, not when the origin closes (an outside review held it 100 s)', async () => {
  const sockets: { end(): void }[] = []
  let answered = false
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open: (s) => void sockets.push(s),
      data(s) {
        // Reads the head, then nothing more; answers 300 ms later (the proxy's writes upstream
        // have stopped by then), keeping the connection open.
        if (answered) return
        answered = true
        s.pause()
        setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone'), 300)
      },
    },
  })
  h.track(() => {
    for (const s of sockets) s.end()
    origin.stop(true)
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } })
  const c = rawClient(h, proxy.port)
  c.s.write('POST /held HTTP/1.1\r\nHost: a\r\nContent-Length: 64000000\r\n\r\n')
  // Far more than the socket buffers hold: the proxy's writes upstream stop for good.
  for (let i = 0; i < 40 && !c.closed(); i++) {
    c.s.write(Buffer.alloc(256_000, 97))
    await Bun.sleep(10)
  }
  expect(await waitFor(() => c.got().includes('\r\n\r\ndone'), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  // Logged within moments of the answer, the upstream connection let go (in flight 0).
  expect(await waitFor(() => h.records.some((r) => r.path === '/held'), 3000)).toBe(true)
  expect(h.records.find((r) => r.path === '/held')).toMatchObject({ status: 200, error: undefined })
  expect(await waitFor(() => proxy.upstreams()[0]!.pool.stats().every((a) => a.in_flight === 0 && a.open === 0), 3000)).toBe(true)
})
