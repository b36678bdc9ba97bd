/**
 * An exchange's deadlines, checked by the upstream connections' one sweep (connection.ts): no
 * response head within header_timeout, and a response body that stops for idle_timeout. Against
 * a loopback server that stays silent, or stops mid-body.
 */
import { expect, test } from 'bun:test'
import type { RequestFailure } from '../../../src/proxy/errors.ts'
import { GET_REQUEST as request, upstreamConnections } from '../../support/upstream-connection.ts'

const { closers, connection } = upstreamConnections()

/** A server that reads requests and answers each with `answer` (nothing when it is ''). */
function server(answer: string): number {
  const s = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data(sock) { if (answer) sock.write(answer) } } })
  closers.push(() => s.stop(true))
  return s.port
}


test('no response head within header_timeout: the exchange fails with HEADER_TIMEOUT, the connection is not reused', async () => {
  const c = await connection(server(''))
  let reusable: boolean | undefined
  const t0 = performance.now()
  const failure = await c.exchange(request, { headerTimeoutMs: 200, idleTimeoutMs: 0, onEnd: () => (reusable = !c.closed) }).then(
    () => undefined,
    (err: RequestFailure) => err,
  )
  expect(failure?.code).toBe('HEADER_TIMEOUT')
  expect(failure?.phase).toBe('response-head')
  // Not before its time (the sweep may run it up to 100 ms late).
  expect(performance.now() - t0).toBeGreaterThanOrEqual(199)
  expect(reusable).toBe(false)
})

test('a head that comes in time is not cut by header_timeout later', async () => {
  const c = await connection(server('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  const res = await c.exchange(request, { headerTimeoutMs: 150, idleTimeoutMs: 0 })
  expect(res.head.status).toBe(200)
  await Bun.sleep(300) // past the deadline the head met: nothing fails
  expect(c.closed).toBe(false)
  expect(c.busy).toBe(false)
})

test('a body that stops for idle_timeout: the stream errors with IDLE_TIMEOUT', async () => {
  const c = await connection(server('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'))
  const res = await c.exchange(request, { headerTimeoutMs: 2000, idleTimeoutMs: 200 })
  expect(res.body).toBeInstanceOf(ReadableStream)
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const first = await reader.read()
  expect(new TextDecoder().decode(first.value)).toBe('abc')
  const failure = await reader.read().then(
    () => undefined,
    (err: RequestFailure) => err,
  )
  expect(failure?.code).toBe('IDLE_TIMEOUT')
})

/** A streamed request body: `pieces` chunks of `size` bytes, one each `gapMs`. */
function slowBody(pieces: number, size: number, gapMs: number): ReadableStream<Uint8Array> {
  let sent = 0
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (sent === pieces) return ctrl.close()
      await Bun.sleep(gapMs)
      sent++
      ctrl.enqueue(new Uint8Array(size).fill(0x61))
    },
  })
}

test('an upload longer than header_timeout, sent steadily, is not cut: the deadline counts from the request\'s end', async () => {
  // The server answers once it has the whole body (6 x 1000 bytes).
  let got = 0
  const s = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(sock, d) {
        const text = Buffer.from(d).toString('latin1')
        const at = text.indexOf('\r\n\r\n')
        got += at >= 0 ? d.byteLength - (at + 4) : d.byteLength
        if (got >= 6000) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      },
    },
  })
  closers.push(() => s.stop(true))
  const c = await connection(s.port)
  // Six pieces 100 ms apart: about 600 ms of upload against a header_timeout of 250 ms.
  const res = await c.exchange({ ...request, method: 'POST', body: slowBody(6, 1000, 100), bodyLength: 6000 }, { headerTimeoutMs: 250, idleTimeoutMs: 0 })
  expect(res.head.status).toBe(200)
  expect(got).toBe(6000)
})

test('an upstream that takes the whole body and stays silent still gets HEADER_TIMEOUT after the request\'s end', async () => {
  const c = await connection(server(''))
  const t0 = performance.now()
  const failure = await c.exchange({ ...request, method: 'POST', body: slowBody(3, 100, 50), bodyLength: 300 }, { headerTimeoutMs: 200, idleTimeoutMs: 0 }).then(
    () => undefined,
    (err: RequestFailure) => err,
  )
  expect(failure?.code).toBe('HEADER_TIMEOUT')
  expect(failure?.phase).toBe('response-head')
  // Counted from the body's end (about 150 ms in), not from the head's.
  expect(performance.now() - t0).toBeGreaterThanOrEqual(340)
})

test('a client that stops sending its body is cut after header_timeout as a stalled body (where its listener has no body timeout)', async () => {
  const c = await connection(server(''))
  // One piece, then nothing for far longer than header_timeout.
  const stalled = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(new Uint8Array(100))
    },
  })
  const failure = await c.exchange({ ...request, method: 'POST', body: stalled, bodyLength: 1000 }, { headerTimeoutMs: 200, idleTimeoutMs: 0 }).then(
    () => undefined,
    (err: RequestFailure) => err,
  )
  expect(failure?.code).toBe('CLIENT_BODY_TIMEOUT')
  expect(failure?.phase).toBe('request')
})

test('an upstream that stops taking the body gets HEADER_TIMEOUT while it does not (the request phase)', async () => {
  // The server reads nothing at all: the kernel's buffers fill and the writes wait for a drain.
  const s = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { open(sock) { sock.pause() }, data() {} } })
  closers.push(() => s.stop(true))
  const c = await connection(s.port)
  // Up to 64 MiB in 256 KiB pieces, made as they are read: far past what loopback buffers hold.
  const failure = await c.exchange({ ...request, method: 'PUT', body: slowBody(256, 256 * 1024, 0), bodyLength: 256 * 256 * 1024 }, { headerTimeoutMs: 300, idleTimeoutMs: 0 }).then(
    () => undefined,
    (err: RequestFailure) => err,
  )
  expect(failure?.code).toBe('HEADER_TIMEOUT')
  expect(failure?.phase).toBe('request')
})

test('once the response has begun, a request body that pauses does not cut it (a stream both ways)', async () => {
  // The upstream answers at once, chunked, a byte every 50 ms, while the client's body pauses.
  const s = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(sock) {
        sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
        let n = 0
        const t = setInterval(() => {
          if (++n > 8) {
            clearInterval(t)
            sock.write('0\r\n\r\n')
          } else sock.write('1\r\nx\r\n')
        }, 50)
        closers.push(() => clearInterval(t))
      },
    },
  })
  closers.push(() => s.stop(true))
  const c = await connection(s.port)
  const paused = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(new Uint8Array(10))
    },
  })
  const res = await c.exchange({ ...request, method: 'POST', body: paused, bodyLength: undefined }, { headerTimeoutMs: 150, idleTimeoutMs: 5000 })
  expect(await new Response(res.body as ReadableStream<Uint8Array>).text()).toBe('xxxxxxxx')
})
