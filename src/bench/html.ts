/**
 * --html FILE: one self-contained HTML page (inline SVG and CSS; no scripts, fonts or anything
 * fetched) with the per-phase waterfall, per-phase latency distributions (cold, resumed and warm
 * apart), a timeline of requests and errors per second, the phase tables, and for --vs or
 * --baseline the two runs side by side with the verdict. It reads on a phone (the charts scale,
 * the grid folds to one column) and on paper (print rules). Rendering is pure (renderHtml); the
 * only I/O is writing the file. Chart drawing is svg.ts.
 */
import { writeFileSync } from 'node:fs'
import { UsageError } from '../lib/errors.ts'
import { failed, kindOf, type Comparison, type Group, type Report } from './aggregate.ts'
import type { BaselineComparison } from './baseline.ts'
import type { Sample } from './runner.ts'
import { summarize } from './stats.ts'
import { esc, fmtMs, percentileSvg, timelineSvg, waterfallSvg, type CurveSeries, type WaterfallRow } from './svg.ts'
import { PHASES, type Phase } from './timings.ts'

export interface HtmlInput {
  a: Report
  aSamples: readonly Sample[]
  b?: Report
  bSamples?: readonly Sample[]
  comparison?: Comparison
  baseline?: { report: Report; comparison: BaselineComparison }
  elapsedMs: number
}

const KINDS = ['cold', 'resumed', 'warm'] as const
const KIND_TEXT: Record<(typeof KINDS)[number], string> = {
  cold: 'cold: new connection (full TLS handshake)',
  resumed: 'resumed: new connection, resumed TLS session',
  warm: 'warm: reused connection',
}
const LABEL: Record<Phase, string> = { dns: 'DNS', connect: 'CONNECT', tls: 'TLS', wait: 'WAIT', transfer: 'TRANSFER', total: 'total' }

/** A group's mean phases as consecutive segments; means add up, so "send" is what no phase names. */
function segmentsOf(g: Group | undefined): WaterfallRow['segments'] | undefined {
  if (!g?.phases.total) return undefined
  const segs: WaterfallRow['segments'] = []
  let known = 0
  for (const p of ['dns', 'connect', 'tls'] as const) {
    const m = g.phases[p]?.mean
    if (m !== undefined) {
      segs.push({ cls: p, name: LABEL[p], ms: m })
      known += m
    }
  }
  const later = (['wait', 'transfer'] as const).map((p) => g.phases[p]?.mean ?? 0)
  const send = Math.max(0, g.phases.total.mean - known - later[0]! - later[1]!)
  segs.push({ cls: 'send', name: 'SEND (request write, gaps)', ms: send })
  segs.push({ cls: 'wait', name: LABEL.wait, ms: later[0]! })
  segs.push({ cls: 'transfer', name: LABEL.transfer, ms: later[1]! })
  return segs
}

function waterfallRows(runs: readonly { name: string; report: Report }[]): WaterfallRow[] {
  const rows: WaterfallRow[] = []
  for (const k of KINDS) {
    for (const r of runs) {
      const segs = segmentsOf(r.report[k])
      if (segs) rows.push({ label: runs.length > 1 ? `${r.name} ${k}` : k, segments: segs })
    }
  }
  return rows
}

function sortedValues(samples: readonly Sample[], p: Phase, keep: (s: Sample) => boolean = () => true): number[] {
  const v: number[] = []
  for (const s of samples) if (!failed(s) && s.phases[p] !== undefined && keep(s)) v.push(s.phases[p]!)
  return v.sort((x, y) => x - y)
}

function distributions(input: HtmlInput): string {
  const charts: string[] = []
  for (const p of PHASES) {
    let series: CurveSeries[]
    if (input.b && input.bSamples) {
      series = [
        { name: 'A', cls: 'side-a', sorted: sortedValues(input.aSamples, p) },
        { name: 'B', cls: 'side-b', sorted: sortedValues(input.bSamples, p) },
      ]
    } else {
      series = KINDS.map((k) => ({ name: k, cls: k, sorted: sortedValues(input.aSamples, p, (s) => kindOf(s) === k) }))
      if (input.baseline) series.push({ name: 'baseline (all)', cls: 'side-base', sorted: [...(input.baseline.report.values[p] ?? [])].sort((x, y) => x - y) })
    }
    if (!series.some((s) => s.sorted.length)) continue
    charts.push(`<figure class="card"><figcaption>${LABEL[p]} <span class="dim">ms by percentile</span></figcaption>${percentileSvg(series, `${LABEL[p]} latency by percentile`)}</figure>`)
  }
  return charts.join('')
}

