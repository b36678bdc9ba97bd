/**
 * Samples to the report's data (the JSON document): per-phase summaries overall and for cold,
 * resumed and warm samples separately, connections and their streams, status and error counts,
 * rate, the histogram of total, the raw values a later --baseline compares with, and the A/B
 * comparison with its verdict. Pure: no I/O, no colour. The schema is documented in the README.
 */
import { PHASES, type Phase } from './timings.ts'
import { bootstrapRatio, histogram, seededRandom, summarize, type HistogramBin, type Summary } from './stats.ts'
import type { ConnectionRecord, Sample } from './runner.ts'

export const SCHEMA = 'proxy-bench/1'

export type PhaseStats = Omit<Summary, 'p95'>

export interface Group {
  requests: number
  errors: number
  status: Record<string, number>
  errors_by_kind: Record<string, number>
  phases: Partial<Record<Phase, PhaseStats>>
}

export interface ConnectionsSummary {
  opened: number
  /** TLS only: how many of the opened connections resumed an earlier session. */
  tls_resumed?: number
  requests_per_connection: { min: number; mean: number; max: number }
  /** The most requests in flight at once on one connection (above 1 only with HTTP/2 streams). */
  max_streams_in_flight: number
  /** HTTP/2: requests the server did not process (GOAWAY, REFUSED_STREAM), sent again on a new connection. */
  retried_unprocessed?: number
}

export interface Report extends Group {
  url: string
  started_at?: string
  duration_ms: number
  rps: number
  /** New connection, full handshake (or no TLS). */
  cold: Group
  /** New connection, resumed TLS session. */
  resumed: Group
  /** Reused connection. */
  warm: Group
  histogram: HistogramBin[]
  /** --rate only: total latency measured from the intended send time. */
  corrected_total?: PhaseStats
  connection?: { remote_address?: string; family?: number; tls_version?: string; alpn?: string; cipher?: string }
  connections?: ConnectionsSummary
  /** Per phase, the successful samples' values in ms (a seeded subsample above MAX_VALUES), for --baseline. */
  values: Partial<Record<Phase, number[]>>
}

export interface PhaseComparison {
  a_p50: number
  b_p50: number
  a_p95: number
  b_p95: number
  /** median(a) / median(b): above 1 means B is faster. */
  ratio: number
  /** Absent when a side has fewer than MIN_CI_SAMPLES values ("n too small"). */
  ci95?: [number, number]
}

/** b_faster / b_slower, or neither: CI includes 1, the difference is under MIN_EFFECT, or too few samples. */
export type Outcome = 'b_faster' | 'b_slower' | 'no_difference' | 'n_too_small' | 'no_comparison'

export interface Comparison {
  phases: Partial<Record<Phase, PhaseComparison>>
  outcome: Outcome
  verdict: string
}

/** Below this many samples on a side a bootstrap interval means nothing: "n too small". */
export const MIN_CI_SAMPLES = 5
/** Medians closer than this (as a ratio) are "no meaningful difference" even when the CI excludes 1. */
export const MIN_EFFECT = 0.05
/** At most this many values per phase are kept in the JSON for a later --baseline. */
export const MAX_VALUES = 20_000

function strip(s: Summary): PhaseStats {
  const { p95: _p95, ...rest } = s
  return rest
}

/**
 * Whether a sample failed, as a user sees it: no complete answer, or a 5xx one. Its timings stay
 * out of every statistic (a proxy answering 502 at once is not fast) and it counts as an error,
 * named by its kind or as HTTP_5xx (HTTP_502, ...).
 */
export function failed(s: Sample): boolean {
  return s.error !== undefined || (s.status ?? 0) >= 500
}

