/**
 * A response body read to the close (no Content-Length, not chunked) against a loopback server:
 * it is complete when the upstream closes the connection, and cut when the connection ends in a
 * reset (RFC 9112 §6.3: only the closing marks its end), so that a client and the cache never
 * take a truncated body for a whole one.
 */
import { expect, test } from 'bun:test'
import type { RequestFailure } from '../../../src/proxy/errors.ts'
import { GET_REQUEST as request, upstreamConnections } from '../../support/upstream-connection.ts'

const { closers, connection } = upstreamConnections()


test('a body read to the close that ends with a reset is cut, not complete; one that ends with a close is complete', async () => {
  const ends: string[] = []
  for (const reset of [true, false]) {
    const s = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(sock) {
          sock.write('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\nhello')
          setTimeout(() => (reset ? sock.terminate() : sock.end()), 50)
        },
      },
    })
    closers.push(() => s.stop(true))
    const c = await connection(s.port)
    const res = await c.exchange(request, { headerTimeoutMs: 2000, idleTimeoutMs: 0 })
    const got = await new Response(res.body as ReadableStream<Uint8Array>).text().then(
      (text) => `complete ${text}`,
      (err: RequestFailure) => `cut ${err.code}`,
    )
    ends.push(got)
  }
  expect(ends).toEqual(['cut RESET_MID_BODY', 'complete hello'])
})
