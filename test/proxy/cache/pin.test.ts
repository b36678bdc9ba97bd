/**
 * Stored bodies pinned while cache hits stream them (store.ts pin/unpin, hit-body.ts): one no
 * longer stored stays charged to the budget until its last reader ends, read entries are not
 * evicted for nothing, and nothing is stored when readers hold the whole budget.
 */
import { describe, expect, test } from 'bun:test'
import { SLICE_BYTES } from '../../../src/http1/body-stream.ts'
import { pinnedSlices, pinWhileRead } from '../../../src/proxy/cache/hit-body.ts'
import { responseDirectives } from '../../../src/proxy/cache/policy.ts'
import { CacheStore, entryBytes, type CacheEntry } from '../../../src/proxy/cache/store.ts'

function entry(key: string, bodyBytes: number): CacheEntry {
  const body = new Uint8Array(bodyBytes)
  const headers: [string, string][] = []
  return { key, vary: { names: [], values: [] }, status: 200, statusText: 'OK', headers, body, requestTimeMs: 0, responseTimeMs: 0, responseWallMs: 0, rd: responseDirectives(headers), lifetimeMs: 1000, bytes: entryBytes(key, headers, body), refreshing: false }
}

describe('store: pinned bodies', () => {
  test('a purged body still read stays charged until its last reader unpins it, once', () => {
    const a = entry('http://a/1', 1000)
    const store = new CacheStore(a.bytes * 3)
    store.put(a)
    store.pin(a)
    store.pin(a)
    expect(store.pinnedBytes).toBe(0) // stored: charged as stored
    store.purgeKey(a.key)
    expect([store.bytes, store.pinnedBytes]).toEqual([0, a.bytes])
    store.unpin(a)
    expect(store.pinnedBytes).toBe(a.bytes) // one reader left
    store.unpin(a)
    expect(store.pinnedBytes).toBe(0)
  })

  test('pinned bytes count against the budget: the store evicts more to fit them', () => {
    const a = entry('http://a/1', 1000)
    const store = new CacheStore(a.bytes * 3)
    store.put(a)
    store.pin(a)
    store.purgeKey(a.key)
    for (let i = 2; i <= 4; i++) expect(store.put(entry(`http://a/${i}`, 1000))).toBe(true)
    expect(store.objects).toBe(2)
    expect(store.evictions).toBe(1)
    expect(store.bytes + store.pinnedBytes).toBeLessThanOrEqual(store.maxBytes)
    store.unpin(a)
    expect(store.put(entry('http://a/5', 1000))).toBe(true)
    expect(store.objects).toBe(3)
  })

  test('an entry being read is not evicted (it would free nothing); when readers hold everything, nothing new is stored', () => {
    const a = entry('http://a/1', 1000)
    const b = entry('http://a/2', 1000)
    const store = new CacheStore(a.bytes * 2)
    store.put(a)
    store.put(b)
    store.pin(a)
    store.pin(b)
    const c = entry('http://a/3', 1000)
    expect(store.put(c)).toBe(false)
    expect([store.has(a), store.has(b), store.has(c)]).toEqual([true, true, false])
    expect(store.evictions).toBe(0)
    store.unpin(a)
    expect(store.put(c)).toBe(true)
    expect([store.has(a), store.has(b), store.has(c)]).toEqual([false, true, true])
  })

  test('a body replaced by a new response while read stays charged beside it; the new one goes when there is no room', () => {
    const a = entry('http://a/1', 1000)
    const store = new CacheStore(a.bytes * 2)
    store.put(a)
    store.pin(a)
    const a2 = entry('http://a/1', 1000)
    expect(store.put(a2)).toBe(true)
    expect([store.bytes, store.pinnedBytes]).toEqual([a2.bytes, a.bytes])
    store.pin(a2)
    expect(store.put(entry('http://a/1', 1000))).toBe(false) // a and a2 both read: no room
    expect(store.pinnedBytes).toBe(a.bytes + a2.bytes)
    store.unpin(a)
    store.unpin(a2)
    expect(store.pinnedBytes).toBe(0)
  })

  test('a body first read from an entry a 304 replaced is still stored (the updated entry holds it): nothing is charged as pinned', () => {
    const a = entry('http://a/1', 1000)
    const store = new CacheStore(a.bytes * 3)
    store.put(a)
    // A 304 refreshed it (exchange.ts refreshed): a new entry, the same body, in its place.
    const updated: CacheEntry = { ...a, headers: [['etag', '"1"']] }
    updated.bytes = entryBytes(updated.key, updated.headers, updated.body)
    store.replace(a, updated)
    store.pin(a) // a hit answered from `a` before the 304, read after it
    store.pin(updated) // later hits keep the body read
    expect([store.bytes, store.pinnedBytes]).toEqual([updated.bytes, 0])
    store.unpin(a)
    store.remove(updated) // now it leaves the store while read: charged
    expect([store.bytes, store.pinnedBytes]).toEqual([0, updated.bytes])
    store.unpin(updated)
    expect(store.pinnedBytes).toBe(0)
  })

  test('a body evicted between the answer and its first read is charged from that read, and the store makes room', () => {
    const a = entry('http://a/1', 1000)
    const store = new CacheStore(a.bytes * 2)
    store.put(a)
    store.put(entry('http://a/2', 1000))
    store.put(entry('http://a/3', 1000)) // a evicted, unread
    expect(store.has(a)).toBe(false)
    store.pin(a)
    expect(store.objects).toBe(1)
    expect(store.bytes + store.pinnedBytes).toBeLessThanOrEqual(store.maxBytes)
    store.unpin(a)
    expect(store.pinnedBytes).toBe(0)
  })
})

