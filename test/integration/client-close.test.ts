/**
 * A client that closes its side between requests is answered with a close of ours, not a reset:
 * a FIN over TCP, and over TLS a close_notify before it (RFC 8446 §6.1: each party sends its own
 * close_notify), as nginx does. A reset can cost the client bytes it has not read yet, and a TLS
 * client sees it as an error. Each client reads its answer, ends, and records whether the
 * proxy's side ended cleanly or with ECONNRESET.
 */
import { afterEach, expect, test } from 'bun:test'
import net from 'node:net'
import tls from 'node:tls'
import { Flag, frame, FrameType, PREFACE, settingsFrame } from '../../src/http2/frames.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { concatBytes } from '../../src/lib/bytes.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

type Ending = 'end' | 'reset' | 'timeout'

/** Sends one request, waits for its whole answer, ends its side, and tells how the proxy's side ended. */
function askThenEnd(sock: net.Socket, connectEvent: string, request: string): Promise<{ answer: string; ending: Ending }> {
  return new Promise((resolve) => {
    let answer = ''
    let ending: Ending | undefined
    const timer = setTimeout(() => finish('timeout'), 5000)
    function finish(e: Ending) {
      if (ending) return
      ending = e
      clearTimeout(timer)
      sock.destroy()
      resolve({ answer, ending: e })
    }
    sock.once(connectEvent, () => sock.write(request))
    sock.on('data', (d) => {
      answer += d.toString('latin1')
      if (answer.endsWith('\r\n\r\nhello')) sock.end()
    })
    sock.on('end', () => finish('end'))
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'reset' : 'timeout'))
  })
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'

test('plain HTTP/1.1: a client that ends its side after its answer gets a FIN, not a reset', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
  for (let i = 0; i < 3; i++) {
    const r = await askThenEnd(net.connect(proxy.port, '127.0.0.1'), 'connect', REQUEST)
    expect(r.answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(r.ending).toBe('end')
  }
})

test('TLS: a client\'s close_notify is answered with the proxy\'s, not a reset', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  for (let i = 0; i < 3; i++) {
    const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['http/1.1'] })
    const r = await askThenEnd(sock, 'secureConnect', REQUEST)
    expect(r.answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(r.ending).toBe('end')
  }
})

test('HTTP/2: a client that sends GOAWAY and closes its side after its answer gets the proxy\'s close, not a reset', async () => {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
  const sock = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: await Bun.file(certs.caFile).text(), servername: 'proxy.test', ALPNProtocols: ['h2'] })
  const request = new HpackEncoder(4096).encode([[':method', 'GET'], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', '/']])
  const ending = await new Promise<Ending>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 5000)
    const rx = new FrameSplitter()
    let ended = false
    const finish = (e: Ending) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(e)
    }
    sock.once('secureConnect', () => {
      expect(sock.alpnProtocol).toBe('h2')
      sock.write(concatBytes([PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, request)]))
    })
    sock.on('data', (d: Buffer) =>
      rx.push(new Uint8Array(d), (fh) => {
        if (ended || fh.type !== FrameType.DATA || fh.streamId !== 1 || (fh.flags & Flag.END_STREAM) === 0) return
        ended = true
        sock.end(frame(FrameType.GOAWAY, 0, 0, new Uint8Array(8)))
      }),
    )
    sock.on('end', () => finish('end'))
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'reset' : 'timeout'))
  })
  expect(ending).toBe('end')
})
