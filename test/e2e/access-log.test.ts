/**
 * The access log with the compiled binary: after the file is moved away (a rotation), SIGUSR1 and
 * SIGHUP reopen it and the proxy goes on; with --workers the supervisor passes SIGUSR1 on to every
 * worker and nobody dies.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

const servers: { stop(force?: boolean): unknown }[] = []
beforeAll(() => {
  ensureBinary()
})
afterAll(() => servers.forEach((s) => s.stop(true)))

function origin(): number {
  const s = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  servers.push(s)
  return s.port!
}

function lineCount(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0
}

/** Polls `cond` (250 times at most, 20 ms apart): lines are written at the end of a turn. */
async function until(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 250 && !cond(); i++) await Bun.sleep(20)
  return cond()
}

async function requests(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { headers: { connection: 'close' } })
    expect(res.status).toBe(200)
    await res.text()
  }
}

/** Whether the process catches SIGUSR1 (bit 10 of SigCgt in /proc/PID/status): its handler is in place. */
function catchesUsr1(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 9n)) !== 0n
  } catch {
    return false
  }
}

/** Stops the proxy: its exit code, or the signal that ended it before (startProxyProcess's stop() would wait for that exit forever). */
function stop(proxy: Awaited<ReturnType<typeof startProxyProcess>>): Promise<number | string | null> {
  const { child } = proxy
  if (child.signalCode !== null) return Promise.resolve(child.signalCode)
  return proxy.stop()
}

function childPids(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)]).toString().trim().split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

test('SIGUSR1, then SIGHUP, after the file is moved away: the proxy goes on, writing to a new file', async () => {
  const file = join(testDir('proxy-rotate-'), 'access.log')
  const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin()}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', file], BIN)
  try {
    await requests(proxy.url, 5)
    expect(await until(() => lineCount(file) === 5)).toBe(true)
    renameSync(file, `${file}.1`)
    proxy.child.kill('SIGUSR1')
    expect(await until(() => existsSync(file))).toBe(true)
    await requests(proxy.url, 3)
    expect(await until(() => lineCount(file) === 3)).toBe(true)
    expect(lineCount(`${file}.1`)).toBe(5)

    renameSync(file, `${file}.2`)
    proxy.child.kill('SIGHUP')
    expect(await until(() => existsSync(file))).toBe(true)
    await requests(proxy.url, 2)
    expect(await until(() => lineCount(file) === 2)).toBe(true)
    expect(lineCount(`${file}.2`)).toBe(3)
    expect(proxy.child.exitCode).toBeNull()
  } finally {
    expect(await stop(proxy)).toBe(0)
  }
})

test('--workers 2: SIGUSR1 to the supervisor reaches every worker; the supervisor and the workers live on', async () => {
  const file = join(testDir('proxy-rotate-'), 'access.log')
  const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin()}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', file, '--workers', '2'], BIN)
  let stderr = ''
  proxy.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const count = (re: RegExp) => stderr.match(re)?.length ?? 0
  try {
    // startProxyProcess returns at the first worker's "proxy listening"; wait for both workers.
    const sup = proxy.child.pid!
    let pids: number[] = []
    expect(await until(() => (pids = childPids(sup)).length === 2 && pids.every(catchesUsr1))).toBe(true)
    await requests(proxy.url, 20)
    expect(await until(() => lineCount(file) === 20)).toBe(true)
    renameSync(file, `${file}.1`)
    process.kill(sup, 'SIGUSR1')
    expect(await until(() => count(/access log reopened worker=/g) === 2)).toBe(true)
    await requests(proxy.url, 20)
    expect(await until(() => lineCount(file) === 20)).toBe(true)
    expect(lineCount(`${file}.1`)).toBe(20)
    expect(proxy.child.exitCode).toBeNull()
    expect(childPids(sup).sort()).toEqual(pids.sort())
  } finally {
    expect(await stop(proxy)).toBe(0)
  }
})