describe('hit body: slices of the stored body, pinned while read', () => {
  const big = SLICE_BYTES * 3 + 100

  test('pinned from the first read to the end; the last SLICE_BYTES are a copy, the rest views', async () => {
    const a = entry('http://a/1', big)
    a.body.forEach((_, i) => (a.body[i] = i & 0xff))
    const store = new CacheStore(a.bytes * 2)
    store.put(a)
    const s = pinnedSlices(store, a, a.body)
    const r = s.getReader()
    store.purgeKey(a.key)
    expect(store.pinnedBytes).toBe(0) // nobody read yet: nothing held for a reader
    const first = await r.read()
    expect(store.pinnedBytes).toBe(a.bytes)
    expect(first.value!.buffer).toBe(a.body.buffer)
    const rest: Uint8Array[] = [first.value!]
    for (let n = await r.read(); !n.done; n = await r.read()) rest.push(n.value!)
    expect(store.pinnedBytes).toBe(0)
    const last = rest[rest.length - 1]!
    expect(last.byteLength).toBe(SLICE_BYTES)
    expect(last.buffer).not.toBe(a.body.buffer)
    const joined = new Uint8Array(big)
    let at = 0
    for (const c of rest) (joined.set(c, at), (at += c.byteLength))
    expect(Buffer.compare(joined, a.body)).toBe(0)
  })

  test('a cancel unpins once, whether before the end or after it; a stream never read pins nothing', async () => {
    const a = entry('http://a/1', big)
    const store = new CacheStore(a.bytes * 4)
    store.put(a)
    const one = pinnedSlices(store, a, a.body).getReader()
    const two = pinnedSlices(store, a, a.body).getReader()
    const unread = pinnedSlices(store, a, a.body)
    await one.read()
    await two.read()
    store.purgeKey(a.key)
    expect(store.pinnedBytes).toBe(a.bytes)
    await one.cancel()
    await one.cancel()
    expect(store.pinnedBytes).toBe(a.bytes) // the second reader still holds it
    let slices = 0
    for (let n = await two.read(); !n.done && slices < 100; n = await two.read()) slices++
    expect(slices).toBe(3) // read on to the end
    expect(store.pinnedBytes).toBe(0)
    await two.cancel()
    await unread.cancel()
    expect(store.pinnedBytes).toBe(0)
  })

  test('only a body the listener streams is pinned: small ones, and any for a listener that frames streams itself, stay whole', () => {
    const store = new CacheStore(1 << 30)
    const small = entry('http://a/s', SLICE_BYTES)
    const large = entry('http://a/l', big)
    const reply = (e: CacheEntry) => ({ status: 200, statusText: 'OK', headers: [], body: e.body as Uint8Array | ReadableStream<Uint8Array> })
    expect(pinWhileRead(reply(small), store, small, true).body).toBe(small.body)
    expect(pinWhileRead(reply(large), store, large, false).body).toBe(large.body)
    expect(pinWhileRead(reply(large), store, large, true).body).toBeInstanceOf(ReadableStream)
  })
})
