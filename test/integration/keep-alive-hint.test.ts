/**
 * An upstream that says how long it keeps an idle connection (`Keep-Alive: timeout=N`, as Node.js
 * servers do with timeout=5) and closes it then: the proxy gives such a connection up a second
 * before, so that a POST, which it may not replay, is never written into a connection the upstream
 * is closing at that moment. The origin here models the moment of the race: a request that
 * arrives on a connection idle past `closesIdleAfterMs` is met with a close and no answer, as if
 * the origin's idle timer had fired as the bytes arrived.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Server, type Socket } from 'node:net'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

interface RaceOrigin {
  port: number
  /** Connections accepted. */
  accepted: number
  /** Requests met with a close instead of an answer. */
  cut: number
}

/** The origin: answers 200 with `Keep-Alive: timeout=<saySeconds>`; a request after `closesIdleAfterMs` of idleness is cut. */
async function raceOrigin(saySeconds: number | undefined, closesIdleAfterMs: number): Promise<RaceOrigin> {
  const state: RaceOrigin = { port: 0, accepted: 0, cut: 0 }
  const sockets = new Set<Socket>()
  const server: Server = createServer((s) => {
    state.accepted++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let idleSince = performance.now()
    let got = ''
    s.on('data', (d) => {
      got += d.toString('latin1')
      const end = got.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(got.slice(0, end))?.[1] ?? 0)
      if (got.length < end + 4 + length) return
      got = got.slice(end + 4 + length)
      if (performance.now() - idleSince >= closesIdleAfterMs) {
        state.cut++
        s.destroy()
        return
      }
      const hint = saySeconds === undefined ? '' : `Keep-Alive: timeout=${saySeconds}\r\n`
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${hint}\r\nok`)
      idleSince = performance.now()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  state.port = (server.address() as { port: number }).port
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return state
}

async function post(url: string, body: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', body, headers: { connection: 'close' } })
  await res.arrayBuffer()
  return res.status
}

test('a POST after the idle time the upstream said goes on a new connection, not into the one it is closing', async () => {
  // Says 2 s, and (for the test) closes what has been idle 1.5 s: the proxy may keep it 1 s.
  const origin = await raceOrigin(2, 1500)
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const from = h.records.length
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(1600)
  expect(await post(url, 'second')).toBe(200)
  expect(origin.cut).toBe(0)
  expect(origin.accepted).toBe(2)
  expect(h.records.slice(from).map((r) => [r.status, r.upstream_reused])).toEqual([
    [200, false],
    [200, false],
  ])
})

test('within the time it said, the connection is reused', async () => {
  const origin = await raceOrigin(5, 10_000)
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const from = h.records.length
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(300)
  expect(await post(url, 'second')).toBe(200)
  expect(origin.accepted).toBe(1)
  expect(h.records.slice(from).map((r) => r.upstream_reused)).toEqual([false, true])
})

test('an upstream that says nothing: the race is lost as before (502 for a POST, which is not replayed), which is why the hint matters', async () => {
  const origin = await raceOrigin(undefined, 1500)
  const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const from = h.records.length
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(1600)
  expect(await post(url, 'second')).toBe(502)
  expect(origin.cut).toBe(1)
  expect(h.records.slice(from).at(-1)?.error).toBe('RESET_BEFORE_RESPONSE')
})
