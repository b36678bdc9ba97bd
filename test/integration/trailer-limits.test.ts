/**
 * A chunked message's trailer section is bounded (http1/chunked.ts): a peer that sends trailer
 * field lines for ever, each within the per-line limit, is stopped at the section's byte limit
 * (max_header_size for a client's request, the response head's 64 KiB for an upstream's answer).
 * A request is refused 400 when nothing was answered yet and the upstream never gets a request
 * that looks whole; an upstream's answer is cut for the client, and its connection closed.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Server, type Socket } from 'node:net'
import { REPLAYABLE_BODY_BYTES } from '../../src/proxy/request-body.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** One trailer field line of 1 KiB: the byte limit (16 KiB, 64 KiB) stops a flood of them before the 100-line cap. */
const LINE = `x-t: ${'a'.repeat(1017)}\r\n`
/**
 * How much a flood sends at most (then it stops and leaves its socket open, as a peer that goes on
 * would look for a while): far past both limits, and a bound on the test.
 */
const FLOOD_BUDGET_BYTES = 4 << 20

/** Writes trailer lines to `s` with backpressure until `stop()` or the budget. */
async function flood(s: Socket, stop: () => boolean): Promise<void> {
  const batch = LINE.repeat(16)
  for (let sent = 0; sent < FLOOD_BUDGET_BYTES && !stop() && !s.destroyed; sent += batch.length) {
    if (!s.write(batch)) await new Promise<void>((r) => (s.once('drain', r), s.once('close', r)))
  }
}

/** An origin that counts the requests it got, and those whose body it read to its end. */
function countingOrigin() {
  const seen = { reached: 0, complete: 0, aborted: 0 }
  const origin = h.origin({
    async fetch(req) {
      seen.reached++
      try {
        await req.arrayBuffer()
        seen.complete++
      } catch {
        seen.aborted++
      }
      return new Response('reached')
    },
  })
  return { port: origin.port, seen }
}

test('a small chunked request whose trailer lines never end: 400, and nothing reaches the upstream', async () => {
  const origin = countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(h, proxy.port)
  c.s.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n')
  await flood(c.s, () => c.got() !== '' || c.closed())
  expect(await waitFor(() => c.got() !== '' || c.closed(), 3000)).toBe(true)
  expect(c.got()).toMatch(/^HTTP\/1\.1 400 /)
  expect(origin.seen.reached).toBe(0)
  expect(await waitFor(() => h.records.some((r) => r.path === '/up'))).toBe(true)
  expect(h.records.find((r) => r.path === '/up')).toMatchObject({ status: 400, error: 'BAD_BODY' })
})

test('more than 100 trailer lines, the section small: 400; 100 lines go through', async () => {
  const origin = countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const ask = async (lines: number) => {
    const c = rawClient(h, proxy.port)
    c.s.write(`POST /n${lines} HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n${'x: 1\r\n'.repeat(lines)}\r\n`)
    expect(await waitFor(() => c.closed(), 3000)).toBe(true)
    return c.got()
  }
  expect(await ask(100)).toMatch(/^HTTP\/1\.1 200 /)
  expect(origin.seen).toEqual({ reached: 1, complete: 1, aborted: 0 })
  expect(await ask(101)).toMatch(/^HTTP\/1\.1 400 /)
  expect(origin.seen.reached).toBe(1)
})

test('the same after a body past the 64 KiB read-ahead: the upstream sees an aborted request, never a complete one', async () => {
  const origin = countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(h, proxy.port)
  const chunk = 'x'.repeat(16 * 1024)
  c.s.write('POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
  for (let sent = 0; sent <= REPLAYABLE_BODY_BYTES; sent += chunk.length) c.s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
  expect(await waitFor(() => origin.seen.reached === 1, 3000)).toBe(true)
  c.s.write('0\r\n')
  await flood(c.s, () => c.got() !== '' || c.closed())
  expect(await waitFor(() => origin.seen.complete + origin.seen.aborted > 0, 3000)).toBe(true)
  expect(origin.seen).toEqual({ reached: 1, complete: 0, aborted: 1 })
  expect(c.got()).toMatch(/^HTTP\/1\.1 400 /)
  expect(c.got()).not.toContain('reached')
})

/**
 * A raw origin that answers 200 chunked with "hello", then the last chunk and trailer lines
 * (the budget's worth, then it waits, its socket open: only the proxy closes it).
 */
async function endlessTrailerOrigin(): Promise<{ port: number; closedByPeer: () => boolean }> {
  let closedByPeer = false
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => (closedByPeer = true))
    s.once('data', async () => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
      await Bun.sleep(20) // the body in a later read: the answer has begun for the client
      s.write('5\r\nhello\r\n0\r\n')
      await flood(s, () => closedByPeer)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, closedByPeer: () => closedByPeer }
}

