/**
 * `proxy bench --http2` against nginx with http2: ALPN h2, -c connections carrying -m streams
 * each (counted per connection by nginx's own log), connection phases once per connection and
 * wait/transfer per stream, the same request and connection counts as h2load with the same
 * flags, a clear note when the server does not negotiate h2, --vs across protocols, and
 * answers that are not whole (DATA cut short, a stream ended with no response HEADERS).
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { spawn, spawnSync } from 'node:child_process'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { makeCerts } from '../support/certs.ts'
import { oneAnswerTlsOrigin } from '../support/tls-origin.ts'
import { Nginx, nginxAvailable } from './nginx.ts'
import { bench } from './run-bench.ts'

const closers: (() => void)[] = []
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c()
})


const certs = () => makeCerts(['h2.test'], ['127.0.0.1'])

async function nginx(http2: boolean, keepaliveRequests?: number): Promise<{ ng: Nginx; args: string[]; url: string }> {
  const c = certs()
  const ng = await new Nginx().start({ cert: c.cert, key: c.key, http2, protocols: 'TLSv1.2 TLSv1.3', keepaliveRequests })
  closers.push(() => ng.close())
  const url = `https://h2.test:${ng.port}/`
  return { ng, url, args: [url, '--resolve', `h2.test:${ng.port}:127.0.0.1`, '--cacert', c.caFile] }
}

/** Per nginx connection id, how many requests it carried (once the log has `n` lines). */
async function perConnection(ng: Nginx, n: number): Promise<number[]> {
  const counts = new Map<string, number>()
  for (const l of await ng.linesWhen(n)) counts.set(l.connection, (counts.get(l.connection) ?? 0) + 1)
  return [...counts.values()].sort((a, b) => a - b)
}

test('-m without --http2 is a usage error; --http2 on http:// says it is timed over HTTP/1.1', async () => {
  expect((await bench(['https://127.0.0.1:1/', '-m', '4'])).code).toBe(ExitCode.USAGE)
  const s = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  closers.push(() => void s.stop(true))
  const r = await bench([`http://127.0.0.1:${s.port}/`, '--http2', '-n', '2', '--json'])
  expect(r.code).toBe(0)
  expect(r.err).toContain('h2 is offered by ALPN over TLS only')
  expect(r.json.requests).toBe(2)
})

