/**
 * Rendering, as pure functions of the report data and a Colors object: the single-request
 * waterfall, the phase tables (all, cold, warm), the histogram of total, status and error
 * counts, and the A/B comparison with its verdict. Colour is decided by the caller, once.
 */
import type { Colors } from '../lib/colors.ts'
import type { Comparison, Group, Report } from './aggregate.ts'
import type { Sample } from './runner.ts'
import { PHASES, type Phase } from './timings.ts'

const LABEL: Record<Phase, string> = { dns: 'DNS', connect: 'CONNECT', tls: 'TLS', wait: 'WAIT', transfer: 'TRANSFER', total: 'total' }

export function ms(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '-'
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/** httpstat-like: one bar per phase, placed on a shared time axis, with its share of the total. */
export function renderWaterfall(s: Sample, url: string, c: Colors, width = 40): string {
  const lines: string[] = []
  const who = s.remoteAddress ? `${s.remoteAddress} (IPv${s.family})` : ''
  const tls = s.tlsVersion ? `, ${s.tlsVersion}${s.alpn ? ` ${s.alpn}` : ''}${s.cipher ? ` ${s.cipher}` : ''}` : ''
  if (s.error) {
    lines.push(`${c.bold(url)}  ${c.red(`failed: ${s.error}`)} ${s.errorMessage ?? ''}`)
  } else {
    lines.push(`${c.bold(url)}  ${c.green(String(s.status))}, ${s.bytes} bytes${who ? `, ${who}` : ''}${tls}${s.reused ? ', reused connection' : ''}`)
  }
  const total = s.phases.total ?? Object.values(s.phases).reduce((a, b) => a + (b ?? 0), 0)
  lines.push('')
  let offset = 0
  for (const p of PHASES) {
    if (p === 'total') continue
    const v = s.phases[p]
    if (v === undefined) {
      lines.push(`  ${LABEL[p].padEnd(9)} ${' '.repeat(width)} ${c.dim('     -')}`)
      continue
    }
    const start = total > 0 ? Math.round((offset / total) * width) : 0
    const len = Math.max(1, total > 0 ? Math.round((v / total) * width) : 1)
    const bar = ' '.repeat(Math.min(start, width - 1)) + '█'.repeat(Math.min(len, width - Math.min(start, width - 1)))
    const share = total > 0 ? `${((v / total) * 100).toFixed(0).padStart(3)}%` : ''
    lines.push(`  ${LABEL[p].padEnd(9)} ${c.cyan(bar.padEnd(width))} ${ms(v).padStart(7)} ms ${c.dim(share)}`)
    offset += v
  }
  lines.push(`  ${'total'.padEnd(9)} ${' '.repeat(width)} ${c.bold(ms(s.phases.total).padStart(7))} ms`)
  return lines.join('\n')
}

export function renderGroupTable(title: string, g: Group, c: Colors): string {
  const head = `  ${'phase'.padEnd(9)}${['n', 'min', 'mean', 'p50', 'p90', 'p99', 'max'].map((h) => h.padStart(9)).join('')}`
  const rows = PHASES.filter((p) => g.phases[p]).map((p) => {
    const s = g.phases[p]!
    return `  ${LABEL[p].padEnd(9)}${String(s.n).padStart(9)}${[s.min, s.mean, s.p50, s.p90, s.p99, s.max].map((v) => ms(v).padStart(9)).join('')}`
  })
  return [`${c.bold(title)} ${c.dim(`(${g.requests} requests, ${g.errors} errors; times in ms)`)}`, c.dim(head), ...(rows.length ? rows : ['  (no successful request)'])].join('\n')
}

export function renderReport(r: Report, c: Colors): string {
  const out: string[] = []
  out.push(`${c.bold(r.url)}`)
  out.push(`  ${r.requests} requests in ${(r.duration_ms / 1000).toFixed(2)} s, ${r.rps.toFixed(1)} req/s, ${r.errors ? c.red(`${r.errors} errors`) : '0 errors'}`)
  if (r.connection?.remote_address) {
    const t = r.connection.tls_version ? `, ${r.connection.tls_version}${r.connection.alpn ? ` ${r.connection.alpn}` : ''}${r.connection.cipher ? ` ${r.connection.cipher}` : ''}` : ''
    out.push(`  ${r.connection.remote_address} (IPv${r.connection.family})${t}`)
  }
  out.push('')
  out.push(renderGroupTable('cold connections', r.cold, c))
  out.push('')
  out.push(renderGroupTable('warm (reused) connections', r.warm, c))
  if (r.corrected_total) {
    const s = r.corrected_total
    out.push('')
    out.push(`${c.bold('total from the intended send time')} ${c.dim('(--rate; coordinated omission corrected)')}`)
    out.push(`  p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}  max ${ms(s.max)} ms`)
  }
  if (r.histogram.length > 1) {
    out.push('')
    out.push(c.bold('total, ms'))
    const max = Math.max(...r.histogram.map((b) => b.count))
    for (const b of r.histogram) out.push(`  ${ms(b.from).padStart(8)} – ${ms(b.to).padEnd(8)} ${c.cyan('▇'.repeat(Math.max(b.count ? 1 : 0, Math.round((b.count / max) * 30))))} ${b.count}`)
  }
  out.push('')
  out.push(`${c.bold('status')} ${Object.entries(r.status).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'}`)
  if (r.errors) out.push(`${c.bold('errors')} ${Object.entries(r.errors_by_kind).map(([k, v]) => `${c.red(k)}: ${v}`).join(', ')}`)
  return out.join('\n')
}

export function renderComparison(a: Report, b: Report, cmp: Comparison, c: Colors): string {
  const out: string[] = []
  out.push(`${c.bold('A')} ${a.url}  ${c.dim(`(${a.requests} requests, ${a.errors} errors)`)}`)
  out.push(`${c.bold('B')} ${b.url}  ${c.dim(`(${b.requests} requests, ${b.errors} errors)`)}`)
  out.push('')
  out.push(c.dim(`  ${'phase'.padEnd(9)}${'A p50'.padStart(9)}${'B p50'.padStart(9)}${'A p95'.padStart(9)}${'B p95'.padStart(9)}   A/B median (95% CI)`))
  for (const p of PHASES) {
    const x = cmp.phases[p]
    if (!x) continue
    const ratio = `${x.ratio.toFixed(2)}× (${x.ci95[0].toFixed(2)}–${x.ci95[1].toFixed(2)})`
    const colored = x.ci95[0] > 1 ? c.green(ratio) : x.ci95[1] < 1 ? c.red(ratio) : ratio
    out.push(`  ${LABEL[p].padEnd(9)}${[x.a_p50, x.b_p50, x.a_p95, x.b_p95].map((v) => ms(v).padStart(9)).join('')}   ${colored}`)
  }
  out.push('')
  out.push(c.bold(cmp.verdict))
  return out.join('\n')
}
