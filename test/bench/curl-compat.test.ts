/**
 * `proxy bench` flags written as for curl, each checked against curl 7.88 on loopback (curl -v
 * against a local server): `--resolve '*:port:addr'` (any host on that port; the host's own
 * entry wins); -H "Name:" (not sent, and the bench's own field of that name removed) and -H
 * "Name;" (sent empty); --data and --data-binary pieces joined with "&" in the order written.
 * Names are pinned or in /etc/hosts (localhost): no DNS query is sent.
 */
import { afterEach, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { createSecureServer } from 'node:http2'
import { join } from 'node:path'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { bench } from './run-bench.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())

test('--resolve "*:port:addr" pins every host on that port, as curl; the host\'s own entry wins in either order, and another port is not pinned', async () => {
  const hosts: string[] = []
  // On 127.0.0.2: reached only through a pin (localhost is 127.0.0.1 in /etc/hosts).
  const s = h.origin({ hostname: '127.0.0.2', fetch: (req) => (hosts.push(req.headers.get('host')!), new Response('ok')) })
  const where = (r: Awaited<ReturnType<typeof bench>>) => ({ status: r.json?.status, address: r.json?.connection?.remote_address })
  const pinned = await bench([`http://localhost:${s.port}/`, '--resolve', `*:${s.port}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(pinned)).toEqual({ status: { '200': 1 }, address: '127.0.0.2' })
  expect(hosts).toEqual([`localhost:${s.port}`])
  // An IP literal in the URL is pinned too (curl: "Trying 127.0.0.2" for http://127.0.0.1:port/).
  const literal = await bench([`http://127.0.0.1:${s.port}/`, '--resolve', `*:${s.port}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(literal)).toEqual({ status: { '200': 1 }, address: '127.0.0.2' })
  // The host's own entry wins over the wildcard, in either order.
  for (const order of [
    ['--resolve', `*:${s.port}:127.0.0.1`, '--resolve', `nowhere.test:${s.port}:127.0.0.2`],
    ['--resolve', `nowhere.test:${s.port}:127.0.0.2`, '--resolve', `*:${s.port}:127.0.0.1`],
  ]) {
    const r = await bench([`http://nowhere.test:${s.port}/`, ...order, '--timeout', '2s', '--json'])
    expect({ order, ...where(r) }).toEqual({ order, status: { '200': 1 }, address: '127.0.0.2' })
  }
  // Another port's wildcard does not apply: localhost is taken from /etc/hosts.
  const local = h.origin({ fetch: () => new Response('ok') })
  const localPort = local.port!
  const other = await bench([`http://localhost:${localPort}/`, '--resolve', `*:${localPort === 65535 ? 1 : localPort + 1}:127.0.0.2`, '--timeout', '2s', '--json'])
  expect(where(other)).toEqual({ status: { '200': 1 }, address: '127.0.0.1' })
})

test('-H "Name:" sends no such field and removes the bench\'s own (User-Agent, Accept, a body\'s Content-Type); -H "Name;" sends it empty, as curl', async () => {
  const seen: [string, string][][] = []
  const s = h.origin({ fetch: (req) => (seen.push([...req.headers].filter(([n]) => n !== 'host')), new Response('ok')) })
  const url = `http://127.0.0.1:${s.port}/`
  const sent = async (...flags: string[]) => {
    seen.length = 0
    const r = await bench([url, ...flags, '--timeout', '2s', '--json'])
    expect({ flags, status: r.json?.status }).toEqual({ flags, status: { '200': 1 } })
    return Object.fromEntries(seen[0]!)
  }
  expect(await sent('-H', 'User-Agent:', '-H', 'Accept:')).toEqual({})
  expect(await sent('-H', 'X-Foo;', '-H', 'Accept;')).toEqual({ 'user-agent': 'proxy-bench', 'x-foo': '', accept: '' })
  // A field given with a value stays: "Name:" removes only the bench's own.
  expect(await sent('-H', 'X-Foo: a', '-H', 'X-Foo:', '-H', 'X-Bar:')).toEqual({ 'user-agent': 'proxy-bench', accept: '*/*', 'x-foo': 'a' })
  expect(await sent('-H', 'Content-Type:', '--data', 'x')).toEqual({ 'user-agent': 'proxy-bench', accept: '*/*', 'content-length': '1' })
})

test('-H "Host:" alone, an empty Host, and removing Content-Length beside a body are usage errors; "Host:" with another Host sends that one', async () => {
  let hits = 0
  let host = ''
  const s = h.origin({ fetch: (req) => (hits++, (host = req.headers.get('host')!), new Response('ok')) })
  const url = `http://127.0.0.1:${s.port}/`
  // curl sends no Host, or "Host:", for these: a request an HTTP/1.1 server must refuse (RFC 9112 §3.2).
  for (const flags of [['-H', 'Host:'], ['-H', 'Host;'], ['-H', 'Host: '], ['-H', 'Content-Length:', '--data', 'x']]) {
    const r = await bench([url, ...flags, '--timeout', '2s'])
    expect({ flags, code: r.code }).toEqual({ flags, code: ExitCode.USAGE })
    expect(r.err).toContain(flags[1] === 'Content-Length:' ? '-H: "content-length" with a request body' : '-H: a request without Host, or with an empty one')
  }
  expect(hits).toBe(0)
  expect((await bench([url, '-H', 'Host:', '-H', 'Host: a.test', '--timeout', '2s', '--json'])).json?.status).toEqual({ '200': 1 })
  expect(host).toBe('a.test')
})

test('over HTTP/2 too: -H "User-Agent:" and "Accept:" remove the bench\'s own, -H "X-Foo;" sends it empty', async () => {
  const c = makeCerts(['h2.test'], ['127.0.0.1'])
  const seen: Record<string, string | string[] | undefined>[] = []
  const server = createSecureServer({ cert: c.cert, key: c.key }, (req, res) => {
    seen.push({ ...req.headers })
    res.end('ok')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  h.track(() => void server.close())
  const port = (server.address() as { port: number }).port
  const r = await bench([`https://h2.test:${port}/`, '--http2', '--resolve', `h2.test:${port}:127.0.0.1`, '--cacert', c.caFile, '-H', 'User-Agent:', '-H', 'Accept:', '-H', 'X-Foo;', '--timeout', '2s', '--json'])
  expect(r.json?.status).toEqual({ '200': 1 })
  expect([seen[0]?.['user-agent'], seen[0]?.accept, seen[0]?.['x-foo']]).toEqual([undefined, undefined, ''])
})

test('--data and --data-binary pieces are joined with "&" in the order written, and --data @file is read without CR and LF, as curl', async () => {
  const bodies: string[] = []
  const s = h.origin({ fetch: async (req) => (bodies.push(await req.text()), new Response('ok')) })
  const dir = testDir('bench-data-')
  h.track(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'body.txt')
  writeFileSync(file, 'f=1\nf=2\r\n')
  const cases: [string[], string][] = [
    [['--data', 'a=1', '--data-binary', 'b=2'], 'a=1&b=2'],
    [['--data-binary', 'b=2', '--data', 'a=1'], 'b=2&a=1'],
    [['--data', 'a', '--data', 'b'], 'a&b'],
    [['--data-binary', 'a', '--data-binary', 'b', '--data', '0123'], 'a&b&0123'],
    [['--data', 'x', '--data-binary', `@${file}`], 'x&f=1\nf=2\r\n'],
    // --data @file drops the file's CR and LF bytes (curl 7.88: "f=1f=2").
    [['--data', `@${file}`, '--data', 'y'], 'f=1f=2&y'],
  ]
  for (const [flags, want] of cases) {
    const r = await bench([`http://127.0.0.1:${s.port}/`, ...flags, '--timeout', '2s', '--json'])
    expect({ flags, status: r.json?.status, body: bodies.at(-1) }).toEqual({ flags, status: { '200': 1 }, body: want })
  }
})
