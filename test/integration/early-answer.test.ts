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
