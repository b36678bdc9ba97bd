/** `proxy demo` in a short mode, through the compiled binary as the README runs it. */
import { beforeAll, expect, test } from 'bun:test'
import { spawn } from 'node:child_process'
import { BIN, ensureBinary } from '../support/binary.ts'

beforeAll(() => {
  ensureBinary()
})

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
}, 60_000)
