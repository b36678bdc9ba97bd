/** `proxy serve --acme` start-up failures are start failures (exit 3) with one line saying what to change, not E_INTERNAL. */
import { afterAll, describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../../src/cli.ts'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { memoryIo } from '../../src/lib/io.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('proxy-acme-start-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Never reached: both failures come before the first order. */
const args = (httpListen: string, stateDir: string) => ['serve', '--upstream', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--acme', 'a.test', '--acme-directory', 'https://127.0.0.1:9/dir', '--acme-http-listen', httpListen, '--state-dir', stateDir]

describe('automatic HTTPS start-up errors', () => {
  test('the HTTP-01 port taken: E_LISTEN, exit 3, naming --acme-http-listen', async () => {
    const held = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    try {
      const io = memoryIo()
      expect(await runCli(args(`127.0.0.1:${held.port}`, join(dir, 'state-1')), io)).toBe(ExitCode.START_FAILED)
      expect(io.stderr).toContain(`[E_LISTEN] cannot listen on 127.0.0.1:${held.port} for HTTP-01 challenges and https redirects: address in use;`)
      expect(io.stderr).toContain('--acme-http-listen')
    } finally {
      held.stop(true)
    }
  })

  test('an IPv6 HTTP-01 address taken is named [::1]:PORT (RFC 3986 §3.2.2), not ::1:PORT', async () => {
    const held = Bun.listen({ hostname: '::1', port: 0, socket: { data() {} } })
    try {
      const io = memoryIo()
      expect(await runCli(args(`[::1]:${held.port}`, join(dir, 'state-v6')), io)).toBe(ExitCode.START_FAILED)
      expect(io.stderr).toContain(`[E_LISTEN] cannot listen on [::1]:${held.port} for HTTP-01 challenges`)
    } finally {
      held.stop(true)
    }
  })

  test('a state directory that cannot be created: exit 3, naming --state-dir', async () => {
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const io = memoryIo()
    expect(await runCli(args('127.0.0.1:0', join(file, 'state')), io)).toBe(ExitCode.START_FAILED)
    // Told before anything is started, as check tells it (src/runtime/config-paths.ts).
    expect(io.stderr).toContain(`[E_TLS_FILES] (flags): --state-dir: "${file}" is not a directory (on the way to "${join(file, 'state')}")`)
    expect(io.stderr).toContain('give a directory (serve creates it if missing)')
  })
})
