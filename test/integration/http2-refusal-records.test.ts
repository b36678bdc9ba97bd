/**
 * What the access log (and the metrics fed from it) shows for requests the HTTP/2 stack refuses
 * itself, against what the HTTP/1.1 listener shows for the same input: a head above
 * max_header_size (431 HEAD_TOO_LARGE), and request trailers above it (the HTTP/1.1 chunked
 * trailer section: BAD_BODY; over HTTP/2 the status sent is 431, or the stream is reset once the
 * answer began), and a body whose length is not its content-length (RFC 9113 §8.1.1: the stream
 * is reset; recorded 400 BAD_BODY, as HTTP/1.1 records a malformed chunked body). Each is one record with the status as sent, the stable code, the request's
 * method, path and host, and protocol HTTP/2; and it is counted as a refusal as HTTP/1.1 counts
 * it. Never 499 CLIENT_GONE: the client did not leave. A raw h2 client on the TLS listener sends
 * the frames; records come from the harness's onRecord hook. Nothing of the proxy's own answer
 * body goes out in any of these (a 431 without content, or a reset): bytes_out 0 (it logged the
 * length of a reply never sent until the twenty-sixth session).
 */
import { afterEach, expect, test } from 'bun:test'
import { H2Code } from '../../src/http2/errors.ts'
import { FrameType } from '../../src/http2/frames.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, rawClient, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(async () => {
  await h.closeAll()
  h.records.length = 0
})
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** An origin that reads each body to its end (a cut one too) and answers 200. */
function origin() {
  return h.origin({
    async fetch(req) {
      try {
        await req.arrayBuffer()
      } catch {
        return new Response('cut')
      }
      return new Response('ok')
    },
  })
}

