/** The [cache] table, `cache = false` on [[route]], and the --cache flags. */
import { expect, test } from 'bun:test'
import { parseConfigText } from '../../../src/config/load.ts'
import { resolveConfig } from '../../../src/config/resolve.ts'
import { flagLayer } from '../../../src/commands/flags.ts'
import { ConfigError } from '../../../src/lib/errors.ts'

const UPSTREAM = '[upstream]\nurl = "http://127.0.0.1:1"\n'

test('off by default; max_object_size defaults to 8MiB but never exceeds max_size', () => {
  const off = resolveConfig(undefined, { upstream: { url: 'http://127.0.0.1:1' } })
  expect(off.cache).toEqual({ maxBytes: 0, maxObjectBytes: 0, staleIfErrorMs: 0 })
  const on = resolveConfig(parseConfigText(`${UPSTREAM}[cache]\nmax_size = "64MiB"\nstale_if_error = "5m"\n`, 'p.toml'))
  expect(on.cache).toEqual({ maxBytes: 64 << 20, maxObjectBytes: 8 << 20, staleIfErrorMs: 300_000 })
})

test('--cache and its companions set the [cache] table, and override the file', () => {
  const c = resolveConfig(parseConfigText(`${UPSTREAM}[cache]\nmax_size = "1MiB"\n`, 'p.toml'), flagLayer({ cache: '256MiB', cacheMaxObjectSize: '1MiB', cacheStaleIfError: '30s' }))
  expect(c.cache).toEqual({ maxBytes: 256 << 20, maxObjectBytes: 1 << 20, staleIfErrorMs: 30_000 })
})

test('routes carry cache = true unless they say false', () => {
  const c = resolveConfig(parseConfigText(`${UPSTREAM}[[route]]\npath_prefix = "/api/"\nupstream = "default"\ncache = false\n`, 'p.toml'))
  expect(c.routes.map((r) => r.cache)).toEqual([false, true])
})

test.each([
  ['[cache]\nmax_size = "lots"\n', 'cache.max_size', 4],
  ['[cache]\nmax_objekt_size = 1\n', 'cache.max_objekt_size', 4],
  ['[[route]]\npath_prefix = "/x"\nupstream = "default"\ncache = "no"\n', 'route[0].cache', 6],
])('a bad value names file, line and key: %p', (text, keyPath, line) => {
  try {
    resolveConfig(parseConfigText(`${UPSTREAM}${text}`, 'p.toml'))
    throw new Error('expected a ConfigError')
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).location).toMatchObject({ file: 'p.toml', keyPath, line })
  }
})
