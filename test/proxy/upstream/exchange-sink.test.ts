/**
 * What an exchange tells its sink (exchange.ts, ExchangeSink), and in what order: the request
 * path now runs from these calls without a promise between them, so the order is what keeps a
 * pooled connection reusable by the next request and a streamed body whole. Against loopback
 * servers that answer with fixed bytes.
 */
import { afterEach, expect, test } from 'bun:test'
import { dial } from '../../../src/runtime/socket.ts'
import { Http1Connection, type ExchangeSink, type IncomingResponse } from '../../../src/proxy/upstream/connection.ts'
import type { RequestFailure } from '../../../src/proxy/errors.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0)) c()
})

/** A server that answers every read with `answer` in one write, and closes after it when `close`. */
function server(answer: string, close = false): number {
  const s = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(sock) {
        sock.write(answer)
        if (close) sock.end()
      },
    },
  })
  closers.push(() => s.stop(true))
  return s.port
}

const request = { method: 'GET', target: '/', headers: [['host', 'origin.test']] as [string, string][], body: null, bodyLength: undefined, maxBodyBytes: 0 }

/** One exchange on a new connection to `port`: the events in the order they came, and what the sink was given. */
async function run(port: number): Promise<{ events: string[]; response?: IncomingResponse; failure?: RequestFailure }> {
  const conn = await dial({ address: '127.0.0.1', port, tls: undefined, connectTimeoutMs: 2000 })
  const events: string[] = []
  const c = new Http1Connection(conn, (_c, reusable) => events.push(`released ${reusable ? 'reusable' : 'closed'}`))
  closers.push(() => c.destroy())
  const out: { events: string[]; response?: IncomingResponse; failure?: RequestFailure } = { events }
  await new Promise<void>((done) => {
    const sink: ExchangeSink = {
      headerTimeoutMs: 2000,
      idleTimeoutMs: 0,
      onEnd: (end) => events.push(`end ${end.error?.code ?? 'ok'} ${end.responseBodyBytes}`),
      onResponse: (r) => {
        events.push(`response ${r.head.status}`)
        out.response = r
        done()
      },
      onFailure: (f) => {
        events.push(`failure ${f.code}`)
        out.failure = f
        done()
      },
    }
    c.send(request, sink)
  })
  return out
}

test('a whole small answer: the connection is back in the pool and the end reported before the sink has the response', async () => {
  const { events, response } = await run(server('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'))
  expect(events).toEqual(['released reusable', 'end ok 5', 'response 200'])
  expect(new TextDecoder().decode(response!.body as Uint8Array)).toBe('hello')
})

test('a bodiless answer: the same order', async () => {
  const { events, response } = await run(server('HTTP/1.1 204 No Content\r\n\r\n'))
  expect(events).toEqual(['released reusable', 'end ok 0', 'response 204'])
  expect(response!.body).toBeNull()
})

test('a streamed body: the sink has the response first, with the bytes of the head read already in its stream', async () => {
  // 10 bytes declared, 4 sent with the head: the rest never comes, so the stream holds exactly those.
  const { events, response } = await run(server('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd'))
  expect(events).toEqual(['response 200'])
  expect(response!.body).toBeInstanceOf(ReadableStream)
  const reader = (response!.body as ReadableStream<Uint8Array>).getReader()
  const first = await reader.read()
  expect(new TextDecoder().decode(first.value)).toBe('abcd')
  await reader.cancel()
})

test('a chunked body not yet complete: streamed, its decoded first chunk already queued', async () => {
  const { events, response } = await run(server('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'))
  expect(events).toEqual(['response 200'])
  const reader = (response!.body as ReadableStream<Uint8Array>).getReader()
  expect(new TextDecoder().decode((await reader.read()).value)).toBe('abc')
  await reader.cancel()
})

test('closed before any response byte: the connection is dropped and the end reported before the sink hears of the failure', async () => {
  const { events, failure } = await run(server('', true))
  expect(events).toEqual(['released closed', 'end RESET_BEFORE_RESPONSE 0', 'failure RESET_BEFORE_RESPONSE'])
  expect(failure!.phase).toBe('response-head')
})

test('closed inside the response head, after some of it: a bad response (the upstream answered), not a stale connection to retry on and count against the address', async () => {
  for (const answer of ['H', 'HTTP/1.1 200 OK\r\nDat', 'HTTP/1.1 100 Continue\r\n\r\n']) {
    const { events, failure } = await run(server(answer, true))
    expect(events).toEqual(['released closed', 'end BAD_RESPONSE 0', 'failure BAD_RESPONSE'])
    expect(failure!.message).toContain(`closed the connection inside its response head`)
  }
})

test('the promise form (health checks, retries) resolves with the same response', async () => {
  const port = server('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  const conn = await dial({ address: '127.0.0.1', port, tls: undefined, connectTimeoutMs: 2000 })
  const c = new Http1Connection(conn, () => {})
  closers.push(() => c.destroy())
  const ends: number[] = []
  const r = await c.exchange(request, { headerTimeoutMs: 2000, idleTimeoutMs: 0, onEnd: (e) => ends.push(e.responseBodyBytes) })
  expect(r.head.status).toBe(200)
  expect(new TextDecoder().decode(r.body as Uint8Array)).toBe('ok')
  expect(ends).toEqual([2])
})

test('a streamed body longer than the Content-Length it was sent with: the exchange fails and no byte past that length goes upstream', async () => {
  // The origin records everything and never answers: the body is all the exchange does.
  let got = ''
  let closed = false
  const s = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: (_sock, d) => void (got += d.toString('latin1')), close: () => void (closed = true) } })
  closers.push(() => s.stop(true))
  const conn = await dial({ address: '127.0.0.1', port: s.port, tls: undefined, connectTimeoutMs: 2000 })
  const events: string[] = []
  const c = new Http1Connection(conn, (_c, reusable) => events.push(`released ${reusable ? 'reusable' : 'closed'}`))
  closers.push(() => c.destroy())
  // Declared 5 bytes; the source (a listener's body stream) yields a request after them.
  const chunks = ['hello', 'GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n'].map((t) => new TextEncoder().encode(t))
  const body = new ReadableStream<Uint8Array>({ pull: (ctrl) => void (chunks.length > 0 ? ctrl.enqueue(chunks.shift()!) : ctrl.close()) }, { highWaterMark: 0 })
  const failure = await new Promise<RequestFailure | undefined>((done) => {
    c.send({ ...request, method: 'POST', body, bodyLength: 5 }, { headerTimeoutMs: 2000, idleTimeoutMs: 0, onResponse: () => done(undefined), onFailure: done })
  })
  // Everything written before the close has arrived once the origin sees it.
  for (let i = 0; i < 200 && !closed; i++) await Bun.sleep(10)
  expect(closed).toBe(true)
  expect(got.includes('/smuggled')).toBe(false)
  expect(got.endsWith('\r\ncontent-length: 5\r\n\r\nhello')).toBe(true)
  expect(failure?.code).toBe('BAD_BODY')
  expect(events).toEqual(['released closed'])
})
