/**
 * --workers with the access log on stdout (the default) into one pipe whose reader lags, with
 * the compiled binary: every line that comes out is one whole JSON record, none cut into another
 * worker's, and the supervisor's exit leaves no worker's last lines unread.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, ensureBinary } from '../support/binary.ts'
import { freePort } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const servers: { stop(force?: boolean): unknown }[] = []
beforeAll(() => {
  ensureBinary()
})
afterAll(() => servers.forEach((s) => s.stop(true)))

// Reads its stdin 4 KiB at a time with a pause after each (about 4 MB/s), so that the pipe is
// often full and a writer's write is often taken in part; writes what it read to the file its argument names.
const SLOW_READER = `
const fs = require('node:fs')
const out = fs.openSync(process.argv[2], 'w')
const buf = Buffer.alloc(4096)
const pause = new Int32Array(new SharedArrayBuffer(4))
for (;;) {
  let n = 0
  try { n = fs.readSync(0, buf, 0, buf.length, null) } catch (e) { if (e.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 1); continue } throw e }
  if (n === 0) break
  fs.writeSync(out, buf, 0, n)
  Atomics.wait(pause, 0, 0, 1)
}
`

test('--workers 3, access log on stdout into a lagging pipe: each line is one whole record (outside review, thirteenth round)', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 0, fetch: () => new Response('ok') })
  servers.push(origin)
  const port = await freePort()
  const adminPort = await freePort()
  const dir = testDir('workers-log-')
  const out = join(dir, 'access.jsonl')
  const reader = join(dir, 'reader.cjs')
  await Bun.write(reader, SLOW_READER)
  const sh = spawn('sh', ['-c', `"$BIN" serve --workers 3 --upstream http://127.0.0.1:${origin.port} --listen 127.0.0.1:${port} --admin 127.0.0.1:${adminPort} --trim-interval 0 --log-format json 2>"$DIR/err" | bun "$DIR/reader.cjs" "$DIR/access.jsonl"`], {
    env: { ...process.env, BIN, DIR: dir },
    stdio: 'ignore',
    detached: true,
  })
  const exited = new Promise<void>((r) => sh.once('exit', () => r()))
  try {
    // Listening (at most 10 s).
    let up = false
    for (let i = 0; i < 200 && !up; i++) {
      await Bun.sleep(50)
      up = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false)
    }
    expect(up).toBe(true)
    const load = Bun.spawn([BIN, 'bench', `http://127.0.0.1:${port}/a-longer-path-for-longer-lines/${'x'.repeat(200)}`, '-c', '32', '-d', '2s', '--json'], { stdout: 'pipe', stderr: 'ignore', timeout: 30_000 })
    const sent = JSON.parse(await new Response(load.stdout).text()) as { requests: number; errors: number }
    expect(sent.errors).toBe(0)
    // Lines a worker could not hand on in time are counted as dropped (log-writer.ts), summed by the supervisor.
    const dropped = async () => {
      const text = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text())
      return Number(/^proxy_access_log_dropped_total (\d+)/m.exec(text)?.[1] ?? Number.NaN)
    }
    // The lagging reader catches up (the file stops growing: at most 20 s) before the count is read.
    let size = -1
    for (let i = 0; i < 40; i++) {
      await Bun.sleep(500)
      const now = Bun.file(out).size
      if (now === size) break
      size = now
    }
    const droppedLines = await dropped()
    expect(Number.isInteger(droppedLines)).toBe(true)
    // The supervisor (the pipe's writer end is its and its workers'): SIGTERM, then the reader ends.
    process.kill(-sh.pid!, 'SIGTERM')
    await Promise.race([exited, Bun.sleep(20_000)])
    for (let i = 0; i < 200; i++) {
      await Bun.sleep(50)
      if (readFileSync(out, 'latin1').endsWith('\n')) break
    }
    const lines = readFileSync(out, 'utf8').split('\n').slice(0, -1)
    const bad = lines.filter((l) => {
      try {
        return typeof JSON.parse(l).status !== 'number'
      } catch {
        return true
      }
    })
    expect(bad.slice(0, 3)).toEqual([])
    // Every request is a line or a counted drop (+1 or more: the readiness probes).
    expect(lines.length + droppedLines).toBeGreaterThanOrEqual(sent.requests)
    expect(lines.length).toBeGreaterThan(1000)
  } finally {
    try {
      process.kill(-sh.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}, 60_000)
