/**
 * The race a pooled connection loses when its upstream closes it as a request is sent: here the
 * upstream's FIN has reached the proxy's kernel, but not yet the proxy's close handler, when a
 * POST (which may not be replayed) takes the idle connection. Made deterministic by blocking the
 * event loop (Bun.sleepSync) after the client's request is written and the origin has closed:
 * both are then pending in the same round of socket events, the request first.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { Harness } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** An origin that answers every request with 200 "ok" and keeps the connection. */
async function keepAliveOrigin(): Promise<RawOrigin> {
  const origin = await RawOrigin.start((_req, s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  h.track(() => origin.close())
  return origin
}

/** A kept-alive raw client of the proxy: send() writes, next() waits for the next whole answer's status. */
async function rawClient(port: number) {
  const s = connect(port, '127.0.0.1')
  h.track(() => void s.destroy())
  await new Promise<void>((r) => s.once('connect', () => r()))
  let buf = ''
  let waiting: (() => void) | undefined
  s.on('data', (d) => {
    buf += d.toString('latin1')
    waiting?.()
  })
  return {
    send: (text: string) => s.write(text),
    async next(): Promise<number> {
      const deadline = Date.now() + 5000
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end >= 0) {
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0)
          if (buf.length >= end + 4 + length) {
            const status = Number(buf.slice(9, 12))
            buf = buf.slice(end + 4 + length)
            return status
          }
        }
        if (Date.now() > deadline) return 0
        await new Promise<void>((r) => {
          waiting = r
          setTimeout(r, 100)
        })
      }
    },
  }
}

async function raceOnce(method: string) {
  const origin = await keepAliveOrigin()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const client = await rawClient(Number(new URL(url).port))
  const from = h.records.length
  client.send('GET /first HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await client.next()).toBe(200)
  await Bun.sleep(50) // the upstream connection is idle in the pool
  expect(origin.accepted.length).toBe(1)
  const body = method === 'POST' ? 'Content-Length: 4\r\n\r\nbody' : '\r\n'
  client.send(`${method} /second HTTP/1.1\r\nHost: a\r\n${body}`)
  // The origin closes its side (it still reads, as a server does until its close is through).
  origin.accepted[0]!.end()
  Bun.sleepSync(50)
  const status = await client.next()
  return { status, origin, records: h.records.slice(from) }
}

test('a POST that would take a pooled connection whose upstream has just closed it (its FIN not yet handled) goes on a new one', async () => {
  const { status, origin, records } = await raceOnce('POST')
  expect(status).toBe(200)
  // Once, on the new connection: never written into the closing one, where the origin could have
  // read and acted on it without an answer (the build before: 502, and the POST reached the origin).
  expect(origin.requests.map((r) => `${r.method} ${r.target} ${r.version}`)).toEqual(['GET /first HTTP/1.1', 'POST /second HTTP/1.1'])
  expect(origin.accepted.length).toBe(2)
  expect(records.map((r) => [r.status, r.upstream_reused])).toEqual([
    [200, false],
    [200, false],
  ])
})

test('a GET in the same race is not probed: written into the closing connection, it is retried on a new one (idempotent)', async () => {
  const { status, origin, records } = await raceOnce('GET')
  expect(status).toBe(200)
  expect(origin.requests.at(-1)).toMatchObject({ method: 'GET', target: '/second', version: 'HTTP/1.1' })
  expect(origin.accepted.length).toBe(2)
  expect(records.map((r) => r.status)).toEqual([200, 200])
})
