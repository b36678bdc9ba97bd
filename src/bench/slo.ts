/**
 * Service level objectives for CI: "p99.total<300ms,p50.wait<80ms", and with --baseline also
 * regression budgets: "p50.total<+10%" (at most 10% above the saved run). Parsed once; evaluated
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
  /** Absolute limit; NaN for a relative one. */
  limitMs: number
  /** "+10%": allowed growth over the baseline's same statistic, in percent. */
  regressionPct?: number
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
      const rel = /^\+(\d+(?:\.\d+)?)%$/.exec(value!)
      if (rel) return { text, stat: stat as Stat, phase: phase as Phase, op: op as '<' | '<=', limitMs: Number.NaN, regressionPct: Number(rel[1]) }
      const limitMs = parseDurationMs(value!)
      if (limitMs === undefined) throw new UsageError(`--slo: "${value}" is not a duration or a regression budget; use e.g. "300ms" or "+10%" (with --baseline)`)
      return { text, stat: stat as Stat, phase: phase as Phase, op: op as '<' | '<=', limitMs }
    })
}

export interface SloResult {
  objective: Objective
  actualMs: number | undefined
  /** Relative objectives: the baseline's value of the same statistic. */
  baselineMs?: number
  ok: boolean
  /** With --vs: the side (A is the URL, B the --vs URL) it was checked on. */
  side?: 'a' | 'b'
}

/** What a relative objective is measured against: the saved run, and whether each phase regressed beyond noise. */
export interface SloBaseline {
  report: Report
  /** The --baseline comparison found this phase slower (CI excludes 1, beyond the minimum effect). */
  regressed: (phase: Phase) => boolean
}

/**
 * A relative objective is broken only when the phase regressed (by the comparison's own test)
 * and the statistic grew beyond its budget: noise alone never fails a build.
 */
export function evaluateSlo(objectives: readonly Objective[], r: Report, baseline?: SloBaseline): SloResult[] {
  return objectives.map((o) => {
    const actual = r.phases[o.phase]?.[o.stat]
    if (o.regressionPct !== undefined) {
      const before = baseline?.report.phases[o.phase]?.[o.stat]
      if (actual === undefined || before === undefined || !baseline) return { objective: o, actualMs: actual, ok: false }
      const limit = before * (1 + o.regressionPct / 100)
      const within = o.op === '<' ? actual < limit : actual <= limit
      return { objective: o, actualMs: actual, baselineMs: before, ok: within || !baseline.regressed(o.phase) }
    }
    const ok = actual !== undefined && (o.op === '<' ? actual < o.limitMs : actual <= o.limitMs)
    return { objective: o, actualMs: actual, ok }
  })
}
