/**
 * The compiled executable end to end (bun build --compile can differ from bun run): serve,
 * stream in both directions with bounded RSS, graceful drain on SIGTERM. Builds dist/proxy
 * first if it is missing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { execFileSync, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { measureStreams, startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

beforeAll(() => {
  ensureBinary()
})

describe('dist/proxy', () => {
  const origins: { stop(force?: boolean): unknown }[] = []
  afterAll(() => origins.forEach((o) => o.stop(true)))
  /** An origin whose /slow answers after `slowMs`; the rest at once. Stopped after the tests. */
  const slowOrigin = (slowMs: number) => {
    const origin = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        if (new URL(req.url).pathname === '/slow') await Bun.sleep(slowMs)
        return new Response('from origin')
      },
    })
    origins.push(origin)
    return origin
  }

  test('a large `check` printout through a pipe read late arrives whole; a reader that leaves early is no error', async () => {
    const dir = testDir('proxy-check-pipe-')
    const file = join(dir, 'many.toml')
    const upstreams = Array.from({ length: 400 }, (_, i) => `[upstream.u${i}]\nurl = "http://127.0.0.1:${10000 + i}"\n`).join('')
    writeFileSync(file, `[server]\ndefault_upstream = "u0"\n${upstreams}`)
    const whole = execFileSync(BIN, ['check', '--config', file, '--no-resolve']).toString()
    expect(whole.length).toBeGreaterThan(200_000) // more than a pipe holds (64 KiB)
    // The reader starts after the process has written everything and would have exited: before, it got 64 KiB.
    const child = spawn(BIN, ['check', '--config', file, '--no-resolve'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pause()
    await Bun.sleep(500)
    const chunks: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => chunks.push(d))
    child.stdout.resume()
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
    expect(code).toBe(0)
    expect(Buffer.concat(chunks).toString()).toBe(whole)
    // `| head -1`: the reader closes after one line; the rest is dropped without a stack trace.
    const early = spawn(BIN, ['check', '--config', file, '--no-resolve'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    early.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    early.stdout.once('data', () => early.stdout.destroy())
    expect(await new Promise<number | null>((resolve) => early.once('close', resolve))).toBe(0)
    expect(stderr).toBe('')
  })

  test('--version and a bad flag', () => {
    expect(execFileSync(BIN, ['--version']).toString()).toMatch(/^proxy \d+\.\d+\.\d+ \(commit /)
    let code = 0
    let stderr = ''
    try {
      execFileSync(BIN, ['check', '--upstream', 'a', '--retries', 'many'], { stdio: 'pipe' })
    } catch (err) {
      code = (err as { status: number }).status
      stderr = String((err as { stderr: Buffer }).stderr)
    }
    expect(code).toBe(2)
    expect(stderr).toContain('--retries')
  })

  test('proxies, then drains an in-flight request on SIGTERM and exits 0', async () => {
    const origin = slowOrigin(800)
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off'], BIN)
    expect(await (await fetch(proxy.url)).text()).toBe('from origin')
    const slow = fetch(`${proxy.url}/slow`).then((r) => r.text())
    await Bun.sleep(150)
    const exit = proxy.stop()
    expect(await slow).toBe('from origin')
    expect(await exit).toBe(0)
  })

  test.each([
    ['one process', []],
    ['--workers 2', ['--workers', '2']],
])('%s: SIGHUP, SIGTERM and SIGINT during the drain are said and ignored; the in-flight request ends whole and the exit is 0', async (_, extra) => {
    const origin = slowOrigin(1500)
    const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', ...extra], BIN)
    let stderr = ''
    proxy.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    // Every worker serves before the drain begins (each says it listens; the URL came from the first).
    const deadline = Date.now() + 10_000
    while (extra.length > 0 && (stderr.match(/proxy listening/g) ?? []).length < 1 && Date.now() < deadline) await Bun.sleep(50)
    const slow = fetch(`${proxy.url}/slow`).then((r) => r.text())
    await Bun.sleep(300)
    const exit = proxy.stop() // SIGTERM
    await Bun.sleep(200)
    for (const sig of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) {
      proxy.child.kill(sig)
      await Bun.sleep(100)
    }
    expect(await slow).toBe('from origin')
    expect([await exit, proxy.child.signalCode]).toEqual([0, null])
    expect(stderr).toMatch(/(SIGHUP during the drain|SIGHUP while the workers drain): ignored/)
  })

  test('128 MiB each way through the binary, slow reader, RSS bounded', async () => {
    const results = await measureStreams({ sizeBytes: 128 * 2 ** 20, bin: BIN, slowMs: 1 })
    for (const r of results) {
      expect(r.bytes).toBe(128 * 2 ** 20)
      // Measured ~70-80 MiB peak for 2 GiB (see README); the bound here is generous, not a timing.
      expect(r.peakRssBytes).toBeLessThan(200 * 2 ** 20)
    }
  })
})
