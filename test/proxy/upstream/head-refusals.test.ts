/**
 * Response heads an exchange refuses (BAD_RESPONSE, a 502 to the client) however the upstream's
 * bytes are cut into reads: one larger than the 64 KiB limit, also when its blank line arrives
 * in the read that crosses the limit; and heads that can never end with a CRLFCRLF (lines ended
 * by a bare LF, bytes that are not an HTTP/1.x status line), refused when they arrive, not left
 * to header_timeout (a 504, as if the upstream had said nothing); and more interim (1xx) heads
 * than MAX_INTERIM_HEADS before the final one, or one that says HTTP/1.0. Against loopback servers.
 */
import { expect, test } from 'bun:test'
import { MAX_INTERIM_HEADS } from '../../../src/http1/response-head.ts'
import type { RequestFailure } from '../../../src/proxy/errors.ts'
import { GET_REQUEST as request, upstreamConnections } from '../../support/upstream-connection.ts'

const { closers, connection } = upstreamConnections()

/** A server that answers each request with `parts`, one write each, 30 ms apart, and keeps the connection. */
function server(parts: string[]): number {
  const s = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(sock) {
        parts.forEach((p, i) => {
          const t = setTimeout(() => sock.write(p), 30 * i)
          closers.push(() => clearTimeout(t))
        })
      },
    },
  })
  closers.push(() => s.stop(true))
  return s.port
}

/** The failure an exchange against `parts` ends with (its code and message), or 'answered <status>'. */
async function outcome(parts: string[], onInterim?: () => void): Promise<string> {
  const c = await connection(server(parts))
  return c.exchange(request, { headerTimeoutMs: 30_000, idleTimeoutMs: 0, onInterim }).then(
    (res) => `answered ${res.head.status}`,
    (err: RequestFailure) => `${err.code}: ${err.message}`,
  )
}

test('a response head over 64 KiB whose blank line comes in the read that crosses the limit is refused', async () => {
  // 60 KiB of head without its end, then 10 KiB more and the CRLFCRLF: no read before the last
  // holds more than the limit, so only the complete head's size can tell.
  const head = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(60 * 1024)}`
  const got = await outcome([head, `${'b'.repeat(10 * 1024)}\r\nContent-Length: 2\r\n\r\nok`])
  expect(got).toBe('BAD_RESPONSE: response head too large')
})

test('a response head just under the limit, in two reads, is read', async () => {
  const head = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(60 * 1024)}`
  expect(await outcome([head, `${'b'.repeat(1024)}\r\nContent-Length: 2\r\n\r\nok`])).toBe('answered 200')
})

test.each([
  ['LF LF', 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok'],
  ['LF CRLF', 'HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok'],
])('a response head whose lines end with a bare LF (%s) is refused as it arrives, not at header_timeout', async (_, answer) => {
  // header_timeout is 30 s, past the test's own limit: only a refusal from the bytes passes.
  expect(await outcome([answer])).toBe('BAD_RESPONSE: response head lines end with a bare LF (they end with CRLF)')
})

test.each([
  ['an HTTP/0.9 answer', ['hello world']],
  ['another protocol greeting', ['SSH-2.0-OpenSSH_9.2\r\n']],
  ['HTTP/2.0 status line, then the rest', ['HTTP/2.0', ' 200 OK\r\n\r\n']],
])('%s, with the connection kept open, is refused as it arrives, not at header_timeout', async (_, parts) => {
  expect(await outcome(parts)).toBe('BAD_RESPONSE: upstream answer does not begin with an HTTP/1.x status line')
})

test('a status line that comes a byte at a time is still read', async () => {
  const answer = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
  expect(await outcome(answer.slice(0, 9).split('').concat(answer.slice(9)))).toBe('answered 200')
})

test('interim (1xx) heads beyond MAX_INTERIM_HEADS are refused: each is relayed to the client, so an upstream could queue them without end', async () => {
  const hint = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'
  const final = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
  let relayed = 0
  // Up to the limit (a 100 Continue counted and relayed too: RFC 9110 §15.2), in one read: relayed, and the final answer read.
  const allowed = ['HTTP/1.1 100 Continue\r\n\r\n' + hint.repeat(MAX_INTERIM_HEADS - 1) + final]
  expect(await outcome(allowed, () => relayed++)).toBe('answered 200')
  expect(relayed).toBe(MAX_INTERIM_HEADS)
  // One more, in one read or one per write: a 502, with no more relayed than the limit.
  relayed = 0
  expect(await outcome([hint.repeat(MAX_INTERIM_HEADS + 1) + final], () => relayed++)).toBe(`BAD_RESPONSE: upstream sent more than ${MAX_INTERIM_HEADS} interim (1xx) answers`)
  expect(relayed).toBe(MAX_INTERIM_HEADS)
  relayed = 0
  expect(await outcome([...Array.from({ length: MAX_INTERIM_HEADS + 1 }, () => hint), final], () => relayed++)).toBe(`BAD_RESPONSE: upstream sent more than ${MAX_INTERIM_HEADS} interim (1xx) answers`)
  expect(relayed).toBe(MAX_INTERIM_HEADS)
})

test('an interim (1xx) head that says HTTP/1.0 is refused, not relayed: HTTP/1.0 has no 1xx (RFC 9110 §15.2)', async () => {
  let relayed = 0
  const final = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
  expect(await outcome(['HTTP/1.0 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + final], () => relayed++)).toBe(
    'BAD_RESPONSE: upstream sent "103" with an HTTP/1.0 status line, which has no 1xx answers; the upstream must send interim answers as HTTP/1.1, or none',
  )
  expect(relayed).toBe(0)
  // A final answer that says HTTP/1.0 is still read.
  expect(await outcome(['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'])).toBe('answered 200')
})