test('an upstream whose trailer lines never end: the answer is cut for the client and the upstream connection closed', async () => {
  const origin = await endlessTrailerOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, retries: '0' } })
  const c = rawClient(h, proxy.port)
  c.s.write('GET /endless HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => origin.closedByPeer(), 5000)).toBe(true)
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  // The head and the data went out; the end of the body never did (no last chunk): a cut, not a whole answer.
  expect(c.got()).toMatch(/^HTTP\/1\.1 200 /)
  expect(c.got()).toContain('\r\n5\r\nhello\r\n')
  expect(c.got()).not.toContain('\r\n0\r\n\r\n')
  expect(await waitFor(() => h.records.some((r) => r.path === '/endless'))).toBe(true)
  expect(h.records.find((r) => r.path === '/endless')).toMatchObject({ status: 200, error: 'RESET_MID_BODY' })
})

test('an answer whose trailer section is refused within the read that brought its head: 502', async () => {
  const body = `5\r\nhello\r\n0\r\n${'x: 1\r\n'.repeat(101)}\r\n` // 101 lines, 600 bytes
  const server = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: { data: (s) => void s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`) },
  })
  h.track(() => server.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${server.port}`, retries: '0' } })
  const c = rawClient(h, proxy.port)
  c.s.write('GET /whole HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got()).toMatch(/^HTTP\/1\.1 502 /)
})

/**
 * Trailer lines are field lines (RFC 9112 §5, §7.1.2). A section line with no colon, a name that is
 * not a token, or whitespace before the colon ends the message at another byte for a parser that
 * reads it otherwise: "0" or a request line there is the smuggler's. Refused like a bad head
 * field (HAProxy does the same), never dropped and passed over.
 */
test.each([
  ['a line without a colon', 'X y\r\n'],
  ['a request line and its Host', 'GET /hidden HTTP/1.1\r\nHost: a\r\n'],
  ['whitespace before the colon', 'X : y\r\n'],
  ['an empty name', ': y\r\n'],
  ['a name that is not a token', 'X(y): z\r\n'],
  ['a second last chunk', '0\r\n'],
])('a chunked request whose trailer section holds %s: 400, and neither it nor what follows reaches the upstream', async (_what, trailer) => {
  const origin = countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(h, proxy.port)
  c.s.write(`POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n${trailer}\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n`)
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got()).toMatch(/^HTTP\/1\.1 400 /)
  expect(c.got().match(/HTTP\/1\.1 /g)).toHaveLength(1)
  expect(origin.seen.reached).toBe(0)
})

test('a well-formed trailer section still goes through, and the request pipelined after it too', async () => {
  const origin = countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const c = rawClient(h, proxy.port)
  c.s.write('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\nX-Sum:1\r\nx-b: c: d\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got().match(/HTTP\/1\.1 200 /g)).toHaveLength(2)
  expect(origin.seen).toEqual({ reached: 2, complete: 2, aborted: 0 })
})

test('an upstream answer whose trailer line has no colon: 502, and the connection is not reused', async () => {
  let connections = 0
  const server = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open: () => void connections++,
      data: (s) => void s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nHTTP/1.1 200 OK\r\n\r\n'),
    },
  })
  h.track(() => server.stop(true))
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${server.port}`, retries: '0' } })
  const c = rawClient(h, proxy.port)
  c.s.write('GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got()).toMatch(/^HTTP\/1\.1 502 /)
  const d = rawClient(h, proxy.port)
  d.s.write('GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  expect(await waitFor(() => d.closed(), 3000)).toBe(true)
  expect(connections).toBe(2)
})