describe.skipIf(!nginxAvailable())('against nginx with http2', () => {
  test('ALPN h2; -c 2 -m 5: two connections, five streams in flight on each; phases where they belong', async () => {
    const { ng, args } = await nginx(true)
    const r = await bench([...args, '--http2', '-n', '100', '-c', '2', '-m', '5', '--json'])
    expect(r.code).toBe(0)
    expect(r.json.connection.alpn).toBe('h2')
    expect(r.json.requests).toBe(100)
    expect(r.json.status).toEqual({ '200': 100 })
    expect(r.json.streams).toBe(5)
    expect(r.json.connections.opened).toBe(2)
    expect(r.json.connections.max_streams_in_flight).toBe(5)
    // nginx's own view: every request over HTTP/2.0, on two connections that add up to 100.
    const log = await ng.linesWhen(100)
    expect(log).toHaveLength(100)
    expect(log.every((l) => l.protocol === 'HTTP/2.0')).toBe(true)
    const counts = await perConnection(ng, 100)
    expect(counts).toHaveLength(2)
    expect(counts[0]! + counts[1]!).toBe(100)
    expect([r.json.connections.requests_per_connection.min, r.json.connections.requests_per_connection.max]).toEqual(counts)
    // Connection phases once per connection; wait and transfer for every stream.
    expect(r.json.cold.requests).toBe(2)
    expect(r.json.warm.requests).toBe(98)
    for (const p of ['connect', 'tls']) expect(r.json.cold.phases[p].n).toBe(2)
    for (const p of ['dns', 'connect', 'tls']) expect(r.json.warm.phases[p]).toBeUndefined()
    expect(r.json.phases.wait.n).toBe(100)
    expect(r.json.phases.transfer.n).toBe(100)
    // Plausible: positive, and no stream's wait + transfer exceeds its total.
    expect(r.json.phases.wait.min).toBeGreaterThan(0)
    expect(r.json.phases.total.max).toBeGreaterThanOrEqual(r.json.phases.wait.max)
    expect(r.json.cold.phases.total.min).toBeGreaterThan(r.json.cold.phases.tls.min)
  })

  test('the same request and connection counts as h2load with the same flags', async () => {
    if (spawnSync('sh', ['-c', 'command -v h2load']).status !== 0) {
      console.warn('skipped: h2load is not installed (apt-get install nghttp2-client)')
      return
    }
    const { ng, args } = await nginx(true)
    const ours = await bench([...args, '--http2', '-n', '60', '-c', '3', '-m', '4', '--json'])
    const oursCounts = await perConnection(ng, 60)
    ng.clearLog()
    const h2load = await new Promise<string>((resolve) => {
      const c = spawn('h2load', ['-n', '60', '-c', '3', '-m', '4', `https://127.0.0.1:${ng.port}/`])
      let out = ''
      c.stdout.on('data', (d: Buffer) => (out += d.toString()))
      const timer = setTimeout(() => c.kill('SIGKILL'), 20_000)
      c.on('close', () => (clearTimeout(timer), resolve(out)))
    })
    expect(h2load).toContain('Application protocol: h2')
    const done = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded/.exec(h2load)
    expect(Number(done![3])).toBe(ours.json.requests - ours.json.errors)
    const theirCounts = await perConnection(ng, 60)
    expect(ng.lines().every((l) => l.protocol === 'HTTP/2.0')).toBe(true)
    expect(theirCounts.length).toBe(oursCounts.length)
    expect(theirCounts.reduce((a, b) => a + b, 0)).toBe(oursCounts.reduce((a, b) => a + b, 0))
    expect(ours.json.connections.opened).toBe(3)
  })

  test('GOAWAY after N requests: streams the server did not process are sent again on a new connection, never errors', async () => {
    const { ng, args } = await nginx(true, 10)
    const r = await bench([...args, '--http2', '-n', '100', '-c', '1', '-m', '6', '--json'])
    expect(r.code).toBe(0)
    expect(r.json.errors).toBe(0)
    expect(r.json.requests).toBe(100)
    expect(await ng.linesWhen(100)).toHaveLength(100) // each request processed once
    expect(r.json.connections.retried_unprocessed).toBeGreaterThan(0)
    expect(r.json.connections.requests_per_connection.max).toBe(10)
    expect(r.json.connections.opened).toBe((await perConnection(ng, 100)).length)
    expect(r.json.resumed.requests).toBe(r.json.connections.opened - 1) // every new connection after the first resumed
  })

  test('a server without h2: says so, and times HTTP/1.1 one request at a time', async () => {
    const { ng, args } = await nginx(false)
    const r = await bench([...args, '--http2', '-n', '20', '-c', '2', '-m', '5', '--json'])
    expect(r.code).toBe(0)
    expect(r.err).toContain('did not negotiate h2 (ALPN: http/1.1)')
    expect(r.json.connection.alpn).toBe('http/1.1')
    expect(r.json.requests).toBe(20)
    expect(r.json.errors).toBe(0)
    expect(r.json.connections.max_streams_in_flight).toBe(1)
    const log = await ng.linesWhen(20)
    expect(log).toHaveLength(20)
    expect(log.every((l) => l.protocol === 'HTTP/1.1')).toBe(true)
  })

  test('--vs across protocols: HTTP/1.1 (A) against h2 (B) on the same server', async () => {
    const { ng, args, url } = await nginx(true)
    const r = await bench([...args, '--vs', url, '--vs-http2', '-n', '20', '--json'])
    expect(r.code).toBe(0)
    expect(r.json.a.connection.alpn).toBe('http/1.1')
    expect(r.json.b.connection.alpn).toBe('h2')
    expect(r.json.comparison.phases.total.ci95).toHaveLength(2)
    const protocols = (await ng.linesWhen(40)).map((l) => l.protocol)
    expect(protocols.filter((p) => p === 'HTTP/1.1')).toHaveLength(20)
    expect(protocols.filter((p) => p === 'HTTP/2.0')).toHaveLength(20)
  })
})

