/**
 * Rendering for the terminal, as pure functions of the report data and a Colors object: the
 * single-request waterfall, the phase tables (cold, resumed, warm), distribution sparklines, the
 * histogram of total, connections, status and error counts, and the A/B or baseline comparison
 * with its verdict. Colour and width are decided by the caller, once. The HTML report is html.ts.
 */
import type { Colors } from '../lib/colors.ts'
import type { Comparison, Group, Report } from './aggregate.ts'
import type { Sample } from './runner.ts'
import { percentile, summarize } from './stats.ts'
import { PHASES, type Phase } from './timings.ts'

export interface TextOptions {
  /** Draw a distribution sparkline per phase (a wide terminal with colour allowed). */
  sparklines: boolean
  /** --no-keepalive: no connection was meant to be reused. */
  keepAlive: boolean
}

const LABEL: Record<Phase, string> = { dns: 'DNS', connect: 'CONNECT', tls: 'TLS', wait: 'WAIT', transfer: 'TRANSFER', total: 'total' }

export function ms(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '-'
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/**
 * httpstat-like: one bar per phase, placed on a shared time axis, with its share of the total.
 * SEND is the time no phase names (mostly writing the request after the handshake), so that
 * the rows add up to the total.
 */
export function renderWaterfall(s: Sample, url: string, c: Colors, width = 40): string {
  const lines: string[] = []
  const who = s.remoteAddress ? `${s.remoteAddress} (IPv${s.family})` : ''
  const tls = s.tlsVersion ? `, ${s.tlsVersion}${s.alpn ? ` ${s.alpn}` : ''}${s.cipher ? ` ${s.cipher}` : ''}${s.tlsResumed ? ', resumed session' : ''}` : s.alpn ? `, ${s.alpn}` : ''
  if (s.error) {
    lines.push(`${c.bold(url)}  ${c.red(`failed: ${s.error}`)} ${s.errorMessage ?? ''}`)
  } else if ((s.status ?? 0) >= 500) {
    // A 5xx is a failure to bench (aggregate.ts), and exits 5 alone: drawn as one.
    lines.push(`${c.bold(url)}  ${c.red(`failed: ${s.status}`)}, ${s.bytes} bytes${who ? `, ${who}` : ''}${tls}${s.reused ? ', reused connection' : ''}`)
  } else {
    lines.push(`${c.bold(url)}  ${c.green(String(s.status))}, ${s.bytes} bytes${who ? `, ${who}` : ''}${tls}${s.reused ? ', reused connection' : ''}`)
  }
  const parts = PHASES.filter((p) => p !== 'total')
  const known = parts.reduce((a, p) => a + (s.phases[p] ?? 0), 0)
  const total = s.phases.total ?? known
  const send = s.phases.total !== undefined ? Math.max(0, s.phases.total - known) : undefined
  const rows: [string, number | undefined][] = []
  for (const p of parts) {
    if (p === 'wait') rows.push(['SEND', send])
    rows.push([LABEL[p], s.phases[p]])
  }
  lines.push('')
  let offset = 0
  for (const [label, v] of rows) {
    if (v === undefined) {
      lines.push(`  ${label.padEnd(9)} ${' '.repeat(width)} ${c.dim('      -')}`)
      continue
    }
    const start = total > 0 ? Math.round((offset / total) * width) : 0
    const len = Math.max(1, total > 0 ? Math.round((v / total) * width) : 1)
    const bar = ' '.repeat(Math.min(start, width - 1)) + '█'.repeat(Math.min(len, width - Math.min(start, width - 1)))
    const share = total > 0 ? `${((v / total) * 100).toFixed(0).padStart(3)}%` : ''
    lines.push(`  ${label.padEnd(9)} ${(label === 'SEND' ? c.dim : c.cyan)(bar.padEnd(width))} ${fixed(v).padStart(7)} ms ${c.dim(share)}`)
    offset += v
  }
  lines.push(`  ${'total'.padEnd(9)} ${' '.repeat(width)} ${c.bold(fixed(s.phases.total).padStart(7))} ms`)
  if (send !== undefined) lines.push(c.dim(`  SEND: request write and the moments between phases, so that the rows add up to the total`))
  return lines.join('\n')
}

/** Three decimals, so that the waterfall's rows visibly add up. */
function fixed(v: number | undefined): string {
  return v === undefined ? '-' : v.toFixed(3)
}

const TICKS = '▁▂▃▄▅▆▇█'

/** A distribution as a row of bars: equal-width bins from min to p99 (a › marks a longer tail). */
export function sparkline(values: readonly number[], bins = 16): string {
  if (values.length === 0) return ''
  const sorted = [...values].sort((a, b) => a - b)
  const lo = sorted[0]!
  const hi = percentile(sorted, 0.99)
  const counts = new Array<number>(bins).fill(0)
  const w = hi > lo ? (hi - lo) / bins : 1
  for (const v of sorted) if (v <= hi) counts[Math.min(bins - 1, Math.floor((v - lo) / w))]!++
  const max = Math.max(...counts)
  const line = counts.map((n) => (n === 0 ? ' ' : TICKS[Math.min(TICKS.length - 1, Math.floor((n / max) * (TICKS.length - 1)))]!)).join('')
  return sorted[sorted.length - 1]! > hi ? `${line}›` : line
}

export function renderGroupTable(title: string, g: Group, c: Colors, empty = '(no successful request)'): string {
  const head = `  ${'phase'.padEnd(9)}${['n', 'min', 'mean', 'p50', 'p90', 'p99', 'max'].map((h) => h.padStart(9)).join('')}`
  const rows = PHASES.filter((p) => g.phases[p]).map((p) => {
    const s = g.phases[p]!
    return `  ${LABEL[p].padEnd(9)}${String(s.n).padStart(9)}${[s.min, s.mean, s.p50, s.p90, s.p99, s.max].map((v) => ms(v).padStart(9)).join('')}`
  })
  return [`${c.bold(title)} ${c.dim(`(${g.requests} requests, ${g.errors} errors; times in ms)`)}`, c.dim(head), ...(rows.length ? rows : [`  ${g.requests === 0 ? empty : '(no successful request)'}`])].join('\n')
}

export function renderReport(r: Report, c: Colors, o: TextOptions = { sparklines: false, keepAlive: true }): string {
  const out: string[] = []
  out.push(`${c.bold(r.url)}`)
  out.push(`  ${r.requests} requests in ${(r.duration_ms / 1000).toFixed(2)} s, ${r.rps.toFixed(1)} req/s, ${r.errors ? c.red(`${r.errors} errors`) : '0 errors'}`)
  if (r.connection?.remote_address) {
    const t = r.connection.tls_version ? `, ${r.connection.tls_version}${r.connection.alpn ? ` ${r.connection.alpn}` : ''}${r.connection.cipher ? ` ${r.connection.cipher}` : ''}` : ''
    out.push(`  ${r.connection.remote_address} (IPv${r.connection.family})${t || (r.connection.alpn ? `, ${r.connection.alpn}` : '')}`)
  }
  if (r.connections) {
    const k = r.connections
    const rpc = k.requests_per_connection
    const resumed = k.tls_resumed !== undefined ? `, ${k.tls_resumed} resumed a TLS session` : ''
    const streams = k.max_streams_in_flight > 1 ? `; up to ${k.max_streams_in_flight} streams in flight on one connection` : ''
    out.push(`  ${k.opened} connection${k.opened === 1 ? '' : 's'}${resumed}; ${fmt(rpc.min)}–${fmt(rpc.max)} requests each (mean ${fmt(rpc.mean)})${streams}`)
    if (k.retried_unprocessed) out.push(c.dim(`  ${k.retried_unprocessed} requests were sent again on a new connection: the server did not process them (HTTP/2 GOAWAY or REFUSED_STREAM) or closed a kept-alive connection before answering`))
  }
  const tls = r.connection?.tls_version !== undefined
  out.push('')
  out.push(renderGroupTable(tls ? 'cold (new connection, full TLS handshake)' : 'cold (new connection)', r.cold, c))
  if (tls) {
    out.push('')
    out.push(renderGroupTable('resumed (new connection, resumed TLS session)', r.resumed, c, '(none: no handshake resumed a session)'))
  }
  out.push('')
  out.push(renderGroupTable('warm (reused connection)', r.warm, c, o.keepAlive ? '(none: no connection was reused)' : '(none: no reuse with --no-keepalive)'))
  if (o.sparklines) {
    out.push('')
    out.push(`${c.bold('distributions')} ${c.dim('(all requests, min → p99)')}`)
    for (const p of PHASES) {
      const v = r.values[p]
      if (!v?.length) continue
      const st = r.phases[p]!
      out.push(`  ${LABEL[p].padEnd(9)}${ms(st.min).padStart(8)} ${c.cyan(sparkline(v).padEnd(17))} ${ms(st.p99)} ms`)
    }
  }
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

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

/** Side labels: A and B for --vs; "base" and "now" for --baseline. */
export function renderComparison(a: Report, b: Report, cmp: Pick<Comparison, 'phases' | 'verdict'>, c: Colors, names: [string, string] = ['A', 'B']): string {
  const out: string[] = []
  const [na, nb] = names
  const proto = (r: Report) => (r.connection?.alpn ? ` ${c.dim(r.connection.alpn)}` : '')
  // Errors named by kind: a side whose answers were 502s must not read as merely fast.
  const errors = (r: Report) => (r.errors === 0 ? '0 errors' : `${r.errors} errors: ${Object.entries(r.errors_by_kind).map(([k, n]) => `${k} ${n}`).join(', ')}`)
  out.push(`${c.bold(na.padEnd(4))} ${a.url}${proto(a)}  ${c.dim(`(${a.requests} requests, ${errors(a)}${a.started_at && names[0] !== 'A' ? `, ${a.started_at}` : ''})`)}`)
  out.push(`${c.bold(nb.padEnd(4))} ${b.url}${proto(b)}  ${c.dim(`(${b.requests} requests, ${errors(b)})`)}`)
  out.push('')
  out.push(c.dim(`  ${'phase'.padEnd(9)}${`${na} p50`.padStart(10)}${`${nb} p50`.padStart(10)}${`${na} p95`.padStart(10)}${`${nb} p95`.padStart(10)}   ${na}/${nb} median (95% CI)`))
  for (const p of PHASES) {
    const x = cmp.phases[p]
    if (!x) {
      // A phase of one side only (TLS direct against a cleartext proxy, DNS against an IP): shown
      // with a dash for the other, so that each side's rows still add up to its total.
      const sa = summarize(a.values[p] ?? [])
      const sb = summarize(b.values[p] ?? [])
      if (!sa === !sb) continue
      const only = c.dim(`only ${sa ? na : nb}`)
      out.push(`  ${LABEL[p].padEnd(9)}${[sa?.p50, sb?.p50, sa?.p95, sb?.p95].map((v) => (v === undefined ? '–' : ms(v)).padStart(10)).join('')}   ${only}`)
      continue
    }
    const ci = x.ci95
    const ratio = ci ? `${x.ratio.toFixed(2)}× (${ci[0].toFixed(2)}–${ci[1].toFixed(2)})` : `${x.ratio.toFixed(2)}× (n too small)`
    const colored = ci && ci[0] > 1 ? c.green(ratio) : ci && ci[1] < 1 ? c.red(ratio) : ratio
    out.push(`  ${LABEL[p].padEnd(9)}${[x.a_p50, x.b_p50, x.a_p95, x.b_p95].map((v) => ms(v).padStart(10)).join('')}   ${colored}`)
  }
  out.push('')
  out.push(c.bold(cmp.verdict))
  return out.join('\n')
}