/** Requests started per bucket, as rates per second; the bucket is as short as keeps the bars under 60. */
function timeline(samples: readonly Sample[]): { bucketMs: number; rates: { ok: number; errors: number }[] } {
  if (!samples.length) return { bucketMs: 1000, rates: [] }
  let t0 = Infinity
  let t1 = -Infinity
  for (const s of samples) {
    t0 = Math.min(t0, s.ts)
    t1 = Math.max(t1, s.ts)
  }
  const bucketMs = [100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000].find((b) => (t1 - t0) / b < 60) ?? 300_000
  const out: { ok: number; errors: number }[] = []
  for (const s of samples) {
    const i = Math.floor((s.ts - t0) / bucketMs)
    while (out.length <= i) out.push({ ok: 0, errors: 0 })
    // An error here is a failed request or a 5xx answer: both are what a user sees fail.
    if (failed(s)) out[i]!.errors++
    else out[i]!.ok++
  }
  const perS = 1000 / bucketMs
  return { bucketMs, rates: out.map((b) => ({ ok: b.ok * perS, errors: b.errors * perS })) }
}

function groupTable(title: string, g: Group): string {
  const rows = PHASES.filter((p) => g.phases[p]).map((p) => {
    const s = g.phases[p]!
    return `<tr><th>${LABEL[p]}</th><td>${s.n}</td>${[s.min, s.mean, s.p50, s.p90, s.p99, s.max].map((v) => `<td>${fmtMs(v)}</td>`).join('')}</tr>`
  })
  const body = rows.length ? rows.join('') : `<tr><td colspan="8" class="dim">${g.requests ? 'no successful request' : 'none'}</td></tr>`
  return `<div class="table"><h3>${esc(title)} <span class="dim">${g.requests} requests, ${g.errors} errors</span></h3><table><thead><tr><th>phase</th><th>n</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>${body}</tbody></table></div>`
}

