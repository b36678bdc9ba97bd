/**
 * The proxy's own answers (a 502 for a dead upstream, a 400 for a malformed head) are logged with
 * the body bytes they sent in `bytes_out`, as nginx's $body_bytes_sent counts its error pages; a
 * HEAD's answer sends none. Until the twenty-second session every such record said 0.
 */
import { afterEach, expect, test } from 'bun:test'
import { freePort, Harness, rawExchange, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})

test('a 502 and a listener\'s 400 log the body bytes sent; a HEAD\'s 502 logs 0', async () => {
  const dead = await freePort() // nothing listens there: 502 CONNECT_REFUSED
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${dead}`, retries: 0 } })
  const get = await fetch(`${proxy.url}/get`)
  const body = await get.arrayBuffer()
  expect(get.status).toBe(502)
  const head = await fetch(`${proxy.url}/head`, { method: 'HEAD' })
  expect(head.status).toBe(502)
  const raw = await rawExchange(proxy.port, 'GET /twice HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
  expect(raw).toStartWith('HTTP/1.1 400 ')
  const rawBody = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  expect(await waitFor(() => h.records.length === 3, 3000)).toBe(true)
  const by = (path: string) => h.records.find((r) => r.path === path)
  expect(by('/get')).toMatchObject({ status: 502, bytes_out: body.byteLength })
  expect(body.byteLength).toBeGreaterThan(0)
  expect(by('/head')).toMatchObject({ status: 502, bytes_out: 0 })
  expect(by('/twice')).toMatchObject({ status: 400, bytes_out: Buffer.byteLength(rawBody) })
})
