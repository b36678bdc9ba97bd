/**
 * An upstream that says how long it keeps an idle connection (`Keep-Alive: timeout=N`, as Node.js
 * servers do with timeout=5) and closes it then: the proxy gives such a connection up a second
 * before, so that a POST, which it may not replay, is never written into a connection the upstream
 * is closing at that moment. The origin here models the moment of the race: a request that
 * arrives on a connection idle past `closesIdleAfterMs` is met with a close and no answer, as if
 * the origin's idle timer had fired as the bytes arrived.
 */
import { afterEach, expect, test } from 'bun:test'
import type { Socket } from 'node:net'
import { Harness } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/**
 * The origin: answers 200 with `Keep-Alive: timeout=<saySeconds>`; a request on a connection idle
 * `closesIdleAfterMs` since its last answer is cut, and counted in `cut`.
 */
async function raceOrigin(saySeconds: number | undefined, closesIdleAfterMs: number): Promise<RawOrigin & { cut: number }> {
  const idleSince = new WeakMap<Socket, number>()
  const hint = saySeconds === undefined ? '' : `Keep-Alive: timeout=${saySeconds}\r\n`
  let origin!: RawOrigin & { cut: number }
  const raw = await RawOrigin.start((_req, s) => {
    const since = idleSince.get(s)
    if (since !== undefined && performance.now() - since >= closesIdleAfterMs) {
      origin.cut++
      s.destroy()
      return
    }
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${hint}\r\nok`)
    idleSince.set(s, performance.now())
  })
  origin = Object.assign(raw, { cut: 0 })
  h.track(() => raw.close())
  return origin
}

/** A proxy in front of `origin`, and where its records start in the harness's list. */
function through(origin: RawOrigin): { url: string; from: number } {
  return { url: h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } }).url, from: h.records.length }
}

async function post(url: string, body: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', body, headers: { connection: 'close' } })
  await res.arrayBuffer()
  return res.status
}

test('a POST after the idle time the upstream said goes on a new connection, not into the one it is closing', async () => {
  // Says 2 s, and (for the test) closes what has been idle 1.5 s: the proxy may keep it 1 s.
  const origin = await raceOrigin(2, 1500)
  const { url, from } = through(origin)
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(1600)
  expect(await post(url, 'second')).toBe(200)
  expect(origin.cut).toBe(0)
  expect(origin.accepted.length).toBe(2)
  expect(h.records.slice(from).map((r) => [r.status, r.upstream_reused])).toEqual([
    [200, false],
    [200, false],
  ])
})

test('within the time it said, the connection is reused', async () => {
  const origin = await raceOrigin(5, 10_000)
  const { url, from } = through(origin)
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(300)
  expect(await post(url, 'second')).toBe(200)
  expect(origin.accepted.length).toBe(1)
  expect(h.records.slice(from).map((r) => r.upstream_reused)).toEqual([false, true])
})

test('an upstream that says nothing: the race is lost as before (502 for a POST, which is not replayed), which is why the hint matters', async () => {
  const origin = await raceOrigin(undefined, 1500)
  const { url, from } = through(origin)
  expect(await post(url, 'first')).toBe(200)
  await Bun.sleep(1600)
  expect(await post(url, 'second')).toBe(502)
  expect(origin.cut).toBe(1)
  expect(h.records.slice(from).at(-1)?.error).toBe('RESET_BEFORE_RESPONSE')
})
