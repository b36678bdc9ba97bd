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

test('a connection closed with no answer (nothing whole in time) is counted and logged without a status; a refusal with its status', () => {
  const logged: [string, Record<string, unknown> | undefined][] = []
  const log = (_level: string, msg: string, fields?: Record<string, unknown>) => void logged.push([msg, fields])
  const quiet = new Admission({ maxConcurrentRequests: () => 0, pendingRequests: () => 0 }, log)
  quiet.count('CLIENT_HEADER_TIMEOUT', 'no request within client_header_timeout', '127.0.0.1', false)
  expect(quiet.refused.header_timeout).toBe(1)
  expect(logged[0]![0]).toBe('connection closed without an answer')
  expect(logged[0]![1]).not.toHaveProperty('status')
  const answered = new Admission({ maxConcurrentRequests: () => 0, pendingRequests: () => 0 }, log)
  answered.count('CLIENT_HEADER_TIMEOUT', 'request head not received', '127.0.0.1')
  expect(logged[1]![0]).toBe('request refused')
  expect(logged[1]![1]).toMatchObject({ status: 408, refused_reason: 'header_timeout' })
})
