/**
 * Real HTTP/2 clients against the session on Bun.listen: curl (TLS with ALPN h2, and h2c with
 * prior knowledge), nghttp (64 streams multiplexed on one connection) and h2load.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pattern, run, startServer, type TestH2Server } from './support/h2-server.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('h2-interop-')
const upload = randomBytes(5 * 1024 * 1024 + 123)
const uploadFile = join(dir, 'upload.bin')
writeFileSync(uploadFile, upload)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function patternHash(total: number): string {
  const h = createHash('sha256')
  for (let off = 0; off < total; off += 64 * 1024) h.update(pattern(off, Math.min(64 * 1024, total - off)))
  return h.digest('hex')
}

for (const tls of [true, false]) {
  describe(tls ? 'TLS with ALPN h2' : 'h2c with prior knowledge', () => {
    let s: TestH2Server
    beforeAll(() => {
      s = startServer({ tls })
    })
    afterAll(() => s.close())
    const curl = (...args: string[]) =>
      run(['curl', '-sS', '--max-time', '20', ...(tls ? ['--http2', '--cacert', s.caFile] : ['--http2-prior-knowledge']), ...args], { timeoutMs: 25_000 })

    test('curl GET: HTTP/2, status, headers and body', async () => {
      const r = await curl('-D', '-', `${s.url}/hello?x=1`)
      expect(r.stderr).toBe('')
      expect(r.stdout).toStartWith('HTTP/2 200')
      expect(r.stdout).toContain('x-test: yes')
      expect(r.stdout).not.toContain('connection:')
      expect(r.stdout).toEndWith('\r\n\r\nhello GET /hello?x=1\n')
    })
    test('curl HEAD: the head only', async () => {
      const r = await curl('-I', `${s.url}/hello`)
      expect(r.stdout).toStartWith('HTTP/2 200')
      expect(r.stdout).toContain('content-length: 18')
    })
    test('curl POST of 5 MiB: the handler reads exactly what was sent (length and SHA-256)', async () => {
      const r = await curl('--data-binary', `@${uploadFile}`, `${s.url}/hash`)
      expect(r.stdout).toBe(`${upload.byteLength} ${createHash('sha256').update(upload).digest('hex')}`)
    })
    test('curl download of 20 MB streamed with backpressure arrives intact', async () => {
      const total = 20_000_000
      const out = join(dir, `down-${tls}.bin`)
      const r = await curl('-o', out, '-w', '%{size_download} %{http_version}', `${s.url}/big?bytes=${total}`)
      expect(r.stdout).toBe(`${total} 2`)
      const got = createHash('sha256').update(new Uint8Array(await Bun.file(out).arrayBuffer())).digest('hex')
      expect(got).toBe(patternHash(total))
    })
    test('curl: request headers are translated (host from :authority, cookies joined)', async () => {
      const r = await curl('-H', 'cookie: a=1', '-H', 'x-one: 1', `${s.url}/headers`)
      const headers = JSON.parse(r.stdout) as [string, string][]
      expect(headers[0]).toEqual(['host', `127.0.0.1:${s.port}`])
      expect(headers).toContainEqual(['cookie', 'a=1'])
      expect(headers).toContainEqual(['x-one', '1'])
    })
    test('nghttp: 64 concurrent streams on one connection, all in flight together', async () => {
      const before = s.requests.length
      const r = await run(['nghttp', '-n', '-s', '-m', '64', `${s.url}/wait?ms=300`], { timeoutMs: 20_000 })
      expect(r.code).toBe(0)
      expect(r.stdout.split('\n').filter((l) => /\s200\s+\d+\s+\/wait/.test(l))).toHaveLength(64)
      const mine = s.requests.slice(before)
      expect(mine).toHaveLength(64)
      expect(new Set(mine.map((q) => q.conn)).size).toBe(1)
      // Every one of the 64 was waiting at the same time: they were multiplexed, not queued.
      expect(s.peakWaiting).toBe(64)
    })
    test('h2load: 2000 requests on 4 connections, 10 streams each, all 2xx', async () => {
      const r = await run(['h2load', '-n', '2000', '-c', '4', '-m', '10', `${s.url}/hello`], { timeoutMs: 30_000 })
      expect(r.stdout).toContain('2000 succeeded, 0 failed, 0 errored')
      expect(r.stdout).toContain('status codes: 2000 2xx')
      if (tls) expect(r.stdout).toContain('Application protocol: h2')
    })
  })
}

test('a TLS client that does not offer h2 gets no session', async () => {
  const s = startServer({ tls: true })
  try {
    const r = await run(['curl', '-sS', '--max-time', '10', '--http1.1', '--cacert', s.caFile, `${s.url}/hello`], { timeoutMs: 15_000 })
    expect(r.code).not.toBe(0)
    expect(s.requests).toHaveLength(0)
  } finally {
    s.close()
  }
})
