/**
 * bench/report.ts renderComparison and html.ts comparisonTable: a phase that only one side has (an https origin direct
 * against a cleartext proxy nearby: TLS; a name against an IP: DNS) is a row with a dash for the
 * other side, so that each side's rows still add up to its total. Before, the row was left out:
 * direct 309 ms read as CONNECT 102 + WAIT 102 with 105 ms unexplained. Synthetic samples, no
 * network.
 */
import { expect, test } from 'bun:test'
import { compare, report } from '../../src/bench/aggregate.ts'
import { renderHtml } from '../../src/bench/html.ts'
import { renderComparison } from '../../src/bench/report.ts'
import type { Sample } from '../../src/bench/runner.ts'
import type { Phases } from '../../src/bench/timings.ts'
import { colorsFor } from '../../src/lib/colors.ts'

function samples(side: 'a' | 'b', phases: (i: number) => Phases): Sample[] {
  return Array.from({ length: 30 }, (_, i) => ({ seq: i, side, ts: 1_700_000_000_000 + i, reused: false, phases: phases(i), status: 200, bytes: 12 }))
}

test('a phase of one side only gets its own row, with a dash for the other and no ratio', () => {
  // A: https direct, 100 ms away; B: a cleartext proxy on loopback.
  const a = samples('a', (i) => ({ connect: 102 + (i % 3), tls: i < 25 ? 103 : 110, wait: 102, transfer: 0.1, total: 307 + (i % 3) + (i < 25 ? 0 : 7) }))
  const b = samples('b', (i) => ({ connect: 0.5 + (i % 3) / 10, wait: 104, transfer: 0.06, total: 104.6 + (i % 3) / 10 }))
  const ra = report('https://origin.test/api', a, 1000)
  const rb = report('http://127.0.0.1:8080/api', b, 1000)
  const text = renderComparison(ra, rb, compare(a, b), colorsFor(false, {}))
  const lines = text.split('\n')
  const row = (label: string) => lines.find((l) => l.trimStart().startsWith(`${label} `))
  const tls = row('TLS')
  expect(tls).toBeDefined()
  const cells = tls!.trim().split(/\s+/)
  // TLS, A p50, B p50, A p95, B p95, then who has it.
  expect(cells.slice(0, 5)).toEqual(['TLS', '103', '–', '110', '–'])
  expect(cells.slice(5).join(' ')).toBe('only A')
  // Phases both sides have keep their ratio; none that neither side has (DNS) is shown.
  expect(row('CONNECT')).toContain('×')
  expect(row('total')).toContain('×')
  expect(row('DNS')).toBeUndefined()
  // The rows shown now add up to each side's total (p50s, within rounding).
  const p50 = (label: string, col: number) => Number(row(label)!.trim().split(/\s+/)[col])
  const sumA = ['CONNECT', 'TLS', 'WAIT'].reduce((n, l) => n + p50(l, 1), 0) + p50('TRANSFER', 1)
  expect(Math.abs(sumA - p50('total', 1))).toBeLessThan(3)
})

test('the HTML report shows the one-sided row too', () => {
  const a = samples('a', (i) => ({ connect: 102, tls: i < 25 ? 103 : 110, wait: 102, transfer: 0.1, total: 307 + (i < 25 ? 0 : 7) }))
  const b = samples('b', () => ({ connect: 0.5, wait: 104, transfer: 0.06, total: 104.6 }))
  const ra = report('https://origin.test/api', a, 1000)
  const rb = report('http://127.0.0.1:8080/api', b, 1000)
  const html = renderHtml({ a: ra, aSamples: a, b: rb, bSamples: b, comparison: compare(a, b), elapsedMs: 1000 }, new Date(0))
  const table = html.slice(html.indexOf('<h2>A against B</h2>'))
  expect(table).toMatch(/<tr><th>TLS<\/th><td>[^<]*103[^<]*<\/td><td>–<\/td><td>[^<]*110[^<]*<\/td><td>–<\/td><td class="dim" colspan="2">only A<\/td><\/tr>/)
  expect(table).not.toContain('<th>DNS</th>')
})