/** The A/B table; a phase of one side only (TLS direct against a cleartext proxy) gets a dash for the other, as in the terminal. */
function comparisonTable(cmp: Pick<Comparison, 'phases'>, names: [string, string], sides: [Report, Report]): string {
  const rows = PHASES.flatMap((p) => {
    const x = cmp.phases[p]
    if (!x) {
      const [sa, sb] = sides.map((r) => summarize(r.values[p] ?? []))
      if (!sa === !sb) return []
      const cells = [sa?.p50, sb?.p50, sa?.p95, sb?.p95].map((v) => `<td>${v === undefined ? '–' : fmtMs(v)}</td>`).join('')
      return [`<tr><th>${LABEL[p]}</th>${cells}<td class="dim" colspan="2">only ${esc(sa ? names[0] : names[1])}</td></tr>`]
    }
    const ci = x.ci95 ? `${x.ci95[0].toFixed(2)}–${x.ci95[1].toFixed(2)}` : 'n too small'
    const cls = x.ci95 && x.ci95[0] > 1 ? 'better' : x.ci95 && x.ci95[1] < 1 ? 'worse' : ''
    return [`<tr><th>${LABEL[p]}</th>${[x.a_p50, x.b_p50, x.a_p95, x.b_p95].map((v) => `<td>${fmtMs(v)}</td>`).join('')}<td class="${cls}">${x.ratio.toFixed(2)}×</td><td class="${cls}">${ci}</td></tr>`]
  })
  const [a, b] = names.map(esc)
  return `<div class="table"><table><thead><tr><th>phase</th><th>${a} p50</th><th>${b} p50</th><th>${a} p95</th><th>${b} p95</th><th>${a}/${b}</th><th>95% CI</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
}

function runSummary(name: string, r: Report): string {
  const c = r.connection
  const k = r.connections
  const facts = [
    `${r.requests} requests`,
    `${r.errors} errors`,
    `${r.rps.toFixed(1)} req/s`,
    c?.alpn ? `ALPN ${c.alpn}` : c?.tls_version ? 'HTTP/1.1' : 'HTTP/1.1 (no TLS)',
    c?.tls_version ?? '',
    k ? `${k.opened} connections${k.tls_resumed !== undefined ? ` (${k.tls_resumed} resumed TLS)` : ''}` : '',
    k && k.max_streams_in_flight > 1 ? `up to ${k.max_streams_in_flight} streams in flight per connection` : '',
    r.started_at ? `started ${r.started_at}` : '',
  ].filter(Boolean)
  return `<p class="run"><b>${esc(name)}</b> <code>${esc(r.url)}</code><br><span class="dim">${esc(facts.join(' · '))}</span></p>`
}

const CSS = `
:root{--fg:#1b1f24;--dim:#5b6570;--line:#d8dde3;--bg:#fff;--card:#f6f8fa;
--dns:#8e6bbf;--connect:#d9822b;--tls:#c23b80;--send:#a0a7ae;--wait:#2b7bb9;--transfer:#2e9e6a;--total:#1b1f24;
--cold:#c0392b;--resumed:#d9822b;--warm:#2b7bb9;--a:#c0392b;--b:#2b7bb9;--base:#7d8790;--ok:#2b7bb9;--err:#c0392b}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1100px;padding:16px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}h3{font-size:.95em;margin:.6em 0 .3em}
code{font:0.92em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.dim{color:var(--dim);font-weight:normal}
.verdict{padding:10px 14px;border-radius:6px;border-left:6px solid var(--base);background:var(--card);font-weight:600}
.verdict.good{border-color:var(--transfer)}.verdict.bad{border-color:var(--err)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.card{margin:0;padding:8px;background:var(--card);border-radius:6px;break-inside:avoid}
figcaption{font-weight:600;font-size:.9em;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:var(--line);stroke-width:1}
svg text{font-size:11px;fill:var(--dim)}svg .label{font-size:12px;fill:var(--fg)}svg .value{font-size:11px;fill:var(--fg)}
.seg.dns{fill:var(--dns)}.seg.connect{fill:var(--connect)}.seg.tls{fill:var(--tls)}.seg.send{fill:var(--send)}.seg.wait{fill:var(--wait)}.seg.transfer{fill:var(--transfer)}
.seg.cold{fill:var(--cold)}.seg.resumed{fill:var(--resumed)}.seg.warm{fill:var(--warm)}.seg.side-a{fill:var(--a)}.seg.side-b{fill:var(--b)}.seg.side-base{fill:var(--base)}
.seg.ok{fill:var(--ok)}.seg.err{fill:var(--err)}
.line{fill:none;stroke-width:2}.line.cold{stroke:var(--cold)}.line.resumed{stroke:var(--resumed);stroke-dasharray:6 3}.line.warm{stroke:var(--warm)}
.line.side-a{stroke:var(--a)}.line.side-b{stroke:var(--b)}.line.side-base{stroke:var(--base);stroke-dasharray:4 3}
.legend span{display:inline-block;margin-right:12px;font-size:.85em}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.table{overflow-x:auto}table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.9em}
th,td{padding:3px 8px;text-align:right;border-bottom:1px solid var(--line)}thead th{color:var(--dim);font-weight:600}tbody th{text-align:left}
td.better{color:#1e7a4f;font-weight:600}td.worse{color:var(--err);font-weight:600}
.tables{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
footer{margin-top:2em;font-size:.8em;color:var(--dim)}
.narrow{display:none}
@media (max-width:600px){body{padding:10px;font-size:14px}.grid,.tables{grid-template-columns:1fr}th,td{padding:3px 5px}.wide{display:none}.narrow{display:block}}
@media print{body{max-width:none;padding:0;font-size:10pt}.wide{display:block}.narrow{display:none}.card{background:none;border:1px solid var(--line)}h2{break-after:avoid}.card,.table,figure{break-inside:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
`

function legend(items: readonly [string, string][]): string {
  return `<p class="legend">${items.map(([cls, text]) => `<span><i style="background:var(--${cls})"></i>${esc(text)}</span>`).join('')}</p>`
}

export function renderHtml(input: HtmlInput, generatedAt: Date): string {
  const { a, b } = input
  const base = input.baseline
  const title = b ? `proxy bench: ${a.url} vs ${b.url}` : `proxy bench: ${a.url}`
  const out: string[] = []
  out.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${CSS}</style></head><body>`)
  out.push(`<h1>${esc(b ? 'proxy bench: A vs B' : base ? 'proxy bench: this run vs the baseline' : 'proxy bench')}</h1>`)
  if (b) out.push(runSummary('A', a), runSummary('B', b))
  else if (base) out.push(runSummary('baseline', base.report), runSummary('this run', a))
  else out.push(runSummary('', a))
  const cmp = input.comparison
  if (cmp) out.push(`<p class="verdict ${cmp.outcome === 'b_faster' ? 'good' : cmp.outcome === 'b_slower' ? 'bad' : ''}">${esc(cmp.verdict)}</p>`)
  if (base) out.push(`<p class="verdict ${base.comparison.outcome === 'improved' ? 'good' : base.comparison.outcome === 'regressed' ? 'bad' : ''}">${esc(base.comparison.verdict)}</p>`)

  const runs = b ? [{ name: 'A', report: a }, { name: 'B', report: b }] : base ? [{ name: 'baseline', report: base.report }, { name: 'now', report: a }] : [{ name: '', report: a }]
  const rows = waterfallRows(runs)
  out.push(`<h2>Where the time goes <span class="dim">(mean of each phase, per kind of request)</span></h2>`)
  out.push(legend([['dns', 'DNS'], ['connect', 'CONNECT'], ['tls', 'TLS'], ['send', 'SEND (request write, gaps)'], ['wait', 'WAIT'], ['transfer', 'TRANSFER']]))
  // Wide charts come in two drawings, one for a phone: CSS shows one (no script needed).
  const both = (draw: (w: number) => string) => `<div class="wide">${draw(720)}</div><div class="narrow">${draw(400)}</div>`
  out.push(rows.length ? `<figure class="card">${both((w) => waterfallSvg(rows, 'waterfall of mean phases', w))}</figure>` : '<p class="dim">no successful request</p>')
  out.push(`<p class="dim">${KINDS.map((k) => esc(KIND_TEXT[k])).join(' · ')}</p>`)

  out.push(`<h2>Distributions <span class="dim">(each phase by percentile; the tail is stretched)</span></h2>`)
  out.push(`<div class="grid">${distributions(input)}</div>`)

  const tl = timeline([...input.aSamples, ...(input.bSamples ?? [])])
  out.push(`<h2>Requests and errors per second <span class="dim">(started per ${tl.bucketMs >= 1000 ? `${tl.bucketMs / 1000} s` : `${tl.bucketMs} ms`}, as a rate; errors are failures and 5xx)</span></h2>`)
  out.push(`<figure class="card">${both((w) => timelineSvg(tl.rates, tl.bucketMs / 1000, 'requests and errors per second', w))}</figure>`)

  out.push(`<h2>Phase statistics <span class="dim">(ms)</span></h2>`)
  for (const r of runs) {
    out.push(`<div class="tables">${KINDS.filter((k) => r.report[k]?.requests).map((k) => groupTable(`${r.name ? `${r.name}: ` : ''}${KIND_TEXT[k]}`, r.report[k])).join('')}</div>`)
  }
  if (cmp && b) out.push(`<h2>A against B</h2>${comparisonTable(cmp, ['A', 'B'], [a, b])}`)
  if (base) out.push(`<h2>Against the baseline <span class="dim">${esc(base.comparison.file)}</span></h2>${comparisonTable(base.comparison, ['base', 'now'], [base.report, a])}`)
  const status = (r: Report) => Object.entries(r.status).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'
  const errors = (r: Report) => Object.entries(r.errors_by_kind).map(([k, v]) => `${k}: ${v}`).join(', ')
  out.push(`<h2>Status and errors</h2>`)
  for (const r of b ? [a, b] : [a]) out.push(`<p><code>${esc(r.url)}</code> status ${esc(status(r))}${r.errors ? ` · errors ${esc(errors(r))}` : ''}</p>`)
  out.push(`<footer>Generated by proxy bench at ${esc(generatedAt.toISOString())}. Ratios are median(${b ? 'A' : 'baseline'}) / median(${b ? 'B' : 'this run'}): above 1, the second is faster. 95% bootstrap confidence intervals.</footer>`)
  out.push('</body></html>')
  return out.join('\n')
}

export function writeHtmlReport(file: string, input: HtmlInput): void {
  try {
    writeFileSync(file, renderHtml(input, new Date()))
  } catch (err) {
    throw new UsageError(`--html: cannot write "${file}": ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
}
