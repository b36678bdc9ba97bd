/**
 * Inline SVG charts for the HTML report, as pure functions of numbers: a stacked waterfall, a
 * percentile curve chart, and a per-second bar timeline. Every chart scales with its container
 * (viewBox, width 100%) so the page reads on a phone and on paper; styling is by class names the
 * page's CSS defines (html.ts). No scripts, no fonts, nothing fetched.
 */

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function num(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0'
}

export function fmtMs(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/** "Nice" axis ticks from 0 to at least max. */
function ticks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1]
  const raw = max / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw
  const out: number[] = []
  for (let t = 0; t <= max + step * 0.999; t += step) out.push(Math.round(t * 1e6) / 1e6)
  return out
}

export interface WaterfallRow {
  label: string
  /** Consecutive segments: phase class name, label and duration in ms. */
  segments: { cls: string; name: string; ms: number }[]
}

/** Rows of consecutive segments on one shared time axis (ms); W is the drawing's width in its own units. */
export function waterfallSvg(rows: readonly WaterfallRow[], title: string, W = 720): string {
  const left = W < 500 ? 126 : 150
  const right = 44
  const rowH = 30
  const top = 10
  const axisH = 30
  const H = top + rows.length * rowH + axisH
  const maxMs = Math.max(1e-6, ...rows.map((r) => r.segments.reduce((a, s) => a + s.ms, 0)))
  const tk = ticks(maxMs)
  const scale = (W - left - right) / tk[tk.length - 1]!
  const parts: string[] = []
  tk.forEach((t, i) => {
    const x = left + t * scale
    const last = i === tk.length - 1
    parts.push(`<line class="grid" x1="${num(x)}" y1="${top}" x2="${num(x)}" y2="${top + rows.length * rowH}"/>`)
    parts.push(`<text class="axis" x="${num(x)}" y="${top + rows.length * rowH + 16}" text-anchor="${last ? 'end' : 'middle'}">${fmtMs(t)}${last ? ' ms' : ''}</text>`)
  })
  rows.forEach((r, i) => {
    const y = top + i * rowH
    parts.push(`<text class="label" x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`)
    let x = left
    for (const s of r.segments) {
      const w = Math.max(s.ms > 0 ? 1 : 0, s.ms * scale)
      parts.push(`<rect class="seg ${s.cls}" x="${num(x)}" y="${y + 5}" width="${num(w)}" height="${rowH - 10}"><title>${esc(`${r.label}: ${s.name} ${fmtMs(s.ms)} ms`)}</title></rect>`)
      x += w
    }
    const total = r.segments.reduce((a, s) => a + s.ms, 0)
    parts.push(`<text class="value" x="${num(x + 4)}" y="${y + rowH / 2 + 4}">${fmtMs(total)}</text>`)
  })
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`
}

export interface CurveSeries {
  name: string
  cls: string
  /** Ascending values (ms). */
  sorted: number[]
}

/** Percentile curves: x = percentile (0–100, the tail stretched), y = ms. */
export function percentileSvg(series: readonly CurveSeries[], title: string): string {
  const W = 360
  const H = 200
  const left = 44
  const right = 22
  const top = 10
  const bottom = 34
  const present = series.filter((s) => s.sorted.length > 0)
  const maxMs = Math.max(1e-6, ...present.map((s) => s.sorted[s.sorted.length - 1]!))
  const tk = ticks(maxMs)
  const yMax = tk[tk.length - 1]!
  // Stretch the tail: x = -log10(1 - q), so p50, p90, p99 and p99.9 sit evenly apart.
  const tail = (q: number) => -Math.log10(1 - Math.min(q, 0.999))
  const xMax = tail(0.999)
  const px = (q: number) => left + (tail(q) / xMax) * (W - left - right)
  const py = (v: number) => top + (1 - v / yMax) * (H - top - bottom)
  const parts: string[] = []
  for (const t of tk) {
    parts.push(`<line class="grid" x1="${left}" y1="${num(py(t))}" x2="${W - right}" y2="${num(py(t))}"/>`)
    parts.push(`<text class="axis" x="${left - 4}" y="${num(py(t) + 4)}" text-anchor="end">${fmtMs(t)}</text>`)
  }
  for (const [q, l] of [[0, 'p0'], [0.5, 'p50'], [0.9, 'p90'], [0.99, 'p99'], [0.999, 'p99.9']] as const) {
    parts.push(`<line class="grid" x1="${num(px(q))}" y1="${top}" x2="${num(px(q))}" y2="${H - bottom}"/>`)
    parts.push(`<text class="axis" x="${num(px(q))}" y="${H - bottom + 14}" text-anchor="middle">${l}</text>`)
  }
  for (const s of present) {
    const n = s.sorted.length
    const pts: string[] = []
    const steps = Math.min(n, 200)
    for (let i = 0; i < steps; i++) {
      const q = steps === 1 ? 0 : i / (steps - 1)
      const v = s.sorted[Math.min(n - 1, Math.round(q * (n - 1)))]!
      pts.push(`${num(px(q * 0.999))},${num(py(v))}`)
    }
    if (n === 1) pts.push(`${num(px(0.999))},${num(py(s.sorted[0]!))}`)
    parts.push(`<polyline class="line ${s.cls}" points="${pts.join(' ')}"><title>${esc(`${s.name}: n=${n}`)}</title></polyline>`)
  }
  let lx = left
  for (const s of present) {
    parts.push(`<rect class="seg ${s.cls}" x="${lx}" y="${H - 12}" width="10" height="10"/><text class="axis" x="${lx + 14}" y="${H - 3}">${esc(`${s.name} (${s.sorted.length})`)}</text>`)
    lx += 18 + (s.name.length + String(s.sorted.length).length + 3) * 6.5
  }
  return `<svg class="chart small" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`
}

/** Bars of requests per second per time bucket, with errors stacked in their own colour. */
export function timelineSvg(perSecond: readonly { ok: number; errors: number }[], bucketS: number, title: string, W = 720): string {
  const H = W < 500 ? 200 : 180
  const left = 44
  const right = 10
  const top = 10
  const bottom = 30
  const max = Math.max(1, ...perSecond.map((s) => s.ok + s.errors))
  const tk = ticks(max)
  const yMax = tk[tk.length - 1]!
  const n = Math.max(1, perSecond.length)
  const bw = (W - left - right) / n
  const py = (v: number) => top + (1 - v / yMax) * (H - top - bottom)
  const parts: string[] = []
  for (const t of tk) {
    parts.push(`<line class="grid" x1="${left}" y1="${num(py(t))}" x2="${W - right}" y2="${num(py(t))}"/>`)
    parts.push(`<text class="axis" x="${left - 4}" y="${num(py(t) + 4)}" text-anchor="end">${num(t)}</text>`)
  }
  const every = Math.max(1, Math.ceil(n / (W < 500 ? 6 : 12)))
  perSecond.forEach((s, i) => {
    const x = left + i * bw
    const w = Math.max(1, bw - 1)
    const at = (k: number) => `${num(k * bucketS)}s`
    parts.push(`<rect class="seg ok" x="${num(x)}" y="${num(py(s.ok))}" width="${num(w)}" height="${num(py(0) - py(s.ok))}"><title>${at(i)}–${at(i + 1)}: ${num(s.ok)} ok/s, ${num(s.errors)} errors/s</title></rect>`)
    if (s.errors) parts.push(`<rect class="seg err" x="${num(x)}" y="${num(py(s.ok + s.errors))}" width="${num(w)}" height="${num(py(s.ok) - py(s.ok + s.errors))}"/>`)
    if (i % every === 0) parts.push(`<text class="axis" x="${num(x)}" y="${H - bottom + 14}" text-anchor="middle">${at(i)}</text>`)
  })
  parts.push(`<rect class="seg ok" x="${left}" y="${H - 12}" width="10" height="10"/><text class="axis" x="${left + 14}" y="${H - 3}">requests/s</text>`)
  parts.push(`<rect class="seg err" x="${left + 100}" y="${H - 12}" width="10" height="10"/><text class="axis" x="${left + 114}" y="${H - 3}">errors/s</text>`)
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`
}
