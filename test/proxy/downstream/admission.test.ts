/** Admission's refusal log: at most one line a second, timed on the monotonic clock (a wall-clock step does not silence it). */
import { afterEach, expect, setSystemTime, spyOn, test } from 'bun:test'
import { Admission } from '../../../src/proxy/downstream/admission.ts'

afterEach(() => setSystemTime())

test('a flood of refusals logs once a second, and a wall clock stepped back 1 h does not silence it', () => {
  let monoMs = 5_000
  const now = spyOn(performance, 'now').mockImplementation(() => monoMs)
  try {
    const logged: string[] = []
    const a = new Admission({ maxConcurrentRequests: () => 1, pendingRequests: () => 2 }, (_level, msg) => logged.push(msg))
    expect(a.admit('127.0.0.1')).toBe('OVERLOADED')
    monoMs += 500
    a.admit('127.0.0.1')
    expect(logged).toHaveLength(1)
    expect(a.refused.overload).toBe(2)
    setSystemTime(new Date(Date.now() - 3_600_000))
    monoMs += 600
    a.admit('127.0.0.1')
    expect(logged).toHaveLength(2)
  } finally {
    now.mockRestore()
  }
})
