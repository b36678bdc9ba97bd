/**
 * The short soak inside `npm test`: 3 runs of the resolver IP-change scenario and the fault
 * scenarios against the compiled binary, with a busy-loop process per core competing for the
 * CPU (scripts/soak.ts; the long version is `bun scripts/soak.ts --runs 20`). Every client
 * request is counted; none may fail.
 */
import { expect, test } from 'bun:test'
import { runSoak, SCENARIOS, summarize } from '../../scripts/soak.ts'

test('3 runs under CPU pressure: every scenario serves traffic with zero failed requests', async () => {
  const lines: string[] = []
  const results = await runSoak({ runs: 3, durationMs: 1000, hog: true, scenarios: SCENARIOS, log: (l) => lines.push(l) })
  const table = summarize(results)
  console.log(table)
  expect(results).toHaveLength(3 * SCENARIOS.length)
  for (const r of results) expect(r.requests).toBeGreaterThan(0)
  // The IP change really happened in every run: both addresses served traffic.
  for (const r of results.filter((x) => x.scenario === 'ip-change')) expect(r.note).toMatch(/by \.2: [1-9]\d*, by \.3: [1-9]/)
  // ZERO FAILED REQUESTS is the point of issue 14. Before the attempt loop waits for a re-resolve
  // after a connect failure (the lead's fix in src/proxy/attempts.ts), the IP-change run under
  // CPU pressure could show some 502s; this assertion is meant to hold once that fix is merged.
  // Do not relax it: a failure here is the bug, and `lines` says which run and status.
  expect({ failed: results.reduce((a, r) => a + r.failed, 0), lines }).toEqual({ failed: 0, lines })
}, 180_000)