function tlsProxy(port: number | undefined) {
  return h.proxy({ upstream: { url: `http://127.0.0.1:${port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, max_header_size: '4KiB' } }).proxy
}

/** The x-request-id of the final answer on `streamId`. */
function requestIdOf(c: RawH2Tls, streamId: number): string | undefined {
  const heads = c.frames.filter((f) => f.type === FrameType.HEADERS && f.streamId === streamId)
  return heads.at(-1)?.headers?.find(([n]) => n === 'x-request-id')?.[1]
}

/** The one record of `path`, once written (and no second one after a turn). */
async function recordOf(path: string): Promise<RequestRecord | undefined> {
  await waitFor(() => h.records.some((r) => r.path === path), 3000)
  await Bun.sleep(20)
  const all = h.records.filter((r) => r.path === path)
  expect(all.length).toBe(1)
  return all[0]
}

test('a head above max_header_size: 431 and one record HEAD_TOO_LARGE, counted as a refusal, as over HTTP/1.1', async () => {
  const server = origin()
  // HTTP/1.1, for comparison.
  const plain = h.proxy({ upstream: { url: `http://127.0.0.1:${server.port}` }, server: { max_header_size: '4KiB' } }).proxy
  const c1 = rawClient(h, plain.port)
  c1.s.write(`GET /big1 HTTP/1.1\r\nHost: proxy.test\r\nx-big: ${'b'.repeat(8000)}\r\n\r\n`)
  expect(await waitFor(() => c1.got() !== '', 3000)).toBe(true)
  expect(c1.got()).toMatch(/^HTTP\/1\.1 431 /)
  expect(await waitFor(() => h.records.length === 1, 3000)).toBe(true)
  expect(h.records[0]).toMatchObject({ status: 431, error: 'HEAD_TOO_LARGE', protocol: 'HTTP/1.1' })
  expect(plain.refused.malformed).toBe(1)

  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/big2', [['x-big', 'b'.repeat(8000)]]))
  expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
  expect(c.statuses(1)).toEqual(['431'])
  const big2 = await recordOf('/big2')
  expect(big2).toMatchObject({ status: 431, error: 'HEAD_TOO_LARGE', protocol: 'HTTP/2', method: 'GET', host: 'proxy.test', bytes_out: 0 }) // the 431 has no content
  // The 431 carries the request id, the record's, as the proxy's every other answer does.
  expect(requestIdOf(c, 1)).toBe(big2!.request_id)
  expect(proxy.refused.malformed).toBe(1)
  // The connection goes on.
  c.send(c.request(3, 'GET', '/after'))
  expect(await waitFor(() => c.ended(3), 3000)).toBe(true)
  expect(c.statuses(3)).toEqual(['200'])
  expect(await recordOf('/after')).toMatchObject({ status: 200, protocol: 'HTTP/2' })
})

test.each([
  ['a small body read ahead, the trailers in a later read', 10_000, false],
  ['a streamed body, the trailers in a later read', 300_000, false],
  ['a small body, the trailers in the same read as the head (before the request is handed on)', 1_000, true],
])('trailers above max_header_size after %s: 431 recorded as such (BAD_BODY, as HTTP/1.1 logs its trailer section), not 499', async (_, bodyBytes, sameRead) => {
  const server = origin()
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  const head = c.request(1, 'POST', '/up', [['content-type', 'application/octet-stream']], false)
  const body: Uint8Array[] = []
  for (let sent = 0; sent < bodyBytes; sent += 10_000) body.push(c.data(1, new Uint8Array(Math.min(10_000, bodyBytes - sent)).fill(0x61)))
  const trailers = c.headers(1, [['x-checksum', 'abc'], ['x-big', 'b'.repeat(8000)]], true)
  if (sameRead) c.send(Buffer.concat([head, ...body, trailers]))
  else {
    c.send(head)
    await c.sendBody(1, bodyBytes, false)
    // The request is on its way upstream (or its body read ahead) before the trailers come.
    await Bun.sleep(50)
    c.send(trailers)
  }
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  expect(c.statuses(1)).toEqual(['431'])
  const up = await recordOf('/up')
  expect(up).toMatchObject({ status: 431, error: 'BAD_BODY', protocol: 'HTTP/2', method: 'POST', host: 'proxy.test', bytes_out: 0 })
  // With the record's request id (the flight's, when the request path had it already).
  expect(requestIdOf(c, 1)).toBe(up!.request_id)
  expect(proxy.refused.malformed).toBe(1)
  expect(c.goaway()).toBeUndefined()
})

test('trailers above max_header_size once the answer began: RST_STREAM, recorded with the status sent and BAD_BODY', async () => {
  let release: () => void = () => {}
  const released = new Promise<void>((r) => (release = r))
  h.track(() => release())
  const server = h.origin({
    fetch() {
      // The head and a first byte at once, without reading the request body; the rest when released (or the test ends).
      const body = new ReadableStream<Uint8Array>({
        start: (ctl) => ctl.enqueue(new TextEncoder().encode('a')),
        pull: async (ctl) => {
          await Promise.race([released, Bun.sleep(3000)])
          ctl.close()
        },
      })
      return new Response(body)
    },
  })
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  // A body past the read-ahead (64 KiB): the request goes upstream before its end.
  c.send(c.request(1, 'POST', '/answered', [], false))
  await c.sendBody(1, 80_000, false)
  expect(await waitFor(() => c.statuses(1).length > 0, 3000)).toBe(true)
  expect(c.statuses(1)).toEqual(['200'])
  c.send(c.headers(1, [['x-big', 'b'.repeat(8000)]], true))
  expect(await waitFor(() => c.resets(1).length > 0, 3000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  release()
  expect(await recordOf('/answered')).toMatchObject({ status: 200, error: 'BAD_BODY', protocol: 'HTTP/2', method: 'POST' })
  // No answer of the proxy's own was sent: not a refusal (as HTTP/1.1 does not count a body failed after its answer began).
  expect(proxy.refused.malformed).toBe(0)
})

test('a malformed request (RFC 9113 §8.1.1) is reset, not answered, and recorded 400 BAD_REQUEST and counted malformed, as HTTP/1.1 records its 400 (nginx logs its own 400 for one too)', async () => {
  const server = origin()
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'GET', '/malformed', [['x-bad', ' leading space']]))
  expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  expect(await recordOf('/malformed')).toMatchObject({ status: 400, error: 'BAD_REQUEST', protocol: 'HTTP/2', method: 'GET', bytes_out: 0 }) // nothing sent but the reset
  expect(proxy.refused.malformed).toBe(1)
  c.send(c.request(3, 'GET', '/next'))
  expect(await recordOf('/next')).toMatchObject({ status: 200 })
})

test.each([
  ['more DATA than content-length, after the request was handed on', 'more', false],
  ['END_STREAM short of content-length, after the request was handed on', 'short', false],
  ['more DATA than content-length, in the same read as the head', 'more', true],
  ['END_STREAM on the head with a content-length above 0', 'none', true],
])('a body whose length differs from content-length (RFC 9113 §8.1.1), %s: reset, recorded 400 BAD_BODY as a malformed body, not 499', async (_, kind, sameRead) => {
  const server = origin()
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  const head = c.request(1, 'POST', '/cl', [['content-length', '10']], kind === 'none')
  const body = kind === 'more' ? [c.data(1, 'a'.repeat(20), true)] : kind === 'short' ? [c.data(1, 'a'.repeat(5), true)] : []
  if (sameRead) c.send(Buffer.concat([head, ...body]))
  else {
    c.send(head, c.data(1, 'a'))
    await Bun.sleep(50)
    c.send(...body)
  }
  expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  expect(await recordOf('/cl')).toMatchObject({ status: 400, error: 'BAD_BODY', protocol: 'HTTP/2', method: 'POST', host: 'proxy.test', bytes_out: 0 })
  // Counted as HTTP/1.1 counts a malformed body it refused.
  expect(proxy.refused.malformed).toBe(1)
  expect(c.goaway()).toBeUndefined()
})

test('a streamed body ended short of its content-length: the log says so (error_detail), not that the client closed the connection', async () => {
  const server = origin()
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  // Past the read-ahead (64 KiB): the request is upstream, its body streaming, when the stream ends short.
  c.send(c.request(1, 'POST', '/short', [['content-length', '200000']], false))
  await c.sendBody(1, 100_000, true)
  expect(await waitFor(() => c.ended(1), 3000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  const record = await recordOf('/short')
  expect(record).toMatchObject({ status: 400, error: 'BAD_BODY', protocol: 'HTTP/2' })
  expect(record!.error_detail).toContain('body length differs from content-length')
  expect(c.goaway()).toBeUndefined()
})

test('a body longer than content-length once the answer began: reset, recorded with the status sent and BAD_BODY, not counted', async () => {
  const server = h.origin({ fetch: () => new Response(new ReadableStream({ start: (ctl) => ctl.enqueue(new TextEncoder().encode('a')) })) })
  const proxy = tlsProxy(server.port)
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  // A body past the read-ahead (64 KiB): the request goes upstream before its end.
  c.send(c.request(1, 'POST', '/cl-answered', [['content-length', '100000']], false))
  await c.sendBody(1, 70_000, false)
  expect(await waitFor(() => c.statuses(1).length > 0, 3000)).toBe(true)
  expect(c.statuses(1)).toEqual(['200'])
  // 110 000 bytes in all, in frames under the 16 KiB frame size.
  await c.sendBody(1, 40_000, true)
  expect(await waitFor(() => c.resets(1).length > 0, 3000)).toBe(true)
  expect(c.resets(1)).toEqual([H2Code.PROTOCOL_ERROR])
  expect(await recordOf('/cl-answered')).toMatchObject({ status: 200, error: 'BAD_BODY', protocol: 'HTTP/2' })
  expect(proxy.refused.malformed).toBe(0)
})