test('an HTTP/2 answer whose DATA stops short of its content-length is an error, not a success', async () => {
  // node:http2's server (Bun's own): 5,000 bytes of a declared 100,000, then a reset.
  const { createSecureServer, constants } = await import('node:http2')
  const c = makeCerts(['h2.test'], ['127.0.0.1'])
  const server = createSecureServer({ key: c.key, cert: c.cert })
  server.on('stream', (s: import('node:http2').ServerHttp2Stream) => {
    s.on('error', () => {})
    s.respond({ ':status': 200, 'content-length': '100000' })
    s.write(Buffer.alloc(5000, 97))
    setTimeout(() => s.close(constants.NGHTTP2_INTERNAL_ERROR), 20)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  closers.push(() => void server.close())
  const port = (server.address() as { port: number }).port
  const r = await bench([`https://h2.test:${port}/`, '--resolve', `h2.test:${port}:127.0.0.1`, '--cacert', c.caFile, '--http2', '-n', '2', '--json'])
  expect(r.json.errors).toBe(2)
  expect(r.json.errors_by_kind).toEqual({ ECONNRESET: 2 })
  expect(r.code).toBe(ExitCode.BENCH_FAILED)
})

/**
 * A raw h2 server over TLS (node:tls, ALPN h2) that answers each request's HEADERS with the
 * frames `reply` gives for its stream id, and nothing else: for answers no h2 library sends.
 */
async function rawH2(reply: (streamId: number) => Buffer): Promise<{ url: string; args: string[] }> {
  const { createServer } = await import('node:tls')
  const c = makeCerts(['h2.test'], ['127.0.0.1'])
  const sockets = new Set<import('node:tls').TLSSocket>()
  const server = createServer({ key: c.key, cert: c.cert, ALPNProtocols: ['h2'] }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = Buffer.alloc(0)
    let preface = false
    s.write(h2Frame(4, 0, 0, Buffer.alloc(0)))
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (!preface) {
        if (buf.length < 24) return
        buf = buf.subarray(24)
        preface = true
      }
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const length = buf.readUIntBE(0, 3)
        const [type, flags, id] = [buf[3]!, buf[4]!, buf.readUInt32BE(5) & 0x7fffffff]
        buf = buf.subarray(9 + length)
        if (type === 4 && !(flags & 1)) s.write(h2Frame(4, 1, 0, Buffer.alloc(0))) // SETTINGS ACK
        if (type === 1) s.write(reply(id)) // HEADERS
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  closers.push(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const port = (server.address() as { port: number }).port
  const url = `https://h2.test:${port}/`
  return { url, args: [url, '--resolve', `h2.test:${port}:127.0.0.1`, '--cacert', c.caFile, '--http2'] }
}

function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

describe('an HTTP/2 stream that ends with no response HEADERS is an error, not a success with status 0', () => {
  test('RST_STREAM(NO_ERROR) right after the request', async () => {
    const { args } = await rawH2((id) => h2Frame(3, 0, id, Buffer.alloc(4))) // RST_STREAM, code 0
    const r = await bench([...args, '-n', '2', '--json'])
    expect(r.json.status).toEqual({})
    expect(r.json.errors).toBe(2)
    expect(r.json.errors_by_kind).toEqual({ ECONNRESET: 2 })
    expect(r.code).toBe(ExitCode.BENCH_FAILED)
  })

  test('DATA with END_STREAM and no HEADERS before it (RFC 9113 §8.1)', async () => {
    const { args } = await rawH2((id) => h2Frame(0, 1, id, Buffer.from('hi')))
    const r = await bench([...args, '-n', '2', '--json'])
    expect(r.json.status).toEqual({})
    expect(r.json.errors).toBe(2)
    expect(r.code).toBe(ExitCode.BENCH_FAILED)
  })

  test('the same server answering with HEADERS (:status 200) and DATA is a success', async () => {
    // 0x88: ":status: 200" from the HPACK static table (RFC 7541 Appendix A, index 8).
    const { args } = await rawH2((id) => Buffer.concat([h2Frame(1, 4, id, Buffer.from([0x88])), h2Frame(0, 1, id, Buffer.from('ok'))]))
    const r = await bench([...args, '-n', '2', '--json'])
    expect(r.json.status).toEqual({ '200': 2 })
    expect(r.json.errors).toBe(0)
    expect(r.json.connection.alpn).toBe('h2')
    expect(r.code).toBe(ExitCode.OK)
  })
})

test('a TLS server that negotiates no protocol at all (no ALPN): the bench says it was timed over HTTP/1.1', async () => {
  const c = certs()
  const port = await oneAnswerTlsOrigin({ key: c.key, cert: c.cert }, () => {}, (close) => closers.push(close))
  const r = await bench([`https://h2.test:${port}/`, '--resolve', `h2.test:${port}:127.0.0.1`, '--cacert', c.caFile, '--http2', '-n', '2', '--no-keepalive', '--json'])
  expect(r.code).toBe(0)
  expect(r.json.errors).toBe(0)
  expect(r.json.connection.alpn).toBeUndefined()
  expect(r.err).toContain('did not negotiate h2 (ALPN: none); it was timed over HTTP/1.1')
})
