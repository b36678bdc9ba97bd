/** Vary keys, validation helpers, invalidation targets, the byte-bounded store and the streaming tee. */
import { describe, expect, test } from 'bun:test'
import { cacheKey, keyFromUrl } from '../../../src/proxy/cache/key.ts'
import { responseDirectives } from '../../../src/proxy/cache/policy.ts'
import { clientNotModified, invalidatedKeys, mergeNotModified, notModifiedSelects, storableHeaders } from '../../../src/proxy/cache/revalidate.ts'
import { CacheStore, entryBytes, type CacheEntry } from '../../../src/proxy/cache/store.ts'
import { BodyTee } from '../../../src/proxy/cache/tee.ts'
import { varyKeyFor, varyMatches, varyNames, type VaryKey } from '../../../src/proxy/cache/vary.ts'

type H = [string, string][]

describe('Vary (§4.1)', () => {
  const cases: [string, string, Record<string, string>, Record<string, string>, boolean][] = [
    ['same value', 'Accept-Encoding', { 'accept-encoding': 'gzip' }, { 'accept-encoding': 'gzip' }, true],
    ['other value', 'Accept-Encoding', { 'accept-encoding': 'gzip' }, { 'accept-encoding': 'br' }, false],
    ['whitespace in lists does not matter', 'accept-encoding', { 'accept-encoding': 'gzip,br' }, { 'accept-encoding': 'gzip ,  br' }, true],
    ['absent matches only absent', 'Accept-Language', {}, {}, true],
    ['Accept-Language: case and whitespace do not matter', 'Accept-Language', { 'accept-language': 'en, FR;q=0.5' }, { 'accept-language': 'EN,fr ; q=0.5' }, true],
    // Some servers read the order of equal weights as a preference (RFC 9110 §12.5.4).
    ['Accept-Language: order does', 'Accept-Language', { 'accept-language': 'en, fr' }, { 'accept-language': 'fr, en' }, false],
    ['Accept-Encoding: order does not', 'Accept-Encoding', { 'accept-encoding': 'gzip, br' }, { 'accept-encoding': 'BR,gzip' }, true],
    // Another field is compared as it came (but for whitespace at its ends): its syntax is not known.
    ['other fields: whitespace inside a quoted string matters', 'X-Name', { 'x-name': '"a  b"' }, { 'x-name': '"a b"' }, false],
    ['other fields: whitespace around = matters', 'X-Name', { 'x-name': 'k = v' }, { 'x-name': 'k=v' }, false],
    ['other fields: whitespace at the ends does not', 'X-Name', { 'x-name': 'k=v' }, { 'x-name': 'k=v\t' }, true],
    ['Accept-Language: q-values do', 'Accept-Language', { 'accept-language': 'en, fr;q=0.5' }, { 'accept-language': 'en;q=0.5, fr' }, false],
    ['other fields keep their case', 'X-Mode', { 'x-mode': 'A' }, { 'x-mode': 'a' }, false],
    ['absent vs present', 'Accept-Language', {}, { 'accept-language': 'en' }, false],
    ['present vs empty', 'Accept-Language', { 'accept-language': 'en' }, { 'accept-language': '' }, false],
    ['two names', 'Accept, Accept-Language', { accept: 'a', 'accept-language': 'en' }, { accept: 'a', 'accept-language': 'en' }, true],
    ['two names, one differs', 'Accept, Accept-Language', { accept: 'a', 'accept-language': 'en' }, { accept: 'a', 'accept-language': 'de' }, false],
    ['no Vary matches anything', '', { a: '1' }, { a: '2' }, true],
    // A hop-by-hop field never reaches the origin, so its value selects nothing (mutation test, twentieth round).
    ['Vary: TE: hop-by-hop, not sent on', 'TE', { te: 'trailers' }, {}, true],
    // Accept is compared as written: a parameter value may be case-sensitive (a variant more costs only a hit).
    ['Accept keeps its case', 'Accept', { accept: 'text/HTML' }, { accept: 'text/html' }, false],
  ]
  test.each(cases)('%s', (_n, vary, first, later, want) => {
    const names = varyNames(vary ? [['Vary', vary]] : [])
    expect(names).not.toBe('*')
    const key = varyKeyFor(names as string[], new Headers(first))
    expect(varyMatches(key, new Headers(later))).toBe(want)
  })

  test('Vary: * is reported, so it is never stored or matched', () => {
    expect(varyNames([['vary', 'Accept'], ['vary', '*']])).toBe('*')
  })
})

