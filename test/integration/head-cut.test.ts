/**
 * An upstream that cuts its answer inside the head (some bytes of it, then a close) answered:
 * the request gets a 502 BAD_RESPONSE, is not sent again, and the address is not counted against.
 * A close before any byte is the stale keep-alive case (retried once on a new connection, and a
 * second such close on the new one counts against the address). Until the sixteenth round of
 * outside reviews both were the latter: one URL whose answers broke ejected a sound address,
 * and every other request waited out the ejection.
 */
import { afterEach, expect, test } from 'bun:test'
import { Harness } from '../support/harness.ts'
import { RawOrigin } from '../support/raw-origin.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('an answer cut inside its head: 502 BAD_RESPONSE, one try, the address not counted against', async () => {
  const origin = await RawOrigin.start((req, s) => {
    if (req.target === '/bad') s.end('HTTP/1.1 200 OK\r\nDat')
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  h.track(() => origin.close())
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const from = h.records.length
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${url}/bad`)
    await res.arrayBuffer()
    expect(res.status).toBe(502)
  }
  expect(origin.requests.filter((r) => r.target === '/bad').length).toBe(3)
  const state = [...proxy.pool('default')!.addresses.values()][0]!
  expect([state.failures, state.ejectedUntilMonoMs]).toEqual([0, 0])
  const good = await fetch(`${url}/good`)
  expect([good.status, await good.text()]).toEqual([200, 'ok'])
  const records = h.records.slice(from)
  expect(records.filter((r) => r.path === '/bad').map((r) => [r.status, r.error, r.retries])).toEqual([
    [502, 'BAD_RESPONSE', 0],
    [502, 'BAD_RESPONSE', 0],
    [502, 'BAD_RESPONSE', 0],
  ])
})

test('a close before any byte, on a new connection too: retried once, then 502, the address not counted against (one such URL ejected the only address and held every request: seventeenth round)', async () => {
  const origin = await RawOrigin.start((req, s) => {
    if (req.target === '/bad') s.end()
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  h.track(() => origin.close())
  const { proxy, url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const res = await fetch(`${url}/bad`)
  await res.arrayBuffer()
  expect(res.status).toBe(502)
  expect(origin.requests.filter((r) => r.target === '/bad').length).toBe(2)
  const state = [...proxy.pool('default')!.addresses.values()][0]!
  expect(state.failures).toBe(0)
  expect(state.ejectedUntilMonoMs).toBe(0)
  const good = await fetch(`${url}/good`)
  expect(await good.text()).toBe('ok')
})
