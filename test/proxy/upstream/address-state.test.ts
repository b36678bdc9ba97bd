/** The ejection rules: threshold, a backoff that doubles once per episode, the half-open probe, recovery. */
import { describe, expect, test } from 'bun:test'
import { addressStats, isHealthy, newAddressState, recordFailure, recordSuccess, type EjectionPolicy } from '../../../src/proxy/upstream/address-state.ts'
import { pickAddress } from '../../../src/proxy/upstream/picker.ts'

const T0 = 1_000_000
/** The wall clock at T0 on the monotonic clock: only first_seen reads it. */
const WALL0 = Date.UTC(2030, 0, 1)
const POLICY: EjectionPolicy = { failThreshold: 1, ejectBaseMs: 1000, ejectMaxMs: 8000 }
const state = (address = '127.0.2.1') => newAddressState({ address, family: 4 }, 8080, T0)

/** Lets the ejection of `s` run out and turns it into a half-open probe, as a pick does. */
function expireAndProbe(s: ReturnType<typeof state>, nowMs: number): void {
  expect(pickAddress([s], nowMs, () => 0)).toBe(s)
  expect(s.halfOpen).toBe(true)
}

describe('newAddressState', () => {
  test('starts healthy and empty, labelled ip:port', () => {
    const s = state()
    expect(s.label).toBe('127.0.2.1:8080')
    expect(isHealthy(s, T0)).toBe(true)
    expect(s).toMatchObject({ inFlight: 0, open: 0, failures: 0, consecutiveFailures: 0, ejectedUntilMonoMs: 0, ejections: 0, halfOpen: false, activeHealthy: true, removed: false })
  })

  test('an IPv6 label is bracketed', () => {
    expect(newAddressState({ address: '::1', family: 6 }, 443, T0).label).toBe('[::1]:443')
  })
})

describe('isHealthy', () => {
  test.each([
    ['removed', false, { removed: true }],
    ['failing active checks', false, { activeHealthy: false }],
    ['ejected', false, { ejectedUntilMonoMs: T0 + 1 }],
    ['ejection ended', true, { ejectedUntilMonoMs: T0 }],
    ['healthy', true, {}],
  ] as const)('%s -> %p', (_name, healthy, patch) => {
    const s = Object.assign(state(), patch)
    expect(isHealthy(s, T0)).toBe(healthy)
    expect(addressStats(s, T0, WALL0).healthy).toBe(healthy)
  })
})

describe('recordFailure', () => {
  test.each([1, 2, 3, 5])('fail_threshold=%d: ejected on the threshold-th failure in a row, not before', (failThreshold) => {
    const s = state()
    const policy = { ...POLICY, failThreshold }
    for (let i = 1; i < failThreshold; i++) {
      expect(recordFailure(s, policy, T0)).toBeUndefined()
      expect(isHealthy(s, T0)).toBe(true)
    }
    expect(recordFailure(s, policy, T0)).toBe(1000)
    expect(s.ejectedUntilMonoMs).toBe(T0 + 1000)
    expect(isHealthy(s, T0)).toBe(false)
    expect(isHealthy(s, T0 + 1000)).toBe(true)
    expect(s.failures).toBe(failThreshold)
  })

  test('a success in between resets the count in a row', () => {
    const s = state()
    const policy = { ...POLICY, failThreshold: 3 }
    recordFailure(s, policy, T0)
    recordFailure(s, policy, T0)
    expect(recordSuccess(s)).toBe(false)
    expect(s.consecutiveFailures).toBe(0)
    expect(recordFailure(s, policy, T0)).toBeUndefined()
    expect(recordFailure(s, policy, T0)).toBeUndefined()
    expect(isHealthy(s, T0)).toBe(true)
    expect(s.failures).toBe(4)
  })

  test('16 concurrent failures while ejected are one episode: the backoff does not grow', () => {
    const s = state()
    expect(recordFailure(s, POLICY, T0)).toBe(1000)
    for (let i = 0; i < 16; i++) expect(recordFailure(s, POLICY, T0 + i)).toBeUndefined()
    expect(s.ejectedUntilMonoMs).toBe(T0 + 1000)
    expect(s.ejections).toBe(1)
    expect(s.failures).toBe(17)
    // The next episode (a failed probe) doubles once, from 1 s to 2 s, not to 2^17 s.
    expireAndProbe(s, T0 + 1000)
    expect(recordFailure(s, POLICY, T0 + 1000)).toBe(2000)
  })

  test('each failed half-open probe doubles the backoff, capped at eject_max_time', () => {
    const s = state()
    let now = T0
    const backoffs: (number | undefined)[] = [recordFailure(s, POLICY, now)]
    for (let episode = 0; episode < 5; episode++) {
      now = s.ejectedUntilMonoMs
      expireAndProbe(s, now)
      backoffs.push(recordFailure(s, POLICY, now))
      expect(s.halfOpen).toBe(false)
      expect(s.ejectedUntilMonoMs).toBe(now + backoffs.at(-1)!)
    }
    expect(backoffs).toEqual([1000, 2000, 4000, 8000, 8000, 8000])
  })

  test('a failed probe ejects again even when fail_threshold is not reached', () => {
    const s = state()
    const policy = { ...POLICY, failThreshold: 3 }
    for (let i = 0; i < 3; i++) recordFailure(s, policy, T0)
    expect(s.ejections).toBe(1)
    expireAndProbe(s, T0 + 1000)
    // consecutiveFailures is 4 either way; what matters is that one probe failure is enough.
    s.consecutiveFailures = 0
    expect(recordFailure(s, policy, T0 + 1000)).toBe(2000)
  })

  test('a successful probe ends the episode: the next ejection starts again at eject_time', () => {
    const s = state()
    recordFailure(s, POLICY, T0)
    expireAndProbe(s, T0 + 1000)
    expect(recordFailure(s, POLICY, T0 + 1000)).toBe(2000)
    expireAndProbe(s, T0 + 3000)
    expect(recordSuccess(s)).toBe(true)
    expect(s).toMatchObject({ halfOpen: false, ejectedUntilMonoMs: 0, ejections: 0, consecutiveFailures: 0 })
    expect(isHealthy(s, T0 + 3000)).toBe(true)
    // A success on a healthy address is not a recovery.
    expect(recordSuccess(s)).toBe(false)
    expect(recordFailure(s, POLICY, T0 + 5000)).toBe(1000)
  })

  test('eject_max_time below eject_time caps the first ejection too', () => {
    const s = state()
    expect(recordFailure(s, { failThreshold: 1, ejectBaseMs: 5000, ejectMaxMs: 2000 }, T0)).toBe(2000)
  })
})

describe('addressStats', () => {
  test('reports the time left of an ejection and never a negative one', () => {
    const s = state()
    recordFailure(s, POLICY, T0)
    expect(addressStats(s, T0 + 250, WALL0 + 250).ejected_for_ms).toBe(750)
    expect(addressStats(s, T0 + 5000, WALL0 + 5000).ejected_for_ms).toBe(0)
    expect(addressStats(s, T0, WALL0).failures).toBe(1)
  })

  test('first_seen is the wall-clock time of now less the monotonic time since, whatever the wall clock did meanwhile', () => {
    const s = state()
    expect(addressStats(s, T0 + 5000, WALL0 + 5000).first_seen).toBe('2030-01-01T00:00:00.000Z')
    // The wall clock was stepped back an hour: the address was seen 5 s ago by the clock of now.
    expect(addressStats(s, T0 + 5000, WALL0 - 3_600_000 + 5000).first_seen).toBe('2029-12-31T23:00:00.000Z')
  })
})
