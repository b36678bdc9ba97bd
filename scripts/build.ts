/**
 * Builds the single executable: `bun build --compile` into dist/proxy, with the git commit baked
 * in for --version, and writes dist/proxy.sha256 beside it.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()
  } catch {
    return 'unknown'
  }
}

mkdirSync('dist', { recursive: true })
const result = await Bun.build({
  entrypoints: ['src/main.ts'],
  compile: { outfile: 'dist/proxy' },
  minify: true,
  bytecode: true,
  target: 'bun',
  format: 'esm',
  define: { PROXY_GIT_COMMIT: JSON.stringify(gitCommit()) },
} as Parameters<typeof Bun.build>[0])
if (!result.success) {
  for (const log of result.logs) console.error(log)
  process.exit(1)
}
const digest = createHash('sha256').update(readFileSync('dist/proxy')).digest('hex')
writeFileSync('dist/proxy.sha256', `${digest}  proxy\n`)
console.log(`built dist/proxy (sha256 ${digest.slice(0, 16)}…)`)
