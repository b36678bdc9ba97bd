/**
 * HTTP/2 attacks through the proxy (issue 16; RFC 9113 §10.5): a raw h2 client on the proxy's TLS
 * listener (ALPN h2) sends each attack, and the test asserts that the attacker is cut off with
 * GOAWAY where the session's budget says so, that the upstream origin saw only a bounded number of
 * the attacker's requests (the rapid-reset budget, or SETTINGS_MAX_CONCURRENT_STREAMS), and that
 * another client, with a request in flight during the attack and a new one after it, gets 200.
 * The session-level budgets themselves are tested in test/http2/attacks.test.ts.
 */
import { afterEach, expect, test } from 'bun:test'
import { connect } from 'node:tls'
import { H2Code } from '../../src/http2/errors.ts'
import { frame, Flag, FrameType, PREFACE, rstStreamFrame, settingsFrame } from '../../src/http2/frames.ts'
import { HpackEncoder } from '../../src/http2/hpack.ts'
import { DEFAULT_LIMITS } from '../../src/http2/limits.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** An origin that counts requests per path; the attacker's path answers only after a second. */
function origin() {
  const seen = { attacker: 0, other: 0, connections: new Set<number>() }
  const server = h.origin({
    async fetch(req, srv) {
      seen.connections.add(srv.requestIP(req)?.port ?? 0)
      if (new URL(req.url).pathname === '/attack') {
        seen.attacker++
        await Bun.sleep(1000)
        return new Response('late')
      }
      seen.other++
      // The other client's request that is in flight while the attack runs.
      if (new URL(req.url).pathname === '/during') await Bun.sleep(500)
      return new Response('hello')
    },
  })
  return { server, seen }
}

