/**
 * Merging the Prometheus text (exposition format 0.0.4) of several worker processes into one,
 * as pure functions: parse, merge, render. Counters and histograms (buckets, _sum, _count) are
 * summed per label set without the `worker` label, which is what a scrape of a single process
 * would have shown; gauges, summaries and untyped samples stay per worker, labelled
 * `worker="i"`, because a sum of gauges is not always meaningful (health flags, DNS answer age)
 * and PromQL can sum the ones where it is. Scraping the workers and keeping counters monotonic
 * across restarts live in workers-admin.ts.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  /** The sample's own name: for a histogram family `x`, one of x_bucket, x_sum, x_count. */
  name: string
  /** Label pairs in the order they came, values unescaped. */
  labels: [string, string][]
  value: number
}

export interface Family {
  name: string
  /** The HELP text as written (still escaped as the format escapes it). */
  help?: string
  type: MetricType
  samples: Sample[]
}

/** One process's metrics; `worker` undefined marks counts carried from workers that are gone. */
export interface MetricsInput {
  worker: string | undefined
  families: Family[]
}

export class MetricsParseError extends Error {
  readonly code = 'E_METRICS_PARSE'
  constructor(lineNo: number, why: string) {
    super(`metrics text line ${lineNo}: ${why}; expected Prometheus text format 0.0.4`)
    this.name = 'MetricsParseError'
  }
}

const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

/** The samples of a family whose values add up across processes. */
function summed(type: MetricType): boolean {
  return type === 'counter' || type === 'histogram'
}

/** Which family a sample belongs to: its own name, or a histogram's/summary's suffixed series. */
function familyOf(byName: Map<string, Family>, sampleName: string): Family | undefined {
  const own = byName.get(sampleName)
  if (own) return own
  const m = /^(.*)_(bucket|sum|count)$/.exec(sampleName)
  if (!m) return undefined
  const base = byName.get(m[1]!)
  if (!base) return undefined
  if (base.type === 'histogram' || (base.type === 'summary' && m[2] !== 'bucket')) return base
  return undefined
}

function parseValue(raw: string, lineNo: number): number {
  if (raw === '+Inf' || raw === 'Inf') return Infinity
  if (raw === '-Inf') return -Infinity
  if (raw === 'NaN') return NaN
  const v = Number(raw)
  if (raw === '' || Number.isNaN(v)) throw new MetricsParseError(lineNo, `"${raw}" is not a sample value`)
  return v
}

/** Parses `{a="x",b="y"}` starting at s[0] === '{'; returns the labels and what follows. */
function parseLabels(s: string, lineNo: number): { labels: [string, string][]; rest: string } {
  const labels: [string, string][] = []
  let i = 1
  const skipSpace = () => {
    while (s[i] === ' ' || s[i] === '\t') i++
  }
  for (;;) {
    skipSpace()
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) }
    const name = LABEL_NAME.exec(s.slice(i))
    if (!name) throw new MetricsParseError(lineNo, 'a label name was expected')
    i += name[0].length
    skipSpace()
    if (s[i] !== '=') throw new MetricsParseError(lineNo, `label ${name[0]} has no ="value"`)
    i++
    skipSpace()
    if (s[i] !== '"') throw new MetricsParseError(lineNo, `label ${name[0]} has no ="value"`)
    i++
    let value = ''
    for (;;) {
      const c = s[i]
      if (c === undefined) throw new MetricsParseError(lineNo, `label ${name[0]}'s value is not closed`)
      i++
      if (c === '"') break
      if (c !== '\\') {
        value += c
        continue
      }
      const e = s[i++]
      value += e === 'n' ? '\n' : e === '\\' || e === '"' ? e : `\\${e ?? ''}`
    }
    labels.push([name[0], value])
    skipSpace()
    if (s[i] === ',') i++
    else if (s[i] !== '}') throw new MetricsParseError(lineNo, 'a "," or "}" was expected after a label')
  }
}

