import { describe, expect, test } from 'bun:test'
import { compare, compareValues, MIN_CI_SAMPLES, MIN_EFFECT, outcomeOf, verdict } from '../../src/bench/aggregate.ts'
import { sparkline } from '../../src/bench/report.ts'
import type { Sample } from '../../src/bench/runner.ts'
import { evaluateSlo, parseSlo } from '../../src/bench/slo.ts'
import { bootstrapRatio, histogram, percentile, seededRandom, summarize } from '../../src/bench/stats.ts'
import { cameLateMs, phasesOf } from '../../src/bench/timings.ts'
import { UsageError } from '../../src/lib/errors.ts'

describe('percentile (linear between closest ranks)', () => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  test.each([
    [0, 1],
    [0.5, 5.5],
    [0.9, 9.1],
    [0.99, 9.91],
    [1, 10],
  ])('q=%p -> %p', (q, want) => expect(percentile(xs, q)).toBeCloseTo(want, 10))
  test('one value', () => expect(percentile([42], 0.99)).toBe(42))
  test('empty is NaN', () => expect(percentile([], 0.5)).toBeNaN())
})

test('summarize', () => {
  expect(summarize([3, 1, 2])).toEqual({ n: 3, min: 1, mean: 2, p50: 2, p90: 2.8, p95: 2.9, p99: 2.98, max: 3 })
  expect(summarize([])).toBeUndefined()
})

test('histogram bins cover every value', () => {
  const h = histogram([1, 2, 3, 4, 100], 5)
  expect(h.reduce((a, b) => a + b.count, 0)).toBe(5)
  expect(h[0]!.count).toBe(4)
  expect(h[4]!.count).toBe(1)
  expect(histogram([7, 7, 7])).toEqual([{ from: 7, to: 7, count: 3 }])
})

test('the seeded PRNG is deterministic', () => {
  const a = seededRandom(9)
  const b = seededRandom(9)
  for (let i = 0; i < 5; i++) expect(a()).toBe(b())
})

describe('bootstrapRatio', () => {
  const rnd = seededRandom(3)
  const slow = Array.from({ length: 200 }, () => 60 + rnd() * 10)
  const fast = Array.from({ length: 200 }, () => 20 + rnd() * 10)
  test('a clear difference: the CI excludes 1', () => {
    const r = bootstrapRatio(slow, fast)!
    expect(r.ratio).toBeGreaterThan(2)
    expect(r.lo).toBeGreaterThan(1)
    expect(r.hi).toBeGreaterThanOrEqual(r.ratio)
  })
  test('the same distribution: the CI includes 1', () => {
    const other = Array.from({ length: 200 }, () => 60 + rnd() * 10)
    const r = bootstrapRatio(slow, other)!
    expect(r.lo).toBeLessThan(1)
    expect(r.hi).toBeGreaterThan(1)
  })
  test('reproducible with the same seed', () => expect(bootstrapRatio(slow, fast, 200, 5)).toEqual(bootstrapRatio(slow, fast, 200, 5)))
})

test('verdict wording', () => {
  expect(verdict({ a_p50: 0, b_p50: 0, a_p95: 0, b_p95: 0, ratio: 2.1, ci95: [1.9, 2.3] })).toBe('B is 2.10× faster in total (95% CI 1.90–2.30×)')
  expect(verdict({ a_p50: 0, b_p50: 0, a_p95: 0, b_p95: 0, ratio: 0.5, ci95: [0.4, 0.6] })).toBe('B is 2.00× slower in total (95% CI 1.67–2.50×)')
  expect(verdict({ a_p50: 0, b_p50: 0, a_p95: 0, b_p95: 0, ratio: 1.02, ci95: [0.9, 1.1] })).toContain('no significant difference')
})

test('phasesOf: absent phases stay absent, never zero', () => {
  expect(phasesOf({ start: 0, requestWritten: 1, firstByte: 3, end: 4 })).toEqual({ wait: 2, transfer: 1, total: 4 })
  expect(phasesOf({ start: 0, dnsStart: 0, dnsEnd: 1, connectStart: 1, connectEnd: 3, tlsEnd: 6, requestWritten: 6, firstByte: 10, end: 11 })).toEqual({ dns: 1, connect: 2, tls: 3, wait: 4, transfer: 1, total: 11 })
})