function proxy(originPort: number, server: Record<string, unknown> = {}) {
  return h.proxy({ upstream: { url: `http://127.0.0.1:${originPort}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile, ...server } }).proxy
}

interface AttackResult {
  /** The GOAWAY's error code, if one came. */
  goaway?: number
  /** The proxy closed the connection before the attacker stopped waiting. */
  closedByProxy: boolean
  /** Streams the proxy refused with RST_STREAM REFUSED_STREAM. */
  refused: number
  /** Frames the attacker got written before the proxy stopped reading or closed. */
  sent: number
}

/**
 * Sends `parts` on one TLS connection negotiated as h2, each part in its own write and its own
 * turn of the event loop (so the proxy reads them one by one: the worst case for rapid reset, as
 * each stream reaches the request path before its reset arrives), then waits up to 5 s for the
 * proxy to close.
 */
async function attack(port: number, parts: Uint8Array[], waitCloseMs = 5000): Promise<AttackResult> {
  const result: AttackResult = { closedByProxy: false, refused: 0, sent: 0 }
  const sock = connect({ host: '127.0.0.1', port, ca: certs.ca, ALPNProtocols: ['h2'] })
  const closed = new Promise<void>((resolve) => {
    sock.on('close', () => resolve())
    sock.on('error', () => resolve())
  })
  const frames = new FrameSplitter()
  sock.on('data', (d: Buffer) => {
    frames.push(d, (f, bytes) => {
      const payload = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      if (f.type === FrameType.GOAWAY) result.goaway = payload.getUint32(4)
      if (f.type === FrameType.RST_STREAM && payload.getUint32(0) === H2Code.REFUSED_STREAM) result.refused++
    })
  })
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => (sock.alpnProtocol === 'h2' ? resolve() : reject(new Error(`ALPN chose ${sock.alpnProtocol}`))))
      sock.once('error', reject)
    })
    let done = false
    void closed.then(() => (done = true))
    for (const p of parts) {
      if (done) break
      if (!sock.write(p)) await Promise.race([new Promise((r) => sock.once('drain', r)), closed])
      result.sent++
      await new Promise((r) => setImmediate(r))
    }
    result.closedByProxy = await Promise.race([closed.then(() => true), Bun.sleep(waitCloseMs).then(() => false)])
  } finally {
    sock.destroy()
  }
  return result
}

const enc = () => new HpackEncoder(4096)
const request = (e: HpackEncoder, id: number, port: number) =>
  frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, e.encode([[':method', 'GET'], [':scheme', 'https'], [':authority', `127.0.0.1:${port}`], [':path', '/attack']]))

/** A well-behaved HTTP/2 client (curl) on its own connection; /during takes the origin half a second. */
async function curl(port: number, path = '/ok'): Promise<string> {
  const p = Bun.spawn(['curl', '-sS', '--http2', '--cacert', certs.caFile, '-w', ' %{http_code} %{http_version}', `https://127.0.0.1:${port}${path}`], { stdout: 'pipe', stderr: 'pipe', timeout: 15_000 })
  const out = await new Response(p.stdout).text()
  await p.exited
  return out
}

test('rapid reset (CVE-2023-44487): 3000 streams opened and cancelled one by one; the origin sees at most the reset budget, the attacker gets GOAWAY ENHANCE_YOUR_CALM, another client is served', async () => {
  const { server, seen } = origin()
  const p = proxy(server.port!)
  const during = curl(p.port, '/during')
  await Bun.sleep(100)
  const e = enc()
  const parts = [PREFACE, settingsFrame([])]
  for (let i = 0; i < 3000; i++) parts.push(request(e, 1 + 2 * i, p.port), rstStreamFrame(1 + 2 * i, H2Code.CANCEL))
  const r = await attack(p.port, parts)
  expect(r.goaway).toBe(H2Code.ENHANCE_YOUR_CALM)
  expect(r.closedByProxy).toBe(true)
  // What the operator sees of it: proxy_http2_connection_errors_total{code="ENHANCE_YOUR_CALM"}.
  expect(p.http2ConnectionErrors.ENHANCE_YOUR_CALM).toBe(1)
  // The budget cuts the connection long before its 3000 streams.
  expect(r.sent).toBeLessThan(parts.length)
  // Each stream reached the request path before its reset (one read each), and each cancel ends
  // its pooled HTTP/1.1 upstream connection mid-response: the budget for requests cancelled before
  // their answer (400 per 10 s: a browser leaving pages cancels a few hundred) bounds both what the
  // origin sees and the connections it gets.
  expect(seen.attacker).toBeLessThanOrEqual(DEFAULT_LIMITS.maxAbandonedPerWindow + 1)
  expect(seen.connections.size).toBeLessThanOrEqual(DEFAULT_LIMITS.maxAbandonedPerWindow + 3)
  console.log(`rapid reset: ${r.sent} of ${parts.length} frames written, origin saw ${seen.attacker} attacker requests over ${seen.connections.size} connections`)
  expect(await during).toBe('hello 200 2')
  expect(await curl(p.port)).toBe('hello 200 2')
  expect(seen.other).toBe(2)
}, 30_000)

test('stream flood: 1000 requests at once on one connection; the origin sees at most SETTINGS_MAX_CONCURRENT_STREAMS of them, the rest are refused, another client is served', async () => {
  const { server, seen } = origin()
  const p = proxy(server.port!, { http2_max_concurrent_streams: 16 })
  const e = enc()
  const parts = [PREFACE, settingsFrame([])]
  for (let i = 0; i < 1000; i++) parts.push(request(e, 1 + 2 * i, p.port))
  const attacking = attack(p.port, parts, 1500) // no GOAWAY expected: refusing is within the budget
  await Bun.sleep(200)
  expect(await curl(p.port)).toBe('hello 200 2')
  const r = await attacking
  expect(seen.attacker).toBeLessThanOrEqual(16)
  expect(r.refused).toBeGreaterThan(0)
  console.log(`stream flood: origin saw ${seen.attacker} attacker requests, ${r.refused} streams refused, GOAWAY ${r.goaway ?? 'none'}`)
  expect(await curl(p.port)).toBe('hello 200 2')
}, 30_000)

test.each([
  ['CONTINUATION flood of 16 KB frames (CVE-2024-27316)', 16_000],
  ['CONTINUATION flood of empty frames', 0],
])('%s: GOAWAY ENHANCE_YOUR_CALM, no request reaches the origin, another client is served', async (_, frameBytes) => {
  const { server, seen } = origin()
  const p = proxy(server.port!)
  const during = curl(p.port, '/during')
  await Bun.sleep(100)
  // An unfinished header block (no END_HEADERS) that CONTINUATION frames never end.
  const parts = [PREFACE, settingsFrame([]), frame(FrameType.HEADERS, Flag.END_STREAM, 1, enc().encode([[':method', 'GET'], [':scheme', 'https'], [':path', '/attack']]))]
  for (let i = 0; i < 2000; i++) parts.push(frame(FrameType.CONTINUATION, 0, 1, new Uint8Array(frameBytes).fill(0x41)))
  const r = await attack(p.port, parts)
  expect(r.goaway).toBe(H2Code.ENHANCE_YOUR_CALM)
  expect(r.closedByProxy).toBe(true)
  expect(r.sent).toBeLessThan(parts.length)
  expect(seen.attacker).toBe(0)
  expect(p.http2ConnectionErrors.ENHANCE_YOUR_CALM).toBe(1)
  expect(await during).toBe('hello 200 2')
  expect(await curl(p.port)).toBe('hello 200 2')
}, 30_000)
