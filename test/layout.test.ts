/**
 * The layout's rules, checked on the source tree: no import circles; lower layers (lib, runtime,
 * dns, config, http1) import nothing from proxy, bench, commands or demo; bench and proxy never
 * import each other; no source file over 420 lines (the aim is about 400); every file opens with
 * a header comment that says what it owns.
 */
import { expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

const SRC = 'src'

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

const ALL = files(SRC)
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/gm

/** Relative imports of each file, as paths under src/ (type-only imports included: they couple too). */
const GRAPH = new Map(
  ALL.map((f) => {
    const text = readFileSync(f, 'utf8')
    return [f, [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(f), m[1]!)))] as const
  }),
)

const layer = (f: string) => relative(SRC, f).split('/')[0]!.replace(/\.ts$/, '')

test('no import circles', () => {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '))
      return
    }
    state.set(f, 'open')
    for (const dep of GRAPH.get(f) ?? []) visit(dep, [...path, f])
    state.set(f, 'done')
  }
  for (const f of ALL) visit(f, [])
  expect(cycles).toEqual([])
})

test('lower layers never import higher ones; bench and proxy never import each other', () => {
  const LOWER = new Set(['lib', 'runtime', 'dns', 'config', 'http1', 'version'])
  const HIGHER = new Set(['proxy', 'bench', 'commands', 'demo', 'cli', 'main'])
  const bad: string[] = []
  for (const [f, deps] of GRAPH) {
    for (const d of deps) {
      const from = layer(f)
      const to = layer(d)
      if (LOWER.has(from) && HIGHER.has(to)) bad.push(`${f} -> ${d}`)
      if ((from === 'bench' && to === 'proxy') || (from === 'proxy' && to === 'bench')) bad.push(`${f} -> ${d}`)
    }
  }
  expect(bad).toEqual([])
})

test('no source file over about 400 lines', () => {
  const long = ALL.map((f) => [f, readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 420)
  expect(long).toEqual([])
})

test('every source file opens with a header comment', () => {
  const bare = ALL.filter((f) => !/^(#!.*\n)?\/\*\*/.test(readFileSync(f, 'utf8')))
  expect(bare).toEqual([])
})
