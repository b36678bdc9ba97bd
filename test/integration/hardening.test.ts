/**
 * Malformed and ambiguous requests, sent as raw bytes: each is refused before anything reaches
 * the upstream. Most are refused by Bun's parser; Host checks and CONNECT by request-checks.ts.
 */
import { afterEach, expect, test } from 'bun:test'
import { CASES, sendRaw } from '../../scripts/differential.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** The expected first status for each case of the differential table (scripts/differential.ts). */
const EXPECTED: Record<string, RegExp> = {
  'CL and TE both': /^400$/,
  'two differing CL': /^400$/,
  'CL list "3, 5"': /^400$/,
  'TE gzip (not chunked)': /^400$/,
  'TE "chunked, gzip"': /^400$/,
  'TE xchunked': /^400$/,
  'space before colon': /^400$/,
  'bad header name': /^400$/,
  'control char in value': /^400$/,
  'NUL in value': /^400$/,
  'obs-fold': /^400$/,
  'bare CR': /^400$/,
  'no Host (HTTP/1.1)': /^400$/,
  'two Host': /^400$/,
  'request line 70 KB': /^(414|431)$/,
  'headers 70 KB': /^431$/,
  CONNECT: /^405$/,
  'bad chunk size': /^400$/,
  'negative CL': /^400$/,
  'signed CL "+3"': /^400$/,
}
// Absolute-form targets are rewritten by Bun before the proxy sees them (see the README).
const REFUSED = CASES.filter(([name]) => name in EXPECTED)

test('every case of the differential table has an expectation here, or a README note', () => {
  expect(CASES.filter(([name]) => !(name in EXPECTED)).map(([n]) => n)).toEqual(['absolute-form, other host'])
})

test.each(REFUSED)('%s is refused before the upstream', async (name, raw) => {
  const status = EXPECTED[name]!
  let reached = 0
  let complete = 0
  const origin = h.origin({
    async fetch(req) {
      reached++
      await req.arrayBuffer()
      complete++
      return new Response('reached')
    },
  })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await sendRaw(proxy.port, raw)
  await Bun.sleep(50)
  const first = /^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? '(none)'
  expect(first).toMatch(status)
  // A bad chunk inside a streamed body is found only after the head went upstream (as with
  // nginx's proxy_request_buffering off): the upstream then sees an aborted, incomplete request.
  if (name !== 'bad chunk size') expect(reached).toBe(0)
  expect(complete).toBe(0)
  // Nothing smuggled behind the first request reached the upstream either.
  expect(reply).not.toContain('reached')
})

test('an HTTP/1.0 request without Host gets the upstream host name', async () => {
  let host = ''
  const origin = h.origin({ fetch: (req) => ((host = req.headers.get('host') ?? ''), new Response('ok')) })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  const reply = await sendRaw(proxy.port, 'GET / HTTP/1.0\r\n\r\n')
  expect(reply).toMatch(/^HTTP\/1\.[01] 200/)
  expect(host).toBe(`127.0.0.1:${origin.port}`)
})
