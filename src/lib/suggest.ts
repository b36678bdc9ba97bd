/**
 * "Did you mean": the nearest known word to a mistyped one, by edit distance. Used for config
 * keys (config/resolve.ts), flags and command names (cli.ts), so both speak the same way.
 */

/** The candidate closest to `word` within `maxDistance` edits (default 2), or undefined. */
export function closest(word: string, candidates: Iterable<string>, maxDistance = 2): string | undefined {
  let best: string | undefined
  let bestD = maxDistance + 1
  for (const c of candidates) {
    const dist = editDistance(word, c)
    if (dist < bestD) {
      bestD = dist
      best = c
    }
  }
  return best
}

/** Levenshtein distance: insertions, deletions and substitutions each cost one. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!
    dp[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return dp[b.length]!
}
