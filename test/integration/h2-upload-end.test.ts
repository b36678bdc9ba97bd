/**
 * An HTTP/2 upload streamed upstream reaches the origin whole only once the client has ended it
 * (END_STREAM): until then the last byte of its declared content-length is held back, so that a
 * client that resets the stream, drops the connection or sends a byte more (a malformed request,
 * RFC 9113 §8.1.1: "MUST NOT forward") leaves the origin with a request one byte short and its
 * connection closed, never a complete one. Until the sixteenth round of outside reviews the body
 * went on as it came, and the origin had a whole request the client never finished.
 */
import { afterEach, expect, test } from 'bun:test'
import { createServer, type Socket } from 'node:net'
import { frame, FrameType } from '../../src/http2/frames.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { RawH2Tls } from '../support/raw-h2-tls.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

const DECLARED = 100_000

/** An origin that counts the body bytes after each request head and answers once it has them all. */
async function countingOrigin(): Promise<{ port: number; bodyBytes: () => number; closed: () => boolean }> {
  let body = 0
  let closed = false
  const server = createServer((s: Socket) => {
    let head = ''
    s.on('data', (d: Buffer) => {
      if (!head.includes('\r\n\r\n')) {
        head += d.toString('latin1')
        const end = head.indexOf('\r\n\r\n')
        if (end >= 0) body += head.length - end - 4
      } else body += d.length
      if (body === DECLARED) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    s.on('close', () => (closed = true))
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  h.track(() => void server.close())
  return { port: (server.address() as { port: number }).port, bodyBytes: () => body, closed: () => closed }
}

/** A proxy over TLS in front of a counting origin, and a POST on stream 1 whose DATA add up to its content-length, not ended: the origin has all but one byte. */
async function uploadAllButTheEnd(): Promise<{ origin: Awaited<ReturnType<typeof countingOrigin>>; c: RawH2Tls }> {
  const origin = await countingOrigin()
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const c = await RawH2Tls.connect(h, proxy.port, certs.ca)
  c.send(c.request(1, 'POST', '/up', [['content-length', String(DECLARED)]], false))
  await c.sendBody(1, DECLARED, false)
  expect(await waitFor(() => origin.bodyBytes() === DECLARED - 1, 5000)).toBe(true)
  return { origin, c }
}

const ENDINGS = [
  ['RST_STREAM CANCEL', (c: RawH2Tls) => c.send(frame(FrameType.RST_STREAM, 0, 1, new Uint8Array([0, 0, 0, 8])))],
  ['a byte more than content-length', (c: RawH2Tls) => c.send(c.data(1, 'x', true))],
  ['the connection dropped', (c: RawH2Tls) => c.destroy()],
] as const

for (const [name, ending] of ENDINGS) {
  test(`a streamed upload whose content-length is complete, then ${name}: the origin gets one byte short, never the whole request`, async () => {
    const { origin, c } = await uploadAllButTheEnd()
    await Bun.sleep(100) // the last byte would be on its way by now
    expect(origin.bodyBytes()).toBe(DECLARED - 1)
    ending(c)
    expect(await waitFor(() => origin.closed(), 5000)).toBe(true)
    expect(origin.bodyBytes()).toBe(DECLARED - 1)
  })
}

test('the same upload ended by an empty DATA frame with END_STREAM: the held byte goes on and the answer comes back', async () => {
  const { origin, c } = await uploadAllButTheEnd()
  c.send(c.data(1, '', true))
  expect(await waitFor(() => c.ended(1), 5000)).toBe(true)
  expect(c.statuses(1)).toEqual(['200'])
  expect(origin.bodyBytes()).toBe(DECLARED)
})
