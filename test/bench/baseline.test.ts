/**
 * --baseline FILE.json: a run saved with --json, compared with this run phase by phase with the
 * --vs intervals; "regressed" against a slower server, "no difference" against the same one;
 * --slo "+N%" budgets exit 4 only on a regression beyond the budget; bad files are usage errors.
 */
import { afterEach, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { Harness } from '../support/harness.ts'
import { bench } from './run-bench.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const dir = testDir('proxy-bench-baseline-')


function delayed(ms: number) {
  return h.origin({
    async fetch() {
      await Bun.sleep(ms)
      return new Response('x'.repeat(500))
    },
  })
}

async function save(url: string, name: string): Promise<string> {
  const r = await bench([url, '-n', '30', '-c', '3', '--json'])
  expect(r.code).toBe(0)
  expect(r.json.values.total).toHaveLength(30)
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(r.json))
  return file
}

test('against a slower server: regressed, phase by phase; --slo budget broken: exit 4', async () => {
  const fast = delayed(5)
  const slow = delayed(40)
  const file = await save(`http://127.0.0.1:${fast.port}/`, 'fast.json')
  const r = await bench([`http://127.0.0.1:${slow.port}/`, '-n', '30', '-c', '3', '--baseline', file, '--json'])
  expect(r.code).toBe(0)
  expect(r.json.baseline.outcome).toBe('regressed')
  expect(r.json.baseline.verdict).toMatch(/^regressed: this run is [\d.]+× slower in total than the baseline \(95% CI/)
  expect(r.json.baseline.phases.wait.ci95[1]).toBeLessThan(1)
  expect(r.json.baseline.phases.total.ratio).toBeLessThan(1)
  const text = await bench([`http://127.0.0.1:${slow.port}/`, '-n', '30', '-c', '3', '--baseline', file])
  expect(text.out).toContain('against the baseline')
  expect(text.out).toMatch(/regressed: this run is/)
  const slo = await bench([`http://127.0.0.1:${slow.port}/`, '-n', '30', '-c', '3', '--baseline', file, '--slo', 'p50.total<+10%'])
  expect(slo.code).toBe(ExitCode.SLO_BROKEN)
  expect(slo.out).toContain('FAIL p50.total<+10%')
  // A generous budget is kept even though the run regressed.
  const generous = await bench([`http://127.0.0.1:${slow.port}/`, '-n', '30', '-c', '3', '--baseline', file, '--slo', 'p50.total<+5000%'])
  expect(generous.code).toBe(ExitCode.OK)
})

test('against the same server: no difference, and a budget is not broken by noise', async () => {
  const s = delayed(30)
  const file = await save(`http://127.0.0.1:${s.port}/`, 'same.json')
  const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '30', '-c', '3', '--baseline', file, '--slo', 'p50.total<+1%', '--json'])
  expect(r.json.baseline.outcome).toBe('no_difference')
  expect(r.json.baseline.verdict).toMatch(/^no difference from the baseline/)
  expect(r.code).toBe(ExitCode.OK)
})

test('against a faster server: improved', async () => {
  const slow = delayed(40)
  const fast = delayed(5)
  const file = await save(`http://127.0.0.1:${slow.port}/`, 'slow.json')
  const r = await bench([`http://127.0.0.1:${fast.port}/`, '-n', '30', '-c', '3', '--baseline', file, '--json'])
  expect(r.json.baseline.outcome).toBe('improved')
})

test('bad baselines and budgets without one are usage errors', async () => {
  const s = delayed(1)
  const url = `http://127.0.0.1:${s.port}/`
  const notJson = join(dir, 'bad.json')
  writeFileSync(notJson, 'not json')
  const old = join(dir, 'old.json')
  writeFileSync(old, JSON.stringify({ schema: 'proxy-bench/1', url, phases: {} }))
  const vs = join(dir, 'vs.json')
  writeFileSync(vs, JSON.stringify({ schema: 'proxy-bench/1', a: {}, b: {} }))
  for (const f of [notJson, old, vs, join(dir, 'missing.json')]) {
    const r = await bench([url, '--baseline', f])
    expect(r.code).toBe(ExitCode.USAGE)
  }
  expect((await bench([url, '--slo', 'p50.total<+10%'])).code).toBe(ExitCode.USAGE)
  expect((await bench([url, '--vs', url, '--baseline', notJson])).code).toBe(ExitCode.USAGE)
})
