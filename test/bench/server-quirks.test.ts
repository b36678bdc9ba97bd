/**
 * `proxy bench` against servers that do what real ones do at the edges of HTTP/1.1: close a
 * kept-alive connection as the next request goes out, frame a body with a coding before chunked,
 * answer an upload before it is all sent. Raw-socket origins on loopback (test/support/raw-origin.ts).
 */
import { afterEach, expect, test } from 'bun:test'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type Socket } from 'node:net'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { RawOrigin, type RawAnswer } from '../support/raw-origin.ts'
import { testDir } from '../support/temp-dir.ts'
import { bench } from './run-bench.ts'

const origins: RawOrigin[] = []
afterEach(() => {
  for (const o of origins.splice(0)) o.close()
})

async function origin(answer: RawAnswer): Promise<RawOrigin> {
  const o = await RawOrigin.start(answer)
  origins.push(o)
  return o
}

/** Answers the first request on each connection (kept alive) and closes at the second, as a server whose idle timeout ran out as it arrived. */
async function closesAtSecond(): Promise<RawOrigin> {
  const seen = new WeakMap<Socket, number>()
  return origin((_req, s) => {
    const n = (seen.get(s) ?? 0) + 1
    seen.set(s, n)
    if (n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    else s.destroy()
  })
}

test('a kept-alive connection closed as the next request goes out: an idempotent request is sent again on a new one, as curl does (outside review, thirteenth round)', async () => {
  const o = await closesAtSecond()
  const r = await bench([`http://127.0.0.1:${o.port}/`, '-n', '5', '-c', '1', '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(r.json.requests).toBe(5)
  expect(r.json.errors).toBe(0)
  expect(r.json.status).toEqual({ '200': 5 })
  // Requests 2..5 each met a closed connection first.
  expect(r.json.connections.retried_unprocessed).toBe(4)
  expect(o.requests.length).toBe(9)
})

test('a POST on such a connection is not sent again (RFC 9110 §9.2.2): it is an error', async () => {
  const o = await closesAtSecond()
  const r = await bench([`http://127.0.0.1:${o.port}/`, '-X', 'POST', '--data', 'x', '-n', '2', '-c', '1', '--json'])
  expect(r.json.requests).toBe(2)
  expect(r.json.errors).toBe(1)
  expect(Object.keys(r.json.errors_by_kind)).toEqual(['CLOSED_EARLY'])
  expect(o.requests.length).toBe(2)
})

test('Transfer-Encoding: gzip, chunked is read as chunked, and a coding last as a body to the close (RFC 9112 §6.3)', async () => {
  const o = await origin((req, s) => {
    if (req.target === '/chunked') s.write('HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n')
    else s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0123456789')
  })
  const dir = testDir('bench-codings')
  const samples = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { bytes: number; status: number })
  const r = await bench([`http://127.0.0.1:${o.port}/chunked`, '-n', '2', '-c', '1', '--samples', join(dir, 'a.jsonl'), '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(r.json.errors).toBe(0)
  expect(samples('a.jsonl').map((x) => x.bytes)).toEqual([8, 8])
  // Chunked framing kept the connection: both on one.
  expect(o.accepted.length).toBe(1)
  const close = await bench([`http://127.0.0.1:${o.port}/close`, '-n', '1', '--samples', join(dir, 'b.jsonl'), '--json'])
  expect(close.code).toBe(ExitCode.OK)
  expect(samples('b.jsonl').map((x) => x.bytes)).toEqual([10])
  const twice = await origin((_req, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'))
  const bad = await bench([`http://127.0.0.1:${twice.port}/`, '-n', '1', '--json'])
  expect(bad.json.errors_by_kind).toEqual({ BAD_RESPONSE: 1 })
})

test('an answer before the upload is all written: WAIT is 0, not negative, and the connection is not used again', async () => {
  const file = join(testDir('bench-early'), 'big.bin')
  writeFileSync(file, Buffer.alloc(32 * 1024 * 1024, 0x61))
  const sockets: Socket[] = []
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.once('data', () => {
      s.pause()
      s.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  try {
    const port = (server.address() as { port: number }).port
    const r = await bench([`http://127.0.0.1:${port}/`, '--data-binary', `@${file}`, '-n', '2', '-c', '1', '--timeout', '5s', '--json'])
    expect(r.json.errors).toBe(0)
    expect(r.json.status).toEqual({ '413': 2 })
    expect(r.json.phases.wait.min).toBeGreaterThanOrEqual(0)
    // The rest of the first upload was still queued: the second request had a connection of its own.
    expect(r.json.connections.opened).toBe(2)
  } finally {
    for (const s of sockets) s.destroy()
    server.close()
  }
})
