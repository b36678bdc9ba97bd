/**
 * Pure statistics for the bench: the one percentile implementation (linear interpolation
 * between closest ranks, as numpy's default), summaries, histograms, and a seeded bootstrap
 * confidence interval for the ratio of two medians.
 */

export interface Summary {
  n: number
  min: number
  mean: number
  p50: number
  p90: number
  p95: number
  p99: number
  max: number
}

/** q in [0, 1] over an ascending array. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

export function summarize(values: readonly number[]): Summary | undefined {
  if (values.length === 0) return undefined
  const s = [...values].sort((a, b) => a - b)
  let sum = 0
  for (const v of s) sum += v
  return { n: s.length, min: s[0]!, mean: sum / s.length, p50: percentile(s, 0.5), p90: percentile(s, 0.9), p95: percentile(s, 0.95), p99: percentile(s, 0.99), max: s[s.length - 1]! }
}

export interface HistogramBin {
  /** Lower edge, ms. */
  from: number
  to: number
  count: number
}

/** Equal-width bins between min and max (a single bin when all values are equal). */
export function histogram(values: readonly number[], bins = 10): HistogramBin[] {
  if (values.length === 0) return []
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    if (v < min) min = v
    if (v > max) max = v
  }
  if (max === min) return [{ from: min, to: max, count: values.length }]
  const width = (max - min) / bins
  const out = Array.from({ length: bins }, (_, i) => ({ from: min + i * width, to: min + (i + 1) * width, count: 0 }))
  for (const v of values) out[Math.min(bins - 1, Math.floor((v - min) / width))]!.count++
  return out
}

/** mulberry32: a small seeded PRNG, so that bootstrap intervals are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function median(values: readonly number[]): number {
  return percentile([...values].sort((x, y) => x - y), 0.5)
}

/**
 * Ratio of medians median(a) / median(b) with a percentile-bootstrap 95% CI: both samples are
 * resampled with replacement `rounds` times. A ratio above 1 means b is faster.
 */
export function bootstrapRatio(a: readonly number[], b: readonly number[], rounds = 1000, seed = 1): { ratio: number; lo: number; hi: number } | undefined {
  if (a.length === 0 || b.length === 0) return undefined
  const rnd = seededRandom(seed)
  const ratios: number[] = []
  const ra = new Array<number>(a.length)
  const rb = new Array<number>(b.length)
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < a.length; i++) ra[i] = a[Math.floor(rnd() * a.length)]!
    for (let i = 0; i < b.length; i++) rb[i] = b[Math.floor(rnd() * b.length)]!
    const mb = median(rb)
    if (mb > 0) ratios.push(median(ra) / mb)
  }
  ratios.sort((x, y) => x - y)
  const mb = median(b)
  return { ratio: mb > 0 ? median(a) / mb : Number.NaN, lo: percentile(ratios, 0.025), hi: percentile(ratios, 0.975) }
}