/** Parses Prometheus text format 0.0.4. Timestamps are read past and dropped. */
export function parseExposition(text: string): Family[] {
  const families: Family[] = []
  const byName = new Map<string, Family>()
  const declare = (name: string): Family => {
    let f = byName.get(name)
    if (!f) {
      f = { name, type: 'untyped', samples: [] }
      byName.set(name, f)
      families.push(f)
    }
    return f
  }
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (line === '') continue
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(line)
      if (!m) continue // any other comment
      const f = declare(m[2]!)
      if (m[1] === 'HELP') f.help = m[3] ?? ''
      else {
        const t = (m[3] ?? '').trim() as MetricType
        if (!TYPES.has(t)) throw new MetricsParseError(n + 1, `"${t}" is not a metric type`)
        f.type = t
      }
      continue
    }
    const name = NAME.exec(line)
    if (!name) throw new MetricsParseError(n + 1, 'a metric name was expected')
    let rest = line.slice(name[0].length)
    let labels: [string, string][] = []
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, n + 1))
    const fields = rest.trim().split(/\s+/)
    if (fields.length < 1 || fields.length > 2) throw new MetricsParseError(n + 1, 'a value (and an optional timestamp) was expected')
    const value = parseValue(fields[0]!, n + 1)
    const family = familyOf(byName, name[0]) ?? declare(name[0])
    family.samples.push({ name: name[0], labels, value })
  }
  return families
}

/** A series' identity: its name and its labels in a fixed order, `worker` left out. */
function seriesKey(name: string, labels: [string, string][]): string {
  const kept = labels.filter(([k]) => k !== 'worker').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `${name}\u0000${kept.map(([k, v]) => `${k}=${v}`).join('\u0000')}`
}

/**
 * Merges processes' families: counters and histograms summed per label set (the `worker` label
 * dropped), every other type kept per process with `worker="i"` put first. An input without a
 * worker contributes its summed families only. Families and series keep first-seen order; the
 * first type seen for a name wins.
 */
export function mergeFamilies(inputs: MetricsInput[]): Family[] {
  const out: Family[] = []
  const byName = new Map<string, { family: Family; series: Map<string, Sample> }>()
  for (const { worker, families } of inputs) {
    for (const f of families) {
      let entry = byName.get(f.name)
      if (!entry) {
        if (worker === undefined && !summed(f.type)) continue
        entry = { family: { name: f.name, help: f.help, type: f.type, samples: [] }, series: new Map() }
        byName.set(f.name, entry)
        out.push(entry.family)
      }
      const target = entry.family
      if (target.help === undefined) target.help = f.help
      if (summed(target.type)) {
        for (const s of f.samples) {
          const key = seriesKey(s.name, s.labels)
          const have = entry.series.get(key)
          if (have) have.value += s.value
          else {
            const copy = { name: s.name, labels: s.labels.filter(([k]) => k !== 'worker'), value: s.value }
            entry.series.set(key, copy)
            target.samples.push(copy)
          }
        }
      } else if (worker !== undefined) {
        for (const s of f.samples) target.samples.push({ name: s.name, labels: [['worker', worker], ...s.labels.filter(([k]) => k !== 'worker')], value: s.value })
      }
    }
  }
  return out
}

/** Only the families whose values add up (counters, histograms), for carrying a gone worker's counts. */
export function summedFamilies(families: Family[]): Family[] {
  return families.filter((f) => summed(f.type))
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return Number.isNaN(v) ? 'NaN' : String(v)
}

/** Renders families as Prometheus text format 0.0.4 (HELP and TYPE before each family's samples). */
export function renderExposition(families: Family[]): string {
  const out: string[] = []
  for (const f of families) {
    if (f.help !== undefined) out.push(`# HELP ${f.name} ${f.help}`)
    out.push(`# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = s.labels.length ? `{${s.labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : ''
      out.push(`${s.name}${labels} ${formatValue(s.value)}`)
    }
  }
  return out.length ? out.join('\n') + '\n' : ''
}