export function group(samples: readonly Sample[]): Group {
  const status: Record<string, number> = {}
  const kinds: Record<string, number> = {}
  let errors = 0
  for (const s of samples) {
    if (s.error) {
      errors++
      kinds[s.error] = (kinds[s.error] ?? 0) + 1
    } else if (s.status !== undefined) {
      status[s.status] = (status[s.status] ?? 0) + 1
      if (s.status >= 500) {
        errors++
        kinds[`HTTP_${s.status}`] = (kinds[`HTTP_${s.status}`] ?? 0) + 1
      }
    }
  }
  const phases: Partial<Record<Phase, PhaseStats>> = {}
  for (const p of PHASES) {
    const values = samples.filter((s) => !failed(s) && s.phases[p] !== undefined).map((s) => s.phases[p]!)
    const sum = summarize(values)
    if (sum) phases[p] = strip(sum)
  }
  return { requests: samples.length, errors, status, errors_by_kind: kinds, phases }
}

/** Sample kinds: cold (new connection, full handshake), resumed (new, resumed), warm (reused). */
export function kindOf(s: Sample): 'cold' | 'resumed' | 'warm' {
  return s.reused ? 'warm' : s.tlsResumed ? 'resumed' : 'cold'
}

export function valuesOf(samples: readonly Sample[], p: Phase): number[] {
  const out: number[] = []
  for (const s of samples) if (!failed(s) && s.phases[p] !== undefined) out.push(s.phases[p]!)
  return out
}

/** Rounded to the µs, and a seeded uniform subsample when there are more than `max`. */
function keep(values: number[], max = MAX_VALUES): number[] {
  let v = values
  if (v.length > max) {
    const rnd = seededRandom(7)
    v = [...v]
    for (let i = 0; i < max; i++) {
      const j = i + Math.floor(rnd() * (v.length - i))
      ;[v[i], v[j]] = [v[j]!, v[i]!]
    }
    v = v.slice(0, max)
  }
  return v.map((x) => Math.round(x * 1000) / 1000)
}

function connectionsSummary(conns: readonly ConnectionRecord[]): ConnectionsSummary | undefined {
  if (conns.length === 0) return undefined
  let sum = 0
  let min = Infinity
  let max = 0
  let peak = 0
  let resumed = 0
  let tls = false
  for (const c of conns) {
    sum += c.requests
    min = Math.min(min, c.requests)
    max = Math.max(max, c.requests)
    peak = Math.max(peak, c.peakInFlight)
    if (c.tlsResumed !== undefined) tls = true
    if (c.tlsResumed) resumed++
  }
  return { opened: conns.length, ...(tls ? { tls_resumed: resumed } : {}), requests_per_connection: { min, mean: sum / conns.length, max }, max_streams_in_flight: peak }
}

export function report(url: string, samples: readonly Sample[], elapsedMs: number, conns?: readonly ConnectionRecord[], retriedUnprocessed = 0): Report {
  const ok = samples.filter((s) => !failed(s))
  const corrected = summarize(ok.filter((s) => s.correctedTotal !== undefined).map((s) => s.correctedTotal!))
  const first = samples.find((s) => s.remoteAddress)
  const values: Partial<Record<Phase, number[]>> = {}
  for (const p of PHASES) {
    const v = valuesOf(samples, p)
    if (v.length) values[p] = keep(v)
  }
  const summary = conns ? connectionsSummary(conns) : undefined
  if (summary && retriedUnprocessed > 0) summary.retried_unprocessed = retriedUnprocessed
  return {
    url,
    started_at: samples.length ? new Date(samples.reduce((m, s) => Math.min(m, s.ts), Infinity)).toISOString() : undefined,
    duration_ms: elapsedMs,
    rps: elapsedMs > 0 ? (samples.length * 1000) / elapsedMs : 0,
    ...group(samples),
    cold: group(samples.filter((s) => kindOf(s) === 'cold')),
    resumed: group(samples.filter((s) => kindOf(s) === 'resumed')),
    warm: group(samples.filter((s) => kindOf(s) === 'warm')),
    histogram: histogram(ok.map((s) => s.phases.total!)),
    ...(corrected ? { corrected_total: strip(corrected) } : {}),
    connection: first ? { remote_address: first.remoteAddress, family: first.family, tls_version: first.tlsVersion, alpn: first.alpn, cipher: first.cipher } : undefined,
    ...(summary ? { connections: summary } : {}),
    values,
  }
}

