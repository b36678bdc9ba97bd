/**
 * Temporary directories for tests: made under the system's temp dir and removed once every test
 * has run (a cached fixture such as certs.ts's lives for the whole run, so a per-test cleanup
 * would be too early for it). bunfig.toml preloads this file, which makes its afterAll global: it
 * runs once, after the last test file. Every test that needs a directory takes one from here.
 */
import { afterAll } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A new directory named `prefix` plus a random suffix; removed at exit with what it holds. */
export function testDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}
