/** Picking an address: P2C on in-flight counts with an injected random, what is skipped, half-open, the fallback. */
import { describe, expect, test } from 'bun:test'
import { newAddressState, type AddressState } from '../../../src/proxy/upstream/address-state.ts'
import { pickAddress } from '../../../src/proxy/upstream/picker.ts'

const NOW = 1_000_000

function states(inFlight: number[]): AddressState[] {
  return inFlight.map((n, i) => Object.assign(newAddressState({ address: `127.0.2.${i + 1}`, family: 4 }, 80, 0), { inFlight: n }))
}

/** A random() that returns `values` in turn (then repeats the last). */
function sequence(...values: number[]): () => number {
  let i = 0
  return () => values[Math.min(i++, values.length - 1)]!
}

describe('pickAddress: power of two choices', () => {
  // With three eligible addresses, the first draw picks i in 0..2, the second j in the other two.
  test.each([
    // [draws, inFlight, expected index]
    [[0, 0], [5, 1, 3], 1], // i=0, j=1: 5 vs 1
    [[0, 0.99], [5, 1, 3], 2], // i=0, j=2: 5 vs 3 (the least loaded, index 1, was not drawn)
    [[0.99, 0], [5, 1, 3], 2], // i=2, j=0: 3 vs 5
    [[0.5, 0.99], [5, 7, 3], 2], // i=1, j=2: 7 vs 3
    [[0.5, 0], [0, 4, 9], 0], // i=1, j=0: 4 vs 0
    [[0, 0], [2, 2, 0], 0], // a tie goes to the first drawn
  ])('draws %p over in-flight %p -> index %d', (draws, inFlight, expected) => {
    const ss = states(inFlight)
    expect(pickAddress(ss, NOW, sequence(...draws))).toBe(ss[expected]!)
  })

  test.each([0, 0.3, 0.5, 0.99])('two eligible addresses: the less loaded one whatever the draw (%p)', (r) => {
    const ss = states([4, 2])
    expect(pickAddress(ss, NOW, () => r)).toBe(ss[1]!)
    const rev = states([2, 4])
    expect(pickAddress(rev, NOW, () => r)).toBe(rev[0]!)
  })

  test('one eligible address needs no draw', () => {
    const ss = states([9])
    expect(pickAddress(ss, NOW, () => {
      throw new Error('random() must not be called')
    })).toBe(ss[0]!)
  })

  test('nothing to pick from -> undefined', () => {
    expect(pickAddress([], NOW, Math.random)).toBeUndefined()
  })
})

describe('pickAddress: what is skipped', () => {
  const spoilers: [string, (s: AddressState) => void][] = [
    ['removed', (s) => void (s.removed = true)],
    ['failing active checks', (s) => void (s.activeHealthy = false)],
    ['ejected', (s) => void (s.ejectedUntilMonoMs = NOW + 1)],
  ]
  test.each(spoilers)('%s: never chosen while another address takes traffic', (_name, spoil) => {
    // The spoiled address is the idle one, so P2C alone would always prefer it.
    for (const r of [0, 0.5, 0.99]) {
      const ss = states([0, 3, 3])
      spoil(ss[0]!)
      const got = pickAddress(ss, NOW, () => r)
      expect(got).toBeDefined()
      expect(got).not.toBe(ss[0]!)
    }
  })

  test('excluded addresses are skipped', () => {
    const ss = states([0, 0, 5])
    expect(pickAddress(ss, NOW, () => 0, new Set(['127.0.2.1', '127.0.2.2']))).toBe(ss[2]!)
  })

  test('excluded and removed addresses are never a fallback', () => {
    const ss = states([0, 0])
    ss[0]!.removed = true
    expect(pickAddress(ss, NOW, () => 0, new Set(['127.0.2.2']))).toBeUndefined()
  })
})

describe('pickAddress: half-open', () => {
  test('an expired ejection becomes a half-open probe', () => {
    const ss = states([0])
    ss[0]!.ejectedUntilMonoMs = NOW - 1
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[0]!)
    expect(ss[0]!.halfOpen).toBe(true)
  })

  test('a running ejection is not half-open', () => {
    const ss = states([0, 0])
    ss[0]!.ejectedUntilMonoMs = NOW + 1
    pickAddress(ss, NOW, () => 0)
    expect(ss[0]!.halfOpen).toBe(false)
  })

  test('half-open allows one request in flight: the next goes elsewhere', () => {
    const ss = states([0, 7])
    ss[0]!.ejectedUntilMonoMs = NOW - 1
    // The probe: the half-open address is the less loaded one.
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[0]!)
    ss[0]!.inFlight = 1
    for (const r of [0, 0.5, 0.99]) expect(pickAddress(ss, NOW, () => r)).toBe(ss[1]!)
    // Once the probe is over (and before its result is recorded) it is eligible again.
    ss[0]!.inFlight = 0
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[0]!)
  })
})

describe('pickAddress: fallback when every address is out', () => {
  test('the address back soonest is tried rather than none', () => {
    const ss = states([0, 0, 0])
    ss[0]!.ejectedUntilMonoMs = NOW + 3000
    ss[1]!.ejectedUntilMonoMs = NOW + 1000
    ss[2]!.ejectedUntilMonoMs = NOW + 2000
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[1]!)
    // Not turned into a probe: its ejection is still running.
    expect(ss[1]!.halfOpen).toBe(false)
  })

  test('an address failing active checks is the fallback when it is the only one', () => {
    const ss = states([0])
    ss[0]!.activeHealthy = false
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[0]!)
  })

  test('a busy half-open address is the fallback when nothing else takes traffic (fail open, not one-in-flight)', () => {
    const ss = states([1, 0])
    ss[0]!.ejectedUntilMonoMs = NOW - 1
    ss[0]!.halfOpen = true
    ss[1]!.ejectedUntilMonoMs = NOW + 1000
    // Its ejectedUntilMonoMs lies in the past, so it is "back soonest".
    expect(pickAddress(ss, NOW, () => 0)).toBe(ss[0]!)
  })
})
