/**
 * SNI toward an https upstream whose name is an IP literal (runtime/socket.ts): none is sent
 * (RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName"), and the
 * certificate is still verified against that IP (an IP SAN); a DNS name is sent as SNI. A DNS
 * name is matched against DNS subjectAltNames only, never the subject's Common Name (RFC 9525 §6.3).
 */
import { afterEach, expect, test } from 'bun:test'
import { dial, type DialError } from '../../src/runtime/socket.ts'
import { makeCerts } from '../support/certs.ts'
import { oneAnswerTlsOrigin } from '../support/tls-origin.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0)) c()
})

/** A TLS origin with `certs`; `sni` holds each request's SNI (false when none came). */
async function origin(certs: { cert: string; key: string }): Promise<{ port: number; sni: (string | false)[] }> {
  const sni: (string | false)[] = []
  const port = await oneAnswerTlsOrigin({ cert: certs.cert, key: certs.key }, (s) => sni.push(s.servername || false), (c) => closers.push(c))
  return { port, sni }
}

/** Dials, sends one request, and reads the answer to its end; the DialError when the dial fails. */
async function exchange(port: number, serverName: string, ca: string): Promise<string | DialError> {
  let conn
  try {
    conn = await dial({ address: '127.0.0.1', port, connectTimeoutMs: 5000, tls: { serverName, ca, rejectUnauthorized: true } })
  } catch (err) {
    return err as DialError
  }
  const c = conn
  return new Promise<string>((resolve) => {
    let text = ''
    c.handlers = { data: (d) => void (text += new TextDecoder().decode(d)), drain() {}, close: () => resolve(text) }
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  })
}

test('an IP name sends no SNI and is verified against the IP SAN; a DNS name is sent', async () => {
  const certs = makeCerts(['origin.test'], ['127.0.0.1'])
  const o = await origin(certs)
  expect(await exchange(o.port, '127.0.0.1', certs.ca)).toEndWith('ok')
  expect(await exchange(o.port, 'origin.test', certs.ca)).toEndWith('ok')
  expect(o.sni).toEqual([false, 'origin.test'])
})

test('without SNI, a certificate with no SAN for the IP still fails', async () => {
  const certs = makeCerts(['dns-only.test'], [])
  const o = await origin(certs)
  const err = await exchange(o.port, '127.0.0.1', certs.ca)
  expect((err as DialError).code).toBe('TLS_FAILED')
  expect(o.sni).toEqual([])
})

test('a DNS name found only in the Common Name fails (no SAN, or only an IP SAN); insecure lets it through', async () => {
  for (const certs of [makeCerts(['origin.test'], [], false), makeCerts(['origin.test'], ['127.0.0.1'], false)]) {
    const o = await origin(certs)
    const err = (await exchange(o.port, 'origin.test', certs.ca)) as DialError
    expect(err.code).toBe('TLS_FAILED')
    expect(err.message).toContain('only in its Common Name')
  }
  const cnOnly = makeCerts(['origin.test'], [], false)
  const o = await origin(cnOnly)
  const conn = await dial({ address: '127.0.0.1', port: o.port, connectTimeoutMs: 5000, tls: { serverName: 'origin.test', ca: cnOnly.ca, rejectUnauthorized: false } })
  conn.destroy()
})

test('an upstream name with a final dot is sent and verified without it, as curl does (RFC 6066 §3; eighteenth round of review)', async () => {
  const { resolveConfig } = await import('../../src/config/resolve.ts')
  const certs = makeCerts(['origin.test'], [])
  const o = await origin(certs)
  const byUrl = resolveConfig(undefined, { upstream: { url: `https://origin.test.:${o.port}` } }).upstreams.default!
  const byName = resolveConfig(undefined, { upstream: { url: `https://127.0.0.1:${o.port}`, tls_server_name: 'origin.test.' } }).upstreams.default!
  for (const u of [byUrl, byName]) expect(await exchange(o.port, u.tlsServerName, certs.ca)).toEndWith('ok')
  expect(o.sni).toEqual(['origin.test', 'origin.test'])
})

test('proxy bench sends a dotted name without its dot too', async () => {
  const { dial: benchDial } = await import('../../src/bench/dial.ts')
  const certs = makeCerts(['origin.test'], [])
  const o = await origin(certs)
  const target = { scheme: 'https' as const, host: 'origin.test.', port: o.port, path: '/', connectHost: 'origin.test.', connectPort: o.port, pinnedAddress: undefined }
  const lookup = async () => ({ addresses: [{ address: '127.0.0.1', family: 4 as const }], ttlMs: undefined, source: 'test' })
  const { socket } = await benchDial(target, { timeoutMs: 5000, insecure: false, ca: certs.ca, lookup }, { start: performance.now() }, ['http/1.1'])
  const answer = await new Promise<string>((resolve) => {
    let text = ''
    socket.on('data', (d: Buffer) => void (text += d.toString()))
    socket.on('close', () => resolve(text))
    socket.write('GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n')
  })
  expect(answer).toEndWith('ok')
  expect(o.sni).toEqual(['origin.test'])
})
