/**
 * The HTTP/1.1 reply writer (proxy/downstream/reply-writer.ts) against a socket that takes only
 * what it is allowed to: a large whole body (a cache hit) is handed over as views of the stored
 * bytes, a slice at a time once the socket has taken the last, never as a copy of the whole body
 * after its head, which a slow reader kept alive until it had read it all. Framing and bytes are
 * those of the one-send path. No network, no timers.
 */
import { expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { StoredReply } from '../../../src/proxy/cache/stored-reply.ts'
import type { ProxyReply } from '../../../src/proxy/message.ts'
import { ReplyWriter } from '../../../src/proxy/downstream/reply-writer.ts'

/** A socket that takes at most `budget` bytes until given more; records every write it is asked. */
function tightSocket() {
  const asked: Uint8Array[] = []
  const taken: Uint8Array[] = []
  const sock = {
    budget: 16 * 1024,
    ended: false,
    write(data: Uint8Array): number {
      asked.push(data)
      const n = Math.min(data.byteLength, sock.budget)
      sock.budget -= n
      if (n > 0) taken.push(data.slice(0, n))
      return n
    },
    end() {
      sock.ended = true
    },
  }
  return { sock, asked, received: () => Buffer.concat(taken) }
}

/** Lets the socket take `bytes` more and tells the writer, as Bun's drain event does, until `done` or a bounded number of rounds. */
async function drainUntil(writer: ReplyWriter, sock: { budget: number }, done: () => boolean, bytes = 64 * 1024): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) {
    sock.budget += bytes
    writer.onDrain()
    await Bun.sleep(0)
  }
}

const body = new Uint8Array(4 * 1024 * 1024).map((_, i) => i % 251)

for (const [name, make] of [
  ['a stored reply (its own head encoder)', () => new StoredReply(200, 'OK', [['content-type', 'application/octet-stream']], '3', body.byteLength, 'id-1', 'proxy; hit', body)],
  ['a reply written from its list', () => ({ status: 200, statusText: 'OK', headers: [['content-type', 'application/octet-stream']], body }) as ProxyReply],
] as const) {
  test(`${name}: a 4 MiB whole body goes in views of the stored bytes, a slice per drain, then ends`, async () => {
    const { sock, asked, received } = tightSocket()
    const writer = new ReplyWriter(sock, { sendTimeoutMs: 0 }, () => {})
    let ended: string | undefined
    writer.writeReply(make(), 'GET', 1, false, (end) => (ended = end))
    await Bun.sleep(0)
    // The client takes nothing more: what the writer asked of the socket is the head and at most one slice.
    expect(ended).toBeUndefined()
    const largest = Math.max(...asked.map((a) => a.byteLength))
    expect(largest).toBeLessThanOrEqual(64 * 1024 + 1024)
    expect(asked.filter((a) => a.byteLength > 1024).every((a) => a.buffer === body.buffer)).toBe(true)
    await drainUntil(writer, sock, () => ended !== undefined)
    expect(ended).toBe('done')
    const all = received()
    const headEnd = all.indexOf('\r\n\r\n') + 4
    const head = all.subarray(0, headEnd).toString('latin1')
    expect(head).toContain(`content-length: ${body.byteLength}\r\n`)
    expect(head).not.toContain('transfer-encoding')
    expect(Buffer.compare(all.subarray(headEnd), Buffer.from(body))).toBe(0)
    expect(writer.flushed).toBe(true)
  })
}

test('a small whole body still goes with its head in one send', async () => {
  const { sock, asked } = tightSocket()
  const writer = new ReplyWriter(sock, { sendTimeoutMs: 0 }, () => {})
  let ended: string | undefined
  writer.writeReply({ status: 200, statusText: 'OK', headers: [], body: 'hello' }, 'GET', 1, false, (end) => (ended = end))
  expect(ended).toBe('done')
  writer.sendBatch()
  expect(asked.length).toBe(1)
  expect(Buffer.from(asked[0]!).toString('latin1')).toEndWith('\r\n\r\nhello')
})
