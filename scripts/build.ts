/**
 * Builds the single executable: `bun build --compile` into dist/proxy, with the git commit baked
 * in for --version, and writes dist/proxy.sha256 beside it. compileBinary() is shared with
 * scripts/release.ts, which builds the same program for other machines.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  } catch {
    return 'unknown'
  }
}

/**
 * Compiles src/main.ts into one executable at `outfile`, for `target` (a Bun compile target such
 * as "bun-linux-arm64"; the host when absent). A cross target's runtime comes from the npm
 * registry, cached in ~/.bun/install/cache. The binary does not read .env or bunfig.toml from
 * the directory it runs in (Bun's default for compiled programs): a proxy's behaviour is its
 * config and flags only.
 */
export async function compileBinary(outfile: string, target?: string): Promise<void> {
  mkdirSync(dirname(outfile), { recursive: true })
  const result = await Bun.build({
    entrypoints: ['src/main.ts'],
    compile: { outfile, ...(target ? { target } : {}), autoloadDotenv: false, autoloadBunfig: false },
    minify: true,
    bytecode: true,
    target: 'bun',
    format: 'esm',
    define: { PROXY_GIT_COMMIT: JSON.stringify(gitCommit()) },
  } as Parameters<typeof Bun.build>[0])
  if (!result.success) {
    throw new AggregateError(result.logs, `bun build --compile${target ? ` --target=${target}` : ''} failed:\n${result.logs.join('\n')}`)
  }
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

if (import.meta.main) {
  await compileBinary('dist/proxy')
  const digest = sha256File('dist/proxy')
  writeFileSync('dist/proxy.sha256', `${digest}  proxy\n`)
  console.log(`built dist/proxy (sha256 ${digest.slice(0, 16)}…)`)
}
