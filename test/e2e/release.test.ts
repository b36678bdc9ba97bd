/**
 * The release binaries (`npm run release`): SHA256SUMS matches the files, each file is built for
 * its architecture, and each runs: x64 here, arm64 under qemu-aarch64 (Debian's qemu-user and
 * libc6-arm64-cross, which .ci/run installs), --version and a short serve with one request.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import { RELEASE_DIR, RELEASE_TARGETS } from '../../scripts/release.ts'
import { testDir } from '../support/temp-dir.ts'

/** ELF e_machine values (System V ABI): what the file was built for. */
const EM_X86_64 = 62
const EM_AARCH64 = 183

/** The ELF class, byte order and machine of a file, from its first 20 bytes. */
function elfHeader(path: string): { magic: string; bits: number; littleEndian: boolean; machine: number } {
  const fd = openSync(path, 'r')
  const b = Buffer.alloc(20)
  try {
    readSync(fd, b, 0, 20, 0)
  } finally {
    closeSync(fd)
  }
  return { magic: b.subarray(0, 4).toString('latin1'), bits: b[4] === 2 ? 64 : 32, littleEndian: b[5] === 1, machine: b.readUInt16LE(18) }
}

/** How to run an arm64 binary here: natively on arm64, under qemu-aarch64 elsewhere; undefined when neither can. */
function arm64Runner(): string[] | undefined {
  if (process.arch === 'arm64') return []
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64']).stdout?.toString().trim()
  if (!qemu || !existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1')) return undefined
  return [qemu, '-L', '/usr/aarch64-linux-gnu']
}

const x64 = join(RELEASE_DIR, 'proxy-linux-x64')
const arm64 = join(RELEASE_DIR, 'proxy-linux-arm64')

beforeAll(() => {
  // What `npm run release` runs: a fresh dist/release (the arm64 runtime comes from the npm registry once).
  execFileSync(process.execPath, ['scripts/release.ts'], { stdio: 'inherit', timeout: 180_000 })
}, 200_000)

describe('npm run release', () => {
  test('SHA256SUMS lists exactly the binaries, with their hashes, and sha256sum -c agrees', () => {
    const sums = readFileSync(join(RELEASE_DIR, 'SHA256SUMS'), 'utf8')
    const lines = sums.trim().split('\n')
    expect(lines.map((l) => l.split('  ')[1]).sort()).toEqual(Object.keys(RELEASE_TARGETS).sort())
    expect(readdirSync(RELEASE_DIR).sort()).toEqual(['SHA256SUMS', ...Object.keys(RELEASE_TARGETS)].sort())
    for (const line of lines) {
      const [hash, file] = line.split('  ')
      expect(hash).toBe(createHash('sha256').update(readFileSync(join(RELEASE_DIR, file!))).digest('hex'))
    }
    const check = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: RELEASE_DIR })
    expect(String(check.stdout)).toBe('proxy-linux-x64: OK\nproxy-linux-arm64: OK\n')
    expect(check.status).toBe(0)
  })

  test('each binary is a 64-bit little-endian ELF for its machine', () => {
    expect(elfHeader(x64)).toEqual({ magic: '\x7fELF', bits: 64, littleEndian: true, machine: EM_X86_64 })
    expect(elfHeader(arm64)).toEqual({ magic: '\x7fELF', bits: 64, littleEndian: true, machine: EM_AARCH64 })
  })

  test.if(process.arch === 'x64')('the x64 binary runs here: --version names the commit it was built from', () => {
    const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD']).toString().trim()
    expect(execFileSync(x64, ['--version']).toString()).toMatch(new RegExp(`^proxy \\d+\\.\\d+\\.\\d+ \\(commit ${commit}, bun `))
  })

  test.if(process.arch === 'x64')('a binary ignores .env in the directory it runs in (Bun loads it by default)', () => {
    const dir = testDir('proxy-release-')
    try {
      // DEBUG=1 from a .env would add a stack trace to this error.
      writeFileSync(join(dir, '.env'), 'DEBUG=1\n')
      const r = spawnSync(resolve(x64), ['check', '--upstream', 'origin.example', '--retries', 'many'], { cwd: dir, env: { PATH: process.env.PATH } })
      expect(r.status).toBe(2)
      expect(String(r.stderr)).toContain('--retries')
      expect(String(r.stderr)).not.toContain('    at ')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

const runner = arm64Runner()
if (runner) {
  describe(`the arm64 binary${runner.length > 0 ? ' under qemu-aarch64' : ''}`, () => {
    const cleanups: (() => unknown)[] = []
    afterAll(async () => {
      for (const c of cleanups.splice(0)) await c()
    })

    test('--version', () => {
      const out = execFileSync(runner[0] ?? arm64, [...runner.slice(1), ...(runner.length > 0 ? [arm64] : []), '--version'], { timeout: 30_000 }).toString()
      expect(out).toMatch(/^proxy \d+\.\d+\.\d+ \(commit \S+, bun \d/)
    }, 40_000)

    test('serve: one request through it, then SIGTERM drains and exits 0', async () => {
      const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (req) => new Response(`origin saw ${new URL(req.url).pathname}`) })
      cleanups.push(() => origin.stop(true))
      const argv = ['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off']
      const cmd = runner.length > 0 ? [...runner, arm64, ...argv] : [arm64, ...argv]
      const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      cleanups.push(() => {
        if (child.exitCode === null) child.kill('SIGKILL')
      })
      let stderr = ''
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "proxy listening" within 30 s: ${stderr}`)), 30_000)
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString()
          const m = /proxy listening url=(\S+)/.exec(stderr)
          if (m) {
            clearTimeout(timer)
            resolve(m[1]!)
          }
        })
        void exited.then((code) => {
          clearTimeout(timer)
          reject(new Error(`exited with ${code}: ${stderr}`))
        })
      })
      const res = await fetch(`${url}/through-arm64`)
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('origin saw /through-arm64')
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    }, 60_000)
  })
} else {
  // Registered only when it is true: neither an arm64 machine nor qemu-aarch64 with the arm64 libc.
  test.skip('qemu-aarch64 or /usr/aarch64-linux-gnu is missing, so the arm64 binary was not run (.ci/run installs qemu-user and libc6-arm64-cross)', () => {})
}