describe('validation and invalidation (§3.2, §4.3, §4.4)', () => {
  test('a 304 replaces the stored fields it carries, keeps the others, never changes Content-Length or hop-by-hop ones', () => {
    const stored: H = [['ETag', '"a"'], ['Cache-Control', 'max-age=1'], ['X-Old', 'keep'], ['Content-Type', 'text/plain']]
    const merged = mergeNotModified(stored, [['etag', '"a"'], ['cache-control', 'max-age=60'], ['content-length', '0'], ['connection', 'close'], ['x-new', 'n'], ['content-type', 'text/html']])
    const get = (n: string) => merged.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
    expect(get('cache-control')).toEqual(['max-age=60'])
    expect(get('x-old')).toEqual(['keep'])
    expect(get('x-new')).toEqual(['n'])
    expect(get('content-length')).toEqual([])
    expect(get('connection')).toEqual([])
    // The body is kept as received, so even Content-Type follows the 304 (§3.2).
    expect(get('content-type')).toEqual(['text/html'])
  })

  test('a 304\'s Set-Cookie is not merged: it answered one client\'s request, and the stored response answers everyone', () => {
    const merged = mergeNotModified([['etag', '"a"'], ['set-cookie', 'shared=1']], [['etag', '"a"'], ['set-cookie', 'session=alice']])
    expect(merged.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v)).toEqual(['shared=1'])
  })

  test.each([
    ['same strong tag', [['etag', '"a"']], [['etag', '"a"']], true],
    ['other tag', [['etag', '"a"']], [['etag', '"b"']], false],
    // RFC 9111 §4.3.4 with RFC 9110 §8.8.3.2 (outside review, fifteenth round: a strong "a" freshened a stored W/"a" and made it strong).
    ['a strong tag in the 304, the stored one weak', [['etag', 'W/"a"']], [['etag', '"a"']], false],
    ['a weak tag in the 304, the stored one strong', [['etag', '"a"']], [['etag', 'W/"a"']], true],
    ['the same weak tag', [['etag', 'W/"a"']], [['etag', 'W/"a"']], true],
    ['a strong tag in the 304, none stored', [['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']], [['etag', '"a"']], false],
    ['no validator in the 304', [['etag', '"a"']], [], true],
    ['same Last-Modified', [['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']], [['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']], true],
    ['other Last-Modified', [['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']], [['last-modified', 'Sun, 06 Nov 1994 08:49:38 GMT']], false],
  ] as [string, H, H, boolean][])('304 selects the stored response: %s', (_n, stored, nm, want) => {
    expect(notModifiedSelects(stored, nm)).toBe(want)
  })

  test.each([
    ['If-None-Match matches (weak comparison)', { 'if-none-match': 'W/"a"' }, true],
    ['If-None-Match list', { 'if-none-match': '"x", "a"' }, true],
    ['If-None-Match other', { 'if-none-match': '"b"' }, false],
    ['If-Modified-Since at Last-Modified', { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, true],
    ['If-Modified-Since before Last-Modified', { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:36 GMT' }, false],
    ['If-None-Match wins over If-Modified-Since', { 'if-none-match': '"b"', 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, false],
  ] as [string, Record<string, string>, boolean][])('client condition: %s', (_n, h, want) => {
    expect(clientNotModified(new Headers(h), [['etag', '"a"'], ['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']])).toBe(want)
  })

  // A comma may stand inside an entity-tag (etagc, RFC 9110 §8.8.3): the list is read tag by tag, not split on commas (outside sweep, twentieth session).
  test.each([
    ['the same tag holding a comma', 'W/"a,b"', '"a,b"', true],
    ['in a list', '"x", "a,b" ,W/"y"', 'W/"a,b"', true],
    ['only a part of it', '"a", "b"', '"a,b"', false],
    ['a part of another tag does not match', '"x,a"', '"a"', false],
    ['"*"', '*', '"a,b"', true],
    ['unquoted members are skipped', 'a,b, "c"', '"c"', true],
    ['an unclosed tag matches nothing', '"a,b', '"a,b"', false],
    ['"*" only as the whole value', '*x', '"a"', false],
    ['"*" inside a list is no member', '"b", *', '"a"', false],
    ['a tag with something glued after it is no member', '"a"junk, "b"', '"a"', false],
    ['space before the comma is fine', '"b" , "a" ', '"a"', true],
  ] as [string, string, string, boolean][])('If-None-Match with commas in tags: %s', (_n, inm, etag, want) => {
    expect(clientNotModified(new Headers({ 'if-none-match': inm }), [['etag', etag]])).toBe(want)
  })

  const base = 'http://example.com/items/1'
  test.each([
    ['GET invalidates nothing', 'GET', 200, [], []],
    ['POST 200: the target', 'POST', 200, [], [base]],
    ['POST 500: nothing', 'POST', 500, [], []],
    ['PUT 303 with Location on the same origin', 'PUT', 303, [['location', '/items']], [base, 'http://example.com/items']],
    ['DELETE with Content-Location elsewhere', 'DELETE', 204, [['content-location', 'http://other.example/x']], [base]],
    ['an unknown method counts as unsafe', 'PURGEX', 200, [['content-location', 'other?x=1']], [base, 'http://example.com/items/other?x=1']],
  ] as [string, string, number, H, string[]][])('%s', (_n, method, status, headers, want) => {
    expect(invalidatedKeys(method, status, base, headers)).toEqual(want)
  })

  test('stored fields lose hop-by-hop ones, those Connection lists, Content-Length and the request id', () => {
    const out = storableHeaders([['Connection', 'x-hop'], ['X-Hop', '1'], ['Keep-Alive', 't'], ['Content-Length', '3'], ['x-request-id', 'r'], ['Proxy-Authentication-Info', 'x'], ['Set-Cookie', 'a=1'], ['ETag', '"e"']])
    // Set-Cookie is stored: RFC 9111 does not exclude it (and the response had to be public to be stored).
    expect(out).toEqual([['Set-Cookie', 'a=1'], ['ETag', '"e"']])
  })

  test('keys: scheme and host lower-cased, default port dropped, path kept as sent', () => {
    expect(cacheKey('http', 'Example.COM:80', '/a/../B?x')).toBe('http://example.com/a/../B?x')
    expect(cacheKey('https', 'example.com:8443', '/')).toBe('https://example.com:8443/')
    expect(keyFromUrl('HTTP://Example.com:80/a?b=1')).toBe('http://example.com/a?b=1')
    expect(keyFromUrl('https://example.com')).toBe('https://example.com/')
    expect(keyFromUrl('ftp://example.com/')).toBeUndefined()
  })
})

function entry(key: string, bodyBytes: number, vary: VaryKey = { names: [], values: [] }): CacheEntry {
  const body = new Uint8Array(bodyBytes)
  const headers: H = []
  return { key, vary, status: 200, statusText: 'OK', headers, body, requestTimeMs: 0, responseTimeMs: 0, responseWallMs: 0, rd: responseDirectives(headers), lifetimeMs: 1000, bytes: entryBytes(key, headers, body), refreshing: false }
}

/** A store with room for three 1,000-byte entries, holding a, b and c (put in that order). */
function threeStored(): { store: CacheStore; a: CacheEntry; b: CacheEntry; c: CacheEntry } {
  const a = entry('http://a/1', 1000)
  const b = entry('http://a/2', 1000)
  const c = entry('http://a/3', 1000)
  const store = new CacheStore(a.bytes * 3)
  store.put(a)
  store.put(b)
  store.put(c)
  return { store, a, b, c }
}

describe('store: bounded by bytes, least recently used evicted', () => {
  test('evicts the least recently used once over budget, and counts it', () => {
    const { store, a, b, c } = threeStored()
    store.touch(a) // b is now the least recently used
    store.put(entry('http://a/4', 1000))
    expect(store.has(b)).toBe(false)
    expect(store.has(a)).toBe(true)
    expect(store.objects).toBe(3)
    expect(store.bytes).toBeLessThanOrEqual(store.maxBytes)
    expect(store.evictions).toBe(1)
  })

  test('an entry larger than the budget is refused; one variant per secondary key', () => {
    const store = new CacheStore(8000) // each small entry is charged about 1.6 KB (its objects: store.ts ENTRY_OVERHEAD_BYTES)
    expect(store.put(entry('http://a/big', 10_000))).toBe(false)
    const v1 = entry('http://a/v', 10, { names: ['accept'], values: ['a'] })
    const v2 = entry('http://a/v', 10, { names: ['accept'], values: ['b'] })
    const v1again = entry('http://a/v', 10, { names: ['accept'], values: ['a'] })
    store.put(v1)
    store.put(v2)
    store.put(v1again)
    expect(store.variants('http://a/v')).toEqual([v1again, v2])
  })

  test('purge by key drops every variant; by prefix every key under it', () => {
    const store = new CacheStore(1 << 20)
    store.put(entry('http://a/x', 1, { names: ['accept'], values: ['1'] }))
    store.put(entry('http://a/x', 1, { names: ['accept'], values: ['2'] }))
    store.put(entry('http://a/y/1', 1))
    store.put(entry('http://a/y/2', 1))
    store.put(entry('http://b/y/3', 1))
    expect(store.purgeKey('http://a/x')).toBe(2)
    expect(store.purgePrefix('http://a/y/')).toBe(2)
    expect(store.objects).toBe(1)
  })

  test('a 304 that adds fields grows the entry it refreshes: the least recently used others are evicted to stay within the budget, never it', () => {
    const { store, a, b, c } = threeStored()
    // c refreshed by a 304 carrying 500 bytes of fields (exchange.ts refreshed): a, the least recently used, must go.
    const headers: H = [['x-pad', 'p'.repeat(500)]]
    const updated: CacheEntry = { ...c, headers }
    updated.bytes = entryBytes(updated.key, headers, updated.body)
    store.replace(c, updated)
    expect(store.bytes).toBeLessThanOrEqual(store.maxBytes)
    expect([store.has(a), store.has(b), store.has(updated)]).toEqual([false, true, true])
    expect(store.evictions).toBe(1)
    expect(store.bytes).toBe(b.bytes + updated.bytes)
  })

  test('a refreshed entry that no longer fits beside entries being read is dropped, unless it is read itself (dropping it would free nothing)', () => {
    const a = entry('http://a/1', 1000)
    const b = entry('http://a/2', 1000)
    const store = new CacheStore(a.bytes * 2)
    store.put(a)
    store.put(b)
    store.pin(a) // a is being read: it cannot make room
    const headers: H = [['x-pad', 'p'.repeat(500)]]
    const grown = (e: CacheEntry): CacheEntry => {
      const u: CacheEntry = { ...e, headers }
      u.bytes = entryBytes(u.key, headers, u.body)
      return u
    }
    const b2 = grown(b)
    store.replace(b, b2)
    expect([store.has(a), store.has(b2)]).toEqual([true, false])
    expect([store.bytes, store.pinnedBytes, store.evictions]).toEqual([a.bytes, 0, 1])
    // Both read, and b grows: a cannot make room, and dropping b2 would only move its bytes to
    // pinned (the same sum), so it stays stored until the readers end and a later put evicts.
    expect(store.put(b)).toBe(true)
    store.pin(b)
    const b3 = grown(b)
    expect(store.replace(b, b3)).toBe(true)
    expect([store.has(a), store.has(b3)]).toEqual([true, true])
    expect([store.bytes, store.pinnedBytes]).toEqual([a.bytes + b3.bytes, 0])
    store.unpin(a)
    store.unpin(b)
    expect(store.put(entry('http://a/3', 10))).toBe(true)
    expect(store.bytes).toBeLessThanOrEqual(store.maxBytes)
  })
})

/** A body pushed chunk by chunk, recording how many chunks the tee has pulled. */
function source(chunks: number, size: number) {
  let pulled = 0
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(ctl) {
        if (pulled === chunks) return ctl.close()
        pulled++
        ctl.enqueue(new Uint8Array(size).fill(pulled % 256))
      },
    },
    { highWaterMark: 0 },
  )
  return { stream, pulled: () => pulled }
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0
  for await (const c of s) n += c.byteLength
  return n
}

describe('tee: one upstream body, many readers', () => {
  test('every reader gets the whole body, and it is stored when within the limit', async () => {
    const src = source(10, 1000)
    let stored: Uint8Array | undefined
    let abandoned = false
    const tee = new BodyTee(src.stream, { maxStoreBytes: 1 << 20, budget: { keptBytes: 0, maxKeptBytes: 1 << 30 }, windowBytes: 4096, onStored: (b) => (stored = b), onAbandoned: () => (abandoned = true) })
    const readers = [tee.reader(), tee.reader(), tee.reader()]
    expect(await Promise.all(readers.map(readAll))).toEqual([10_000, 10_000, 10_000])
    expect(stored?.byteLength).toBe(10_000)
    expect(stored![0]).toBe(1)
    expect(stored![9999]).toBe(10)
    expect(abandoned).toBe(false)
    expect(src.pulled()).toBe(10)
  })

  test('past the store limit it is not stored, and a reader that stops is cut a window behind: it no longer holds the others back', async () => {
    const src = source(1000, 1000) // 1 MB
    let stored = false
    let abandoned = false
    const tee = new BodyTee(src.stream, { maxStoreBytes: 5000, budget: { keptBytes: 0, maxKeptBytes: 1 << 30 }, windowBytes: 8000, onStored: () => (stored = true), onAbandoned: () => (abandoned = true) })
    const fast = tee.reader()
    const slow = tee.reader().getReader()
    await slow.read() // one chunk, then it stops reading
    // Before the twenty-third session the fast reader stopped a window ahead for as long as the slow one stayed.
    expect(await readAll(fast)).toBe(1_000_000)
    expect(abandoned).toBe(true)
    expect(tee.joinable).toBe(false)
    expect(src.pulled()).toBe(1000)
    expect(stored).toBe(false)
    // The slow reader's next read fails: its client sees a cut, never a short body as whole.
    const next = await slow.read().then(
      () => 'read',
      (err: Error) => err.message,
    )
    expect(next).toContain('fell more than the shared window behind')
  })

  test('a reader that trickles (a chunk every 400 ms: less than the window in 2 s) a window behind is cut too: it does not pace the others', async () => {
    const src = source(1000, 1000)
    const tee = new BodyTee(src.stream, { maxStoreBytes: 5000, budget: { keptBytes: 0, maxKeptBytes: 1 << 30 }, windowBytes: 8000, onStored: () => {}, onAbandoned: () => {} })
    const fast = tee.reader()
    const slow = tee.reader().getReader()
    let slowBytes = 0
    const trickle = (async () => {
      for (let i = 0; i < 1000; i++) {
        const r = await slow.read()
        if (r.done) return 'done'
        slowBytes += r.value!.byteLength
        await Bun.sleep(400)
      }
      return 'bound'
    })().catch((err: Error) => err.message)
    expect(await readAll(fast)).toBe(1_000_000)
    expect(await trickle).toContain('fell more than the shared window behind')
    expect(slowBytes).toBeLessThan(1_000_000)
  })

  test('a slower reader that takes a window every 2 s is not cut: it paces the others, as without a cache', async () => {
    const src = source(60, 1000)
    const tee = new BodyTee(src.stream, { maxStoreBytes: 5000, budget: { keptBytes: 0, maxKeptBytes: 1 << 30 }, windowBytes: 8000, onStored: () => {}, onAbandoned: () => {} })
    const fast = readAll(tee.reader())
    const slow = tee.reader().getReader()
    let slowBytes = 0
    // 1000 bytes every 100 ms: 20,000 in 2 s, more than the 8,000-byte window.
    for (let i = 0; i < 100; i++) {
      const r = await slow.read()
      if (r.done) break
      slowBytes += r.value!.byteLength
      await Bun.sleep(100)
    }
    expect(slowBytes).toBe(60_000)
    expect(await fast).toBe(60_000)
  })

  test('readers within the window of each other are not cut, whatever their pace', async () => {
    const src = source(200, 1000)
    const tee = new BodyTee(src.stream, { maxStoreBytes: 5000, budget: { keptBytes: 0, maxKeptBytes: 1 << 30 }, windowBytes: 8000, onStored: () => {}, onAbandoned: () => {} })
    const a = tee.reader().getReader()
    const b = tee.reader().getReader()
    // In lockstep, one chunk each in turn, with the second a few reads behind: never a window apart.
    let totalA = 0
    let totalB = 0
    for (let i = 0; i < 3; i++) totalA += (await a.read()).value!.byteLength
    for (let i = 0; i < 400; i++) {
      const ra = await a.read()
      if (!ra.done) totalA += ra.value!.byteLength
      const rb = await b.read()
      if (rb.done) break
      totalB += rb.value!.byteLength
    }
    expect([totalA, totalB]).toEqual([200_000, 200_000])
  })

  test('an upstream failure reaches every reader as an error, and nothing is stored', async () => {
    let n = 0
    const failing = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (n++ < 2) ctl.enqueue(new Uint8Array(10))
        else ctl.error(new Error('reset'))
      },
    })
    let stored = false
    let abandoned = false
    const budget = { keptBytes: 0, maxKeptBytes: 1 << 30 }
    const tee = new BodyTee(failing, { maxStoreBytes: 1 << 20, budget, windowBytes: 4096, onStored: () => (stored = true), onAbandoned: () => (abandoned = true) })
    const results = await Promise.allSettled([readAll(tee.reader()), readAll(tee.reader())])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(stored).toBe(false)
    expect(abandoned).toBe(true)
    expect(budget.keptBytes).toBe(0)
  })

  test('a reader behind when the upstream fails gets the error, not the chunks dropped with the body (no undefined chunk)', async () => {
    let n = 0
    let fail!: () => void
    const failed = new Promise<void>((r) => (fail = r))
    const failing = new ReadableStream<Uint8Array>(
      {
        async pull(ctl) {
          if (n++ < 3) return ctl.enqueue(new Uint8Array(10).fill(n))
          await failed
          ctl.error(new Error('reset'))
        },
      },
      { highWaterMark: 0 },
    )
    const budget = { keptBytes: 0, maxKeptBytes: 1 << 30 }
    const tee = new BodyTee(failing, { maxStoreBytes: 1 << 20, budget, windowBytes: 4096, onStored: () => {}, onAbandoned: () => {} })
    const slow = tee.reader().getReader()
    for (let i = 0; i < 200 && budget.keptBytes < 30; i++) await Bun.sleep(1)
    expect(budget.keptBytes).toBe(30) // three chunks in, none read
    fail()
    for (let i = 0; i < 200 && budget.keptBytes > 0; i++) await Bun.sleep(1)
    expect(budget.keptBytes).toBe(0)
    const got: unknown[] = []
    let error: unknown
    try {
      for (let i = 0; i < 10; i++) {
        const r = await slow.read()
        if (r.done) break
        got.push(r.value)
      }
    } catch (err) {
      error = err
    }
    expect(got.length).toBe(0)
    expect(String(error)).toContain('reset')
  })

  test('bodies kept across tees share one budget: past it, a body is no longer kept for the store', async () => {
    const budget = { keptBytes: 0, maxKeptBytes: 15_000 }
    let closeA!: () => void
    const a = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 10; i++) ctl.enqueue(new Uint8Array(1000))
        closeA = () => ctl.close()
      },
    })
    const outcome: string[] = []
    const ta = new BodyTee(a, { maxStoreBytes: 1 << 20, budget, windowBytes: 4096, onStored: () => outcome.push('a stored'), onAbandoned: () => outcome.push('a abandoned') })
    const aRead = readAll(ta.reader())
    for (let i = 0; i < 100 && budget.keptBytes < 10_000; i++) await Bun.sleep(1)
    expect(budget.keptBytes).toBe(10_000) // a is held open with 10 kB kept
    const b = source(10, 1000)
    const tb = new BodyTee(b.stream, { maxStoreBytes: 1 << 20, budget, windowBytes: 4096, onStored: () => outcome.push('b stored'), onAbandoned: () => outcome.push('b abandoned') })
    expect(await readAll(tb.reader())).toBe(10_000)
    closeA()
    expect(await aRead).toBe(10_000)
    expect(outcome).toEqual(['b abandoned', 'a stored'])
    expect(budget.keptBytes).toBe(0)
  })

  test('what a slow reader has yet to read of a stored body stays charged to the budget, as views of the stored body, until it reads it', async () => {
    const src = source(10, 1000)
    const budget = { keptBytes: 0, maxKeptBytes: 1 << 30 }
    let stored: Uint8Array | undefined
    const tee = new BodyTee(src.stream, { maxStoreBytes: 1 << 20, budget, windowBytes: 4096, onStored: (b) => (stored = b), onAbandoned: () => {} })
    const slow = tee.reader().getReader()
    expect((await slow.read()).value?.byteLength).toBe(1000)
    expect(await readAll(tee.reader())).toBe(10_000)
    expect(stored?.byteLength).toBe(10_000)
    // Uncharged, such bytes added up without bound, one body per slow reader.
    expect(budget.keptBytes).toBe(9000)
    const next = (await slow.read()).value!
    expect(next.buffer).toBe(stored!.buffer) // not a second copy
    expect(next[0]).toBe(2)
    expect(budget.keptBytes).toBe(8000)
    let rest = 0
    for (let r = await slow.read(); !r.done; r = await slow.read()) rest += r.value!.byteLength
    expect(rest).toBe(8000)
    expect(budget.keptBytes).toBe(0)
  })

  test('a body given up past the store limit keeps what it had kept charged until its slow reader passes it or leaves', async () => {
    const src = source(1000, 1000)
    const budget = { keptBytes: 0, maxKeptBytes: 1 << 30 }
    let abandoned = false
    const tee = new BodyTee(src.stream, { maxStoreBytes: 5000, budget, windowBytes: 4096, onStored: () => {}, onAbandoned: () => (abandoned = true) })
    const slow = tee.reader().getReader()
    await slow.read()
    for (let i = 0; i < 200 && !abandoned; i++) await Bun.sleep(1)
    expect(abandoned).toBe(true)
    // Six chunks were kept before the limit was passed; the reader has taken the first.
    expect(budget.keptBytes).toBe(5000)
    await slow.read()
    expect(budget.keptBytes).toBe(4000)
    await slow.cancel()
    expect(budget.keptBytes).toBe(0)
  })
})
