/**
 * Ordered writes with backpressure (runtime/write-queue.ts), on a fake socket that takes what it
 * is told to: the unbatched queue sends at once; the batched one holds small writes for the end
 * of the round (one setImmediate), keeps the order of bytes, and stays honest about backpressure.
 */
import { expect, test } from 'bun:test'
import { WriteQueue } from '../../src/runtime/write-queue.ts'

class FakeSocket {
  sent: string[] = []
  ended = false
  /** Bytes the next write may take (Infinity: all). */
  room = Infinity
  write(data: Uint8Array): number {
    const n = Math.min(data.byteLength, this.room)
    if (this.room !== Infinity) this.room -= n
    if (n > 0) this.sent.push(new TextDecoder().decode(data.subarray(0, n)))
    return n
  }
  end(): void {
    this.ended = true
  }
}

const bytes = (s: string) => new TextEncoder().encode(s)
const nextRound = () => new Promise<void>((r) => setImmediate(r))

test('unbatched: sent at once, the rest queued until the drain', () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock)
  expect(q.write(bytes('ab'))).toBe(true)
  expect(sock.sent).toEqual(['ab'])
  sock.room = 1
  expect(q.write(bytes('cd'))).toBe(false)
  expect(q.write(bytes('ef'))).toBe(false)
  expect(sock.sent).toEqual(['ab', 'c'])
  sock.room = Infinity
  expect(q.flush()).toBe(true)
  expect(sock.sent.join('')).toBe('abcdef')
})

test('batched: small writes wait for the end of the round, then go in order', async () => {
  const a = new FakeSocket()
  const b = new FakeSocket()
  const qa = new WriteQueue(a, { batch: true })
  const qb = new WriteQueue(b, { batch: true })
  expect(qa.write(bytes('head'))).toBe(true)
  expect(qb.write(bytes('x'))).toBe(true)
  expect(qa.write(new Uint8Array(32 * 1024).fill(0x61))).toBe(true)
  expect(a.sent).toEqual([])
  expect(b.sent).toEqual([])
  expect(qa.empty).toBe(false)
  await nextRound()
  // What one socket was given in the round goes out in one send.
  expect(a.sent.length).toBe(1)
  expect(a.sent[0]!.slice(0, 5)).toBe('heada')
  expect(a.sent[0]!.length).toBe(4 + 32 * 1024)
  expect(b.sent).toEqual(['x'])
  expect(qa.empty).toBe(true)
})

test('batched: past 64 KiB held, what is held goes out with the write, and the socket answers', () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock, { batch: true })
  expect(q.write(bytes('head'))).toBe(true)
  expect(q.write(new Uint8Array(60 * 1024).fill(0x62))).toBe(true)
  expect(sock.sent).toEqual([])
  sock.room = 60 * 1024 + 4 + 10
  // Over the cap: the held bytes first, in order, then this write, partly taken: false.
  expect(q.write(new Uint8Array(8 * 1024).fill(0x63))).toBe(false)
  expect(sock.sent.length).toBe(2)
  expect(sock.sent[0]!.slice(0, 5)).toBe('headb')
  expect(sock.sent[0]!.length).toBe(4 + 60 * 1024)
  expect(sock.sent[1]).toBe('c'.repeat(10))
  expect(q.write(bytes('next'))).toBe(false)
})

test('batched: a large write with nothing held goes out at once and reports backpressure', () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock, { batch: true })
  sock.room = 10
  expect(q.write(new Uint8Array(65 * 1024))).toBe(false)
  expect(sock.sent.length).toBe(1)
})

test('batched: what the socket does not take when the batch goes is queued; the next write says false', async () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock, { batch: true })
  expect(q.write(bytes('0123456789'))).toBe(true)
  sock.room = 4
  await nextRound()
  expect(sock.sent).toEqual(['0123'])
  expect(q.write(bytes('ab'))).toBe(false)
  sock.room = Infinity
  expect(q.flush()).toBe(true)
  expect(sock.sent.join('')).toBe('0123456789ab')
})

test('batched: an end sends what is held first; clear drops it', async () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock, { batch: true })
  q.write(bytes('bye'))
  q.endWhenFlushed()
  expect(sock.sent).toEqual(['bye'])
  expect(sock.ended).toBe(true)

  const other = new FakeSocket()
  const q2 = new WriteQueue(other, { batch: true })
  q2.write(bytes('lost'))
  q2.clear()
  await nextRound()
  expect(other.sent).toEqual([])
})

test('batched: sendBatch hands the held bytes over now', () => {
  const sock = new FakeSocket()
  const q = new WriteQueue(sock, { batch: true })
  q.write(bytes('now'))
  q.sendBatch()
  expect(sock.sent).toEqual(['now'])
})
