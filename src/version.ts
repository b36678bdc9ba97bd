/**
 * Version text for --version: the package version, the git commit baked in at build time
 * (scripts/build.ts defines PROXY_GIT_COMMIT), and the runtime's version.
 */
import pkg from '../package.json' with { type: 'json' }

declare const PROXY_GIT_COMMIT: string | undefined

export const VERSION: string = pkg.version

function commit(): string {
  try {
    return typeof PROXY_GIT_COMMIT === 'string' ? PROXY_GIT_COMMIT : 'dev'
  } catch {
    return 'dev'
  }
}

function runtime(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } }
  if (g.Bun) return `bun ${g.Bun.version}`
  if (g.Deno) return `deno ${g.Deno.version.deno}`
  return `node ${process.versions.node}`
}

export const VERSION_TEXT = `proxy ${VERSION} (commit ${commit()}, ${runtime()})`
