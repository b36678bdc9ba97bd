/** `proxy demo` in a short mode, through the compiled binary as the README runs it. */
import { beforeAll, expect, test } from 'bun:test'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { BIN, ensureBinary } from '../support/binary.ts'

beforeAll(() => {
  ensureBinary()
})

/**
 * The README's quoted run (Quick start) as patterns: each number, with the padding before it,
 * may differ; the words, the labels and the column headings must be what the demo prints.
 */
function readmeDemoLines(): RegExp[] {
  const readme = readFileSync('README.md', 'utf8')
  const at = readme.indexOf('```\n1. ', readme.indexOf('## Quick start'))
  const block = readme.slice(at + 4, readme.indexOf('```', at + 4))
  return block
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => new RegExp(`^${l.split(/( *\d+(?:\.\d+)*)/).map((part, i) => (i % 2 === 1 ? `${part.startsWith(' ') ? ' +' : ''}\\d+(?:\\.\\d+)*` : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('')}$`))
}

test('the demo runs to the end: the proxy is faster and the rotation loses nothing', async () => {
  const child = spawn(BIN, ['demo', '--rtt', '60ms', '--origin-time', '10ms', '-n', '8', '--rotation', '3s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  expect(out).toContain('B is ')
  expect(out).toMatch(/B is [\d.]+× faster in total/)
  expect(out).toMatch(/requests: \d+, failed: 0;/)
  // Part 3, the edge cache: one origin request for 50 concurrent misses, and stale-if-error with the origin down.
  expect(out).toContain('50 concurrent misses: 1 origin request;')
  expect(out).toContain('origin down, feed stale: still 200 from the edge')
  expect(code).toBe(0)
  // What the README says the demo prints is what it prints, line by line and in order.
  const lines = out.split('\n')
  let from = 0
  for (const want of readmeDemoLines()) {
    const found = lines.findIndex((l, i) => i >= from && want.test(l))
    expect({ want: want.source, found: found >= 0 }).toEqual({ want: want.source, found: true })
    from = found + 1
  }
}, 60_000)

test('a demo stopped by SIGTERM or Ctrl-C leaves no temp dir behind, and exits 143 or 130 (outside sweep, twentieth session)', async () => {
  const { mkdtempSync, readdirSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  for (const [signal, want] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const tmp = mkdtempSync(join(tmpdir(), 'demo-signal-'))
    try {
      const child = spawn(BIN, ['demo', '--rtt', '60ms', '--origin-time', '10ms', '-n', '8', '--rotation', '3s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp } })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig === signal ? -1 : null))))
      // Its temp dir is made first; the first part's heading comes once the servers run.
      for (let i = 0; i < 200 && !out.includes('1. '); i++) await Bun.sleep(25)
      expect(readdirSync(tmp).filter((n) => n.startsWith('proxy-demo-'))).toHaveLength(1)
      child.kill(signal)
      // Before: killed by the signal with the dir (its key and certificates) left in place.
      expect(await exited).toBe(want)
      expect(readdirSync(tmp)).toEqual([])
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  }
}, 60_000)