describe('slo', () => {
  test('parse and evaluate', () => {
    const objectives = parseSlo('p99.total<300ms, p50.wait<=80ms')
    expect(objectives.map((o) => [o.stat, o.phase, o.op, o.limitMs])).toEqual([
      ['p99', 'total', '<', 300],
      ['p50', 'wait', '<=', 80],
    ])
    const samples: Sample[] = [10, 20, 400].map((t, i) => ({ seq: i, side: 'a', ts: 0, reused: true, phases: { wait: 80, total: t }, bytes: 0, status: 200 }))
    const rep = { phases: { total: summarize(samples.map((s) => s.phases.total!)), wait: summarize([80, 80, 80]) } } as never
    const res = evaluateSlo(objectives, rep)
    expect(res.map((r) => r.ok)).toEqual([false, true])
  })
  test.each(['p99total<3ms', 'p42.total<3ms', 'p99.latency<3ms', 'p99.total<soon'])('%p is a usage error', (raw) => expect(() => parseSlo(raw)).toThrow(UsageError))
})

test('compare fills every phase both sides have', () => {
  const mk = (side: 'a' | 'b', total: number): Sample => ({ seq: 0, side, ts: 0, reused: false, phases: { connect: total / 2, total }, bytes: 0, status: 200 })
  const c = compare(Array.from({ length: 30 }, (_, i) => mk('a', 100 + i)), Array.from({ length: 30 }, (_, i) => mk('b', 50 + i)))
  expect(Object.keys(c.phases)).toEqual(['connect', 'total'])
  expect(c.verdict).toMatch(/^B is 1\.\d+× faster/)
})

test('verdict: a CI that excludes 1 but a difference under MIN_EFFECT is no meaningful difference', () => {
  const x = { a_p50: 0, b_p50: 0, a_p95: 0, b_p95: 0, ratio: 1.02, ci95: [1.01, 1.03] as [number, number] }
  expect(outcomeOf(x)).toBe('no_difference')
  expect(verdict(x)).toContain('no meaningful difference')
  expect(outcomeOf({ ...x, ratio: 1 + MIN_EFFECT + 0.01, ci95: [1.02, 1.2] })).toBe('b_faster')
  expect(outcomeOf({ ...x, ratio: 1.5, ci95: undefined })).toBe('n_too_small')
})

test('compareValues: below MIN_CI_SAMPLES a side gets medians and "n too small", never an interval', () => {
  const few = Array.from({ length: MIN_CI_SAMPLES - 1 }, (_, i) => 10 + i)
  const many = Array.from({ length: 30 }, (_, i) => 20 + i)
  const c = compareValues({ total: few }, { total: many })
  expect(c.outcome).toBe('n_too_small')
  expect(c.phases.total!.ci95).toBeUndefined()
  expect(c.verdict).toContain('n too small')
  expect(compareValues({ total: many }, { total: many }).phases.total!.ci95).toHaveLength(2)
})

test('relative SLO objectives: broken only when the phase regressed and the budget is exceeded', () => {
  const [o] = parseSlo('p50.total<+10%')
  expect(o!.regressionPct).toBe(10)
  const rep = (p50: number) => ({ phases: { total: { p50 } } }) as never
  const base = (regressed: boolean) => ({ report: rep(100), regressed: () => regressed })
  expect(evaluateSlo([o!], rep(150), base(true))[0]!.ok).toBe(false)
  expect(evaluateSlo([o!], rep(150), base(false))[0]!.ok).toBe(true) // noise alone never fails
  expect(evaluateSlo([o!], rep(105), base(true))[0]!.ok).toBe(true)
  expect(evaluateSlo([o!], rep(150))[0]!.ok).toBe(false) // no baseline to measure against
})

test('sparkline: one cell per bin, a › for a tail beyond p99', () => {
  const values = [...Array.from({ length: 200 }, (_, i) => i % 10), 1000]
  const line = sparkline(values, 10)
  expect(line.endsWith('›')).toBe(true)
  expect([...line.slice(0, -1)]).toHaveLength(10)
  expect(sparkline([5, 5, 5], 4)).toMatch(/^█/)
})

test('cameLateMs: a finished request past --timeout (its timer late on a busy loop) is told apart; one within it, or unfinished, is not (outside sweep, twentieth session)', () => {
  expect(cameLateMs({ start: 100, end: 3181 }, 2000)).toBe(3081)
  expect(cameLateMs({ start: 100, end: 2100 }, 2000)).toBeUndefined()
  expect(cameLateMs({ start: 100 }, 2000)).toBeUndefined()
})
