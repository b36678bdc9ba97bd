/** The compiled binary for e2e tests: (re)builds dist/proxy once when it is missing or older than src/. */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export const BIN = 'dist/proxy'

function newestMtimeMs(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs)
  }
  return newest
}

export function ensureBinary(): string {
  if (!existsSync(BIN) || statSync(BIN).mtimeMs < newestMtimeMs('src')) execFileSync(process.execPath, ['scripts/build.ts'], { stdio: 'inherit' })
  return BIN
}
