/**
 * Samples to the report's data (the JSON document): per-phase summaries overall and for cold
 * and warm connections separately, status and error counts, rate, the histogram of total, and
 * the A/B comparison. Pure: no I/O, no colour. The schema is documented in the README.
 */
import { PHASES, type Phase } from './timings.ts'
import { bootstrapRatio, histogram, summarize, type HistogramBin, type Summary } from './stats.ts'
import type { Sample } from './runner.ts'

export const SCHEMA = 'proxy-bench/1'

export type PhaseStats = Omit<Summary, 'p95'>

export interface Group {
  requests: number
  errors: number
  status: Record<string, number>
  errors_by_kind: Record<string, number>
  phases: Partial<Record<Phase, PhaseStats>>
}

export interface Report extends Group {
  url: string
  duration_ms: number
  rps: number
  cold: Group
  warm: Group
  histogram: HistogramBin[]
  /** --rate only: total latency measured from the intended send time. */
  corrected_total?: PhaseStats
  connection?: { remote_address?: string; family?: number; tls_version?: string; alpn?: string; cipher?: string }
}

export interface PhaseComparison {
  a_p50: number
  b_p50: number
  a_p95: number
  b_p95: number
  /** median(a) / median(b): above 1 means B is faster. */
  ratio: number
  ci95: [number, number]
}

export interface Comparison {
  phases: Partial<Record<Phase, PhaseComparison>>
  verdict: string
}

function strip(s: Summary): PhaseStats {
  const { p95: _p95, ...rest } = s
  return rest
}

export function group(samples: readonly Sample[]): Group {
  const status: Record<string, number> = {}
  const kinds: Record<string, number> = {}
  let errors = 0
  for (const s of samples) {
    if (s.error) {
      errors++
      kinds[s.error] = (kinds[s.error] ?? 0) + 1
    } else if (s.status !== undefined) status[s.status] = (status[s.status] ?? 0) + 1
  }
  const phases: Partial<Record<Phase, PhaseStats>> = {}
  for (const p of PHASES) {
    const values = samples.filter((s) => !s.error && s.phases[p] !== undefined).map((s) => s.phases[p]!)
    const sum = summarize(values)
    if (sum) phases[p] = strip(sum)
  }
  return { requests: samples.length, errors, status, errors_by_kind: kinds, phases }
}

export function report(url: string, samples: readonly Sample[], elapsedMs: number): Report {
  const ok = samples.filter((s) => !s.error)
  const corrected = summarize(ok.filter((s) => s.correctedTotal !== undefined).map((s) => s.correctedTotal!))
  const first = samples.find((s) => s.remoteAddress)
  return {
    url,
    duration_ms: elapsedMs,
    rps: elapsedMs > 0 ? (samples.length * 1000) / elapsedMs : 0,
    ...group(samples),
    cold: group(samples.filter((s) => !s.reused)),
    warm: group(samples.filter((s) => s.reused)),
    histogram: histogram(ok.map((s) => s.phases.total!)),
    ...(corrected ? { corrected_total: strip(corrected) } : {}),
    connection: first ? { remote_address: first.remoteAddress, family: first.family, tls_version: first.tlsVersion, alpn: first.alpn, cipher: first.cipher } : undefined,
  }
}

export function compare(a: readonly Sample[], b: readonly Sample[], seed = 1): Comparison {
  const phases: Partial<Record<Phase, PhaseComparison>> = {}
  for (const p of PHASES) {
    const va = a.filter((s) => !s.error && s.phases[p] !== undefined).map((s) => s.phases[p]!)
    const vb = b.filter((s) => !s.error && s.phases[p] !== undefined).map((s) => s.phases[p]!)
    const sa = summarize(va)
    const sb = summarize(vb)
    const r = bootstrapRatio(va, vb, 1000, seed)
    if (!sa || !sb || !r) continue
    phases[p] = { a_p50: sa.p50, b_p50: sb.p50, a_p95: sa.p95, b_p95: sb.p95, ratio: r.ratio, ci95: [r.lo, r.hi] }
  }
  return { phases, verdict: verdict(phases.total) }
}

export function verdict(total: PhaseComparison | undefined): string {
  if (!total) return 'no comparison: one side has no successful request'
  const [lo, hi] = total.ci95
  const f = (x: number) => x.toFixed(2)
  if (lo > 1) return `B is ${f(total.ratio)}× faster in total (95% CI ${f(lo)}–${f(hi)}×)`
  if (hi < 1) return `B is ${f(1 / total.ratio)}× slower in total (95% CI ${f(1 / hi)}–${f(1 / lo)}×)`
  return `no significant difference in total (ratio ${f(total.ratio)}, 95% CI ${f(lo)}–${f(hi)}× includes 1)`
}
