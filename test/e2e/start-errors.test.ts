/**
 * Start-up errors of the compiled binary between two instances on one machine: with --workers
 * the listen port is bound with SO_REUSEPORT, which would let a second instance share it with
 * the first without a word; the supervisor refuses instead (exit 3, "address in use"). And an
 * access log that cannot be opened (a directory, no directory for it) stops the start (exit 3).
 */
import { afterEach, beforeAll, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { BIN, ensureBinary } from '../support/binary.ts'
import { testDir } from '../support/temp-dir.ts'

beforeAll(() => {
  ensureBinary()
})
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

test('a second instance with --workers on the port of a first one with --workers: exit 3, address in use', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const first = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', '--workers', '2'], BIN)
  cleanups.push(() => first.stop())
  const listen = new URL(first.url).host
  const second = spawnSync(BIN, ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', listen, '--admin', 'off', '--access-log', 'off', '--workers', '2'], { timeout: 15_000 })
  expect(second.status).toBe(3)
  expect(String(second.stderr)).toContain(`cannot listen on ${listen}: address in use;`)
  // It never started a worker: nothing of it listens next to the first instance.
  expect(String(second.stderr)).not.toContain('proxy listening')
  expect(await (await fetch(first.url)).text()).toBe('ok')
})

test('two instances on the same admin port: the second names --admin and exits 3', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  cleanups.push(() => origin.stop(true))
  const holder = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  cleanups.push(() => holder.stop(true))
  const admin = `127.0.0.1:${holder.port}`
  for (const workers of ['1', '2']) {
    const r = spawnSync(BIN, ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', admin, '--workers', workers], { timeout: 15_000 })
    expect(r.status).toBe(3)
    expect(String(r.stderr)).toContain(`cannot listen on admin address ${admin}: address in use;`)
    expect(String(r.stderr)).toContain('--admin')
  }
})

test('an access_log that names a directory, or a file in a directory that does not exist: serve exits 3 naming it, before it listens (it ran without the log)', () => {
  const dir = testDir('proxy-start-log-')
  for (const [path, said] of [
    [dir, `--access-log: "${dir}" is a directory; give the path of a file`],
    [join(dir, 'missing', 'access.log'), `--access-log: cannot create "${join(dir, 'missing', 'access.log')}": its directory "${join(dir, 'missing')}" does not exist`],
  ] as const) {
    for (const workers of ['1', '2']) {
      const r = spawnSync(BIN, ['serve', '--upstream', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', path, '--workers', workers], { timeout: 15_000 })
      expect(r.status).toBe(3)
      expect(String(r.stderr)).toContain(`error [E_LOG_FILE] (flags): ${said}`)
      expect(String(r.stderr)).not.toContain('proxy listening')
    }
  }
})

/** Runs BIN as the unprivileged user 65534 (setpriv, as root only): root passes every permission check. */
function asNobody(args: string[]) {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', BIN, ...args], { timeout: 15_000 })
}

test('an access_log the user may not write (a file, or a new one in a directory it may not write): check and serve exit 3 naming it, before serve listens', () => {
  if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) return console.log('skipped: needs root and setpriv (util-linux) to run the binary as another user')
  // A checkout under a directory only root may enter (/root) leaves the binary out of that user's reach.
  if (asNobody(['--version']).status !== 0) return console.log(`skipped: user 65534 cannot run ${BIN} (a directory on its path is closed to others)`)
  const dir = testDir('proxy-start-log-perm-')
  chmodSync(dir, 0o755) // others may enter, not write
  const existing = join(dir, 'existing.log')
  writeFileSync(existing, '')
  chmodSync(existing, 0o644)
  const fresh = join(dir, 'access.log')
  for (const [path, said] of [
    [existing, `--access-log: cannot write "${existing}": permission denied (as uid 65534)`],
    [fresh, `--access-log: cannot create "${fresh}": permission denied on its directory "${dir}" (as uid 65534)`],
  ] as const) {
    const check = asNobody(['check', '--upstream', 'http://127.0.0.1:1', '--no-resolve', '--access-log', path])
    expect(check.status).toBe(3)
    expect(String(check.stderr)).toContain(`error [E_LOG_FILE] (flags): ${said}`)
    const serve = asNobody(['serve', '--upstream', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', path])
    expect(serve.status).toBe(3)
    expect(String(serve.stderr)).toContain(`error [E_LOG_FILE] (flags): ${said}`)
    expect(String(serve.stderr)).not.toContain('proxy listening')
  }
})

test('a listen or admin address from the config file that cannot be bound is named by its file and line, as a bad value is (outside review, fourteenth round)', async () => {
  const holder = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  cleanups.push(() => holder.stop(true))
  const dir = testDir('proxy-start-listen-')
  const file = join(dir, 'proxy.toml')
  const taken = `127.0.0.1:${holder.port}`
  for (const [table, key] of [['server', 'server.listen'], ['admin', 'admin.listen']] as const) {
    const other = table === 'server' ? '[admin]\nlisten = "off"' : '[server]\nlisten = "127.0.0.1:0"'
    writeFileSync(file, `[upstream]\nurl = "http://127.0.0.1:9"\n[${table}]\nlisten = "${taken}"\n${other}\n[log]\naccess_log = "off"\n`)
    // One process, and a supervisor that claims the addresses before its workers start.
    for (const workers of ['1', '2']) {
      const r = spawnSync(BIN, ['serve', '--config', file, '--workers', workers], { timeout: 15_000 })
      expect([workers, r.status]).toEqual([workers, 3])
      // Before: "(server.listen in the config file)", with no file or line.
      expect([workers, String(r.stderr).includes(`(${file}:4: ${key})`)]).toEqual([workers, true])
    }
  }
  // Given as a flag, the flag the message names is where it was set.
  const flagged = spawnSync(BIN, ['serve', '--config', file, '--admin', taken], { timeout: 15_000 })
  expect(flagged.status).toBe(3)
  expect(String(flagged.stderr)).toContain('(admin.listen in the config file)')
})
