/**
 * runtime/page-trim.ts: which mappings a trim may drop (a synthetic smaps), a process that trims
 * itself and goes on working, and `serve` with and without trim_interval (the compiled binary).
 * The live tests need Linux with /proc and Bun's FFI; elsewhere they say so and pass.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { trimmableRanges } from '../../src/runtime/page-trim.ts'
import { BIN, ensureBinary } from '../support/binary.ts'

const LIVE = process.platform === 'linux' && existsSync('/proc/self/smaps')

/** One smaps entry: a header line and the two fields the parser reads (among others it skips). */
function entry(range: string, perms: string, path: string, rssKiB: number, anonymousKiB: number): string {
  return [
    `${range} ${perms} 00000000 08:01 1234                       ${path}`.trimEnd(),
    'Size:               1024 kB',
    `Rss:                ${rssKiB} kB`,
    'Pss:                 100 kB',
    'Shared_Clean:          0 kB',
    `Anonymous:          ${anonymousKiB} kB`,
    'VmFlags: rd ex mr mw me',
  ].join('\n')
}

test('a trim takes private, read-only, resident file mappings with no copied page, and nothing else', () => {
  const smaps = [
    entry('00200000-01a39000', 'r--p', '/usr/local/bin/proxy', 2900, 0), // kept: read-only data
    entry('01a40000-06849000', 'r-xp', '/usr/local/bin/proxy', 25700, 0), // kept: code
    entry('06849000-06ea1000', 'rw-p', '/usr/local/bin/proxy', 3500, 200), // writable: .data
    entry('7f0000000000-7f0000100000', 'rw-p', '', 9000, 9000), // anonymous
    entry('7f1000000000-7f1000020000', 'r--p', '/usr/lib/x86_64-linux-gnu/libc.so.6', 160, 0), // kept
    entry('7f1000200000-7f1000204000', 'r--p', '/usr/lib/x86_64-linux-gnu/libc.so.6', 16, 16), // relocated (RELRO)
    entry('7f2000000000-7f2000010000', 'r--s', '/var/cache/shared.db', 64, 0), // shared mapping
    entry('7f3000000000-7f3000001000', 'r--p', '/dev/dri/card0', 4, 0), // a device
    entry('7f4000000000-7f4000100000', 'r--p', '/usr/lib/locale/C.utf8/LC_CTYPE', 0, 0), // nothing resident
    entry('7ffc00000000-7ffc00002000', 'r-xp', '[vdso]', 8, 0), // the kernel's
    entry('7f5000000000-7f5000100000', 'r-xp', '/opt/old/proxy (deleted)', 512, 0), // kept: a replaced binary still mapped
  ].join('\n')
  expect(trimmableRanges(smaps)).toEqual([
    { address: 0x200000, lengthBytes: 0x1a39000 - 0x200000 },
    { address: 0x1a40000, lengthBytes: 0x6849000 - 0x1a40000 },
    { address: 0x7f1000000000, lengthBytes: 0x20000 },
    { address: 0x7f5000000000, lengthBytes: 0x100000 },
  ])
  expect(trimmableRanges('')).toEqual([])
})

/** RssFile of a process, bytes (file-backed resident pages). */
function rssFileBytes(pid: number | 'self'): number {
  const m = /RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m ? Number(m[1]) * 1024 : 0
}

test('a process that trims itself leaves most of its file-backed pages and goes on working', () => {
  if (!LIVE) return console.log('skipped: needs Linux with /proc')
  const script = `
    import { trimMappedFilePages } from './src/runtime/page-trim.ts'
    import { readFileSync } from 'node:fs'
    const rssFile = () => Number(/RssFile:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'))[1])
    const before = rssFile()
    const advised = trimMappedFilePages()
    const after = rssFile()
    // Work that needs code the trim unmapped: the parser, the JIT, crypto, regular expressions.
    const parsed = JSON.parse(JSON.stringify({ a: [1, 2, 3] }))
    const hash = new Bun.CryptoHasher('sha256').update('abc').digest('hex')
    const fn = new Function('x', 'return x * 2')
    let sum = 0
    for (let i = 0; i < 200000; i++) sum += fn(i) & 7
    console.log(JSON.stringify({ before, advised, after, parsed, hash, sum, matched: /b+c/.test('abbbc') }))
  `
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 })
  expect(run.status).toBe(0)
  const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!)
  console.log(`a process that trims itself: file-backed RSS ${(out.before / 1024).toFixed(1)} -> ${(out.after / 1024).toFixed(1)} MiB`)
  expect(out.advised).toBeGreaterThan(0)
  // bun's own executable is ~90 MB; measured 28 -> 5 MiB of file-backed pages.
  expect(out.before - out.after).toBeGreaterThan(8 * 1024)
  expect(out.parsed).toEqual({ a: [1, 2, 3] })
  expect(out.hash).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  expect(out.sum).toBe(600000) // (2i & 7) runs 0, 2, 4, 6
  expect(out.matched).toBe(true)
})

const servers: { stop(force?: boolean): unknown }[] = []
beforeAll(() => {
  if (LIVE) ensureBinary()
})
afterAll(() => {
  servers.forEach((s) => s.stop(true))
})

test('serve gives back the pages start-up mapped; trim_interval = 0 keeps them', async () => {
  if (!LIVE) return console.log('skipped: needs Linux with /proc')
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  servers.push(origin)
  const args = ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off']
  const trimmed = await startProxyProcess(args, BIN)
  const kept = await startProxyProcess([...args, '--trim-interval', '0'], BIN)
  try {
    for (const p of [trimmed, kept]) expect(await (await fetch(p.url)).text()).toBe('ok')
    const trimmedFile = rssFileBytes(trimmed.child.pid!)
    const keptFile = rssFileBytes(kept.child.pid!)
    console.log(`serve's file-backed RSS after start-up and one request: ${(trimmedFile / 2 ** 20).toFixed(1)} MiB trimmed, ${(keptFile / 2 ** 20).toFixed(1)} MiB with trim_interval = 0`)
    // Measured 20.5 against 37.5 MiB.
    expect(keptFile - trimmedFile).toBeGreaterThan(8 * 2 ** 20)
    // And the trimmed one still serves.
    expect(await (await fetch(trimmed.url)).text()).toBe('ok')
  } finally {
    expect(await trimmed.stop()).toBe(0)
    expect(await kept.stop()).toBe(0)
  }
}, 60_000)