/** Per phase, ratio of medians with a bootstrap CI; from samples (compare) or saved values (compareValues). */
export function compareValues(a: Partial<Record<Phase, readonly number[]>>, b: Partial<Record<Phase, readonly number[]>>, seed = 1): Comparison {
  const phases: Partial<Record<Phase, PhaseComparison>> = {}
  let tooSmall = false
  for (const p of PHASES) {
    const va = a[p] ?? []
    const vb = b[p] ?? []
    const sa = summarize(va)
    const sb = summarize(vb)
    if (!sa || !sb) continue
    if (va.length < MIN_CI_SAMPLES || vb.length < MIN_CI_SAMPLES) {
      if (p === 'total') tooSmall = true
      phases[p] = { a_p50: sa.p50, b_p50: sb.p50, a_p95: sa.p95, b_p95: sb.p95, ratio: sb.p50 > 0 ? sa.p50 / sb.p50 : Number.NaN }
      continue
    }
    const r = bootstrapRatio(va, vb, 1000, seed)
    if (!r) continue
    phases[p] = { a_p50: sa.p50, b_p50: sb.p50, a_p95: sa.p95, b_p95: sb.p95, ratio: r.ratio, ci95: [r.lo, r.hi] }
  }
  if (tooSmall) {
    const n = (v: readonly number[] | undefined) => v?.length ?? 0
    return { phases, outcome: 'n_too_small', verdict: `n too small for a confidence interval: ${n(a.total)} and ${n(b.total)} successful requests; use -n ${MIN_CI_SAMPLES} or more per side` }
  }
  const o = outcomeOf(phases.total)
  return { phases, outcome: o, verdict: verdict(phases.total) }
}

export function compare(a: readonly Sample[], b: readonly Sample[], seed = 1): Comparison {
  const va: Partial<Record<Phase, number[]>> = {}
  const vb: Partial<Record<Phase, number[]>> = {}
  for (const p of PHASES) {
    va[p] = valuesOf(a, p)
    vb[p] = valuesOf(b, p)
  }
  return compareValues(va, vb, seed)
}

export function outcomeOf(total: PhaseComparison | undefined): Outcome {
  if (!total) return 'no_comparison'
  if (!total.ci95) return 'n_too_small'
  const [lo, hi] = total.ci95
  if (lo > 1 && total.ratio >= 1 + MIN_EFFECT) return 'b_faster'
  if (hi < 1 && total.ratio <= 1 / (1 + MIN_EFFECT)) return 'b_slower'
  return 'no_difference'
}

export function verdict(total: PhaseComparison | undefined): string {
  if (!total) return 'no comparison: one side has no successful request'
  if (!total.ci95) return `n too small for a confidence interval (ratio of medians ${total.ratio.toFixed(2)}); use -n ${MIN_CI_SAMPLES} or more per side`
  const [lo, hi] = total.ci95
  const f = (x: number) => x.toFixed(2)
  const o = outcomeOf(total)
  if (o === 'b_faster') return `B is ${f(total.ratio)}× faster in total (95% CI ${f(lo)}–${f(hi)}×)`
  if (o === 'b_slower') return `B is ${f(1 / total.ratio)}× slower in total (95% CI ${f(1 / hi)}–${f(1 / lo)}×)`
  if (lo > 1 || hi < 1) return `no meaningful difference in total (ratio ${f(total.ratio)}, 95% CI ${f(lo)}–${f(hi)}×: under ${MIN_EFFECT * 100}%)`
  return `no significant difference in total (ratio ${f(total.ratio)}, 95% CI ${f(lo)}–${f(hi)}× includes 1)`
}

/** One --samples line (snake_case, as the JSON document); absent fields did not apply. */
export function sampleRecord(s: Sample, url: string): Record<string, unknown> {
  return {
    seq: s.seq,
    side: s.side,
    url,
    ts: s.ts,
    kind: kindOf(s),
    reused: s.reused,
    tls_resumed: s.tlsResumed,
    connection: s.conn,
    phases: s.phases,
    corrected_total: s.correctedTotal,
    status: s.status,
    bytes: s.bytes,
    error: s.error,
    error_message: s.errorMessage,
    remote_address: s.remoteAddress,
    family: s.family,
    tls_version: s.tlsVersion,
    alpn: s.alpn,
    cipher: s.cipher,
  }
}
