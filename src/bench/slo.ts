/**
 * Service level objectives for CI: "p99.total<300ms,p50.wait<80ms". Parsed once; evaluated
 * against the overall phase statistics. A broken objective makes `bench` exit 4.
 */
import { UsageError } from '../lib/errors.ts'
import { parseDurationMs } from '../lib/units.ts'
import type { Report } from './aggregate.ts'
import { PHASES, type Phase } from './timings.ts'

const STATS = ['min', 'mean', 'p50', 'p90', 'p99', 'max'] as const
type Stat = (typeof STATS)[number]

export interface Objective {
  text: string
  stat: Stat
  phase: Phase
  op: '<' | '<='
  limitMs: number
}

export function parseSlo(raw: string): Objective[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((text) => {
      const m = /^(\w+)\.(\w+)\s*(<=|<)\s*(\S+)$/.exec(text)
      if (!m) throw new UsageError(`--slo: "${text}" is not an objective; write e.g. "p99.total<300ms"`)
      const [, stat, phase, op, value] = m
      if (!STATS.includes(stat as Stat)) throw new UsageError(`--slo: "${stat}" is not a statistic; use one of ${STATS.join(', ')}`)
      if (!PHASES.includes(phase as Phase)) throw new UsageError(`--slo: "${phase}" is not a phase; use one of ${PHASES.join(', ')}`)
      const limitMs = parseDurationMs(value!)
      if (limitMs === undefined) throw new UsageError(`--slo: "${value}" is not a duration; use e.g. "300ms"`)
      return { text, stat: stat as Stat, phase: phase as Phase, op: op as '<' | '<=', limitMs }
    })
}

export interface SloResult {
  objective: Objective
  actualMs: number | undefined
  ok: boolean
}

export function evaluateSlo(objectives: readonly Objective[], r: Report): SloResult[] {
  return objectives.map((o) => {
    const actual = r.phases[o.phase]?.[o.stat]
    const ok = actual !== undefined && (o.op === '<' ? actual < o.limitMs : actual <= o.limitMs)
    return { objective: o, actualMs: actual, ok }
  })
}
