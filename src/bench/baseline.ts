/**
 * --baseline FILE.json: reads a run saved with --json, checks it is one (a single-URL document
 * of this schema with its raw values), and compares this run with it phase by phase, with the
 * same bootstrap intervals and thresholds as --vs (aggregate.ts). The saved run is side A, this
 * run side B; the verdict is worded as regressed / improved / no difference. Reading the file is
 * the only I/O; the comparison is pure.
 */
import { readFileSync } from 'node:fs'
import { UsageError } from '../lib/errors.ts'
import { compareValues, SCHEMA, type Comparison, type Report } from './aggregate.ts'
import { PHASES, type Phase } from './timings.ts'

export type BaselineOutcome = 'regressed' | 'improved' | 'no_difference' | 'n_too_small' | 'no_comparison'

export interface BaselineComparison extends Omit<Comparison, 'outcome'> {
  file: string
  baseline_url: string
  baseline_started_at?: string
  outcome: BaselineOutcome
}

export function loadBaseline(file: string): Report {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--baseline: cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new UsageError(`--baseline: "${file}" is not JSON; save a run with: proxy bench URL --json > ${file}`)
  }
  if (doc.schema !== SCHEMA) throw new UsageError(`--baseline: "${file}" is not a ${SCHEMA} document (schema: ${JSON.stringify(doc.schema)}); save a run with --json`)
  if (doc.a !== undefined) throw new UsageError(`--baseline: "${file}" is a --vs document; save a single-URL run with --json`)
  const values = doc.values as Record<string, unknown> | undefined
  if (!values || typeof values !== 'object' || !Array.isArray(values.total)) {
    throw new UsageError(`--baseline: "${file}" has no per-request values (saved by an older version, or no request succeeded); save the run again with --json`)
  }
  for (const p of Object.keys(values)) {
    const v = values[p]
    if (!PHASES.includes(p as Phase) || !Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw new UsageError(`--baseline: "${file}": values.${p} is not a list of milliseconds`)
  }
  return doc as unknown as Report
}

export function compareWithBaseline(file: string, baseline: Report, current: Report, seed = 1): BaselineComparison {
  const cmp = compareValues(baseline.values, current.values, seed)
  const f = (x: number) => x.toFixed(2)
  const t = cmp.phases.total
  let outcome: BaselineOutcome
  let verdict: string
  switch (cmp.outcome) {
    case 'b_slower':
      outcome = 'regressed'
      verdict = `regressed: this run is ${f(1 / t!.ratio)}× slower in total than the baseline (95% CI ${f(1 / t!.ci95![1])}–${f(1 / t!.ci95![0])}×)`
      break
    case 'b_faster':
      outcome = 'improved'
      verdict = `improved: this run is ${f(t!.ratio)}× faster in total than the baseline (95% CI ${f(t!.ci95![0])}–${f(t!.ci95![1])}×)`
      break
    case 'no_difference':
      outcome = 'no_difference'
      verdict = `no difference from the baseline ${cmp.verdict.replace(/^no (significant|meaningful) difference /, '')}`
      break
    default:
      outcome = cmp.outcome
      verdict = cmp.verdict
  }
  return { file, baseline_url: baseline.url, baseline_started_at: baseline.started_at, phases: cmp.phases, outcome, verdict }
}
