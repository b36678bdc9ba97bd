/**
 * ALPN toward an https upstream (runtime/socket.ts): the dial offers http/1.1 (RFC 7301 §3.1),
 * so an origin that speaks only h2 refuses the handshake (no_application_protocol) and the dial
 * fails TLS_FAILED rather than the origin answering HTTP/1.1 bytes with
 * an error page of its own that the proxy would pass on as the origin's answer.
 */
import { afterEach, expect, test } from 'bun:test'
import { dial, type DialError } from '../../src/runtime/socket.ts'
import { makeCerts } from '../support/certs.ts'
import { oneAnswerTlsOrigin } from '../support/tls-origin.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0)) c()
})

/** A TLS origin offering `protocols` by ALPN; `seen` holds each connection's negotiated protocol. */
async function origin(protocols: string[]): Promise<{ port: number; seen: (string | false | null)[] }> {
  const certs = makeCerts(['origin.test'])
  const seen: (string | false | null)[] = []
  const port = await oneAnswerTlsOrigin({ cert: certs.cert, key: certs.key, ALPNProtocols: protocols }, (s) => seen.push(s.alpnProtocol), (c) => closers.push(c))
  return { port, seen }
}

const tlsTo = (rejectUnauthorized: boolean) => ({ serverName: 'origin.test', ca: makeCerts(['origin.test']).ca, rejectUnauthorized })

test('the dial offers http/1.1 by ALPN; an origin that has it picks it', async () => {
  const o = await origin(['h2', 'http/1.1'])
  const conn = await dial({ address: '127.0.0.1', port: o.port, connectTimeoutMs: 5000, tls: tlsTo(true) })
  expect(conn.tlsInfo()?.alpn).toBe('http/1.1')
  // The origin's side, once it has the request.
  const answer = await new Promise<string>((resolve) => {
    let text = ''
    conn.handlers = { data: (c) => void (text += new TextDecoder().decode(c)), drain() {}, close: () => resolve(text) }
    conn.write('GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n')
  })
  expect(answer).toEndWith('ok')
  expect(o.seen).toEqual(['http/1.1'])
})

test.each([true, false])('an origin that speaks only h2 refuses the handshake: TLS_FAILED (rejectUnauthorized %p: insecure does not hide a refused handshake)', async (rejectUnauthorized) => {
  const o = await origin(['h2'])
  const err = (await dial({ address: '127.0.0.1', port: o.port, connectTimeoutMs: 5000, tls: tlsTo(rejectUnauthorized) }).then(
    (c) => {
      c.destroy()
      return undefined
    },
    (e: DialError) => e,
  )) as DialError | undefined
  expect(err?.code).toBe('TLS_FAILED')
  expect(err?.message).toContain('NO_APPLICATION_PROTOCOL')
  expect(o.seen).toEqual([])
})
