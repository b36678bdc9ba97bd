/**
 * RFC 9110 / 9112 intermediary semantics, each seen end to end through the proxy with a raw
 * recording origin on loopback: when a request may be replayed after its upstream connection
 * went away (§9.2.2).
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Socket } from 'node:net'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

interface Seen {
  conn: number
  line: string
}

/**
 * An origin that answers every request with "ok", except the second request on its first
 * connection: that one is read whole and the connection is then destroyed without an answer (an
 * upstream that went away after it had the request, on a kept-alive connection).
 */
async function dropsSecondRequest(): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  let conns = 0
  const server = createServer((s) => {
    const conn = ++conns
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = ''
    let n = 0
    s.on('data', (d) => {
      buf += d.toString('latin1')
      for (let guard = 0; guard < 8; guard++) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end)
        const m = /\r\ncontent-length: *(\d+)/i.exec(head)
        const length = m ? Number(m[1]) : 0
        if (buf.length < end + 4 + length) return
        buf = buf.slice(end + 4 + length)
        seen.push({ conn, line: head.slice(0, head.indexOf('\r\n')) })
        if (conn === 1 && ++n === 2) {
          s.destroy()
          return
        }
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, seen }
}

test('a POST the upstream received on a reused connection that then closed is not replayed: 502 (RFC 9110 §9.2.2)', async () => {
  const origin = await dropsSecondRequest()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  expect((await fetch(`${url}/first`)).status).toBe(200)
  const res = await fetch(`${url}/order`, { method: 'POST', body: 'pay=1' })
  expect(res.status).toBe(502)
  await res.text()
  // The upstream had it once, and never again.
  expect(origin.seen.map((s) => s.line)).toEqual(['GET /first HTTP/1.1', 'POST /order HTTP/1.1'])
})

test('a GET on a reused connection that closed before its answer is sent again on a new one (the stale keep-alive race)', async () => {
  const origin = await dropsSecondRequest()
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  expect((await fetch(`${url}/first`)).status).toBe(200)
  const res = await fetch(`${url}/again`)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('ok')
  expect(origin.seen).toEqual([
    { conn: 1, line: 'GET /first HTTP/1.1' },
    { conn: 1, line: 'GET /again HTTP/1.1' },
    { conn: 2, line: 'GET /again HTTP/1.1' },
  ])
})
