/**
 * One timer for many deadlines (runtime/deadline-sweep.ts): what is due expires once, what is
 * deleted never does, and the timer stops when nothing is left. Sweeps are driven by hand with
 * explicit clock values (no waiting on real time), except one check that the timer itself runs.
 */
import { afterEach, expect, test } from 'bun:test'
import { DeadlineSweep } from '../../src/runtime/deadline-sweep.ts'

const sweeps: DeadlineSweep[] = []
afterEach(() => {
  for (const s of sweeps.splice(0)) s.close()
})
function sweepOf(tickMs: number): DeadlineSweep {
  const s = new DeadlineSweep(tickMs)
  sweeps.push(s)
  return s
}

function entry(deadlineAt: number) {
  const e = { deadlineAt, expired: 0, expire: () => e.expired++ }
  return e
}

test('expires what is due, once, and keeps the rest', () => {
  const s = sweepOf(1000)
  const early = entry(100)
  const late = entry(300)
  s.add(early)
  s.add(late)
  s.sweep(99)
  expect([early.expired, late.expired]).toEqual([0, 0])
  s.sweep(100)
  expect([early.expired, late.expired]).toEqual([1, 0])
  s.sweep(200)
  expect(early.expired).toBe(1)
  expect(s.size).toBe(1)
  s.sweep(1000)
  expect([early.expired, late.expired]).toEqual([1, 1])
  expect(s.size).toBe(0)
})

test('a deleted entry never expires', () => {
  const s = sweepOf(1000)
  const e = entry(10)
  s.add(e)
  s.delete(e)
  s.sweep(1e12)
  expect(e.expired).toBe(0)
})

test('an entry may delete another from its expire() during the sweep', () => {
  const s = sweepOf(1000)
  const b = entry(10)
  const a = { deadlineAt: 10, expired: 0, expire: () => (a.expired++, s.delete(b)) }
  s.add(a)
  s.add(b)
  s.sweep(20)
  expect(a.expired).toBe(1)
  expect(b.expired).toBe(0)
  expect(s.size).toBe(0)
})

test('the timer sweeps on its own and stops when nothing is left', async () => {
  const s = sweepOf(5)
  const e = entry(performance.now() + 10)
  s.add(e)
  // Bounded: at most 2 s of polling in 5 ms steps.
  for (let i = 0; i < 400 && e.expired === 0; i++) await Bun.sleep(5)
  expect(e.expired).toBe(1)
  expect(s.size).toBe(0)
})
