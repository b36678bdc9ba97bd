/**
 * Picking an address for a new request: power of two choices on in-flight counts among the
 * addresses that take traffic (Mitzenmacher; what Envoy and nginx's random two do). An expired
 * ejection turns into a half-open probe: one request at a time until one succeeds. When every
 * address is down, the one back soonest is tried rather than none.
 */
import type { AddressState } from './address-state.ts'

export function pickAddress(states: readonly AddressState[], nowMonoMs: number, random: () => number, exclude?: ReadonlySet<string>): AddressState | undefined {
  // Counted, not listed: the usual pick makes nothing (a second pass finds the two drawn).
  let eligible = 0
  let last: AddressState | undefined
  let fallback: AddressState | undefined
  for (let k = 0; k < states.length; k++) {
    const s = states[k]!
    if (s.removed || exclude?.has(s.address)) continue
    if (s.ejectedUntilMonoMs <= nowMonoMs && s.ejectedUntilMonoMs !== 0 && !s.halfOpen) s.halfOpen = true
    if (takesPick(s, nowMonoMs)) {
      eligible++
      last = s
    } else if (!fallback || s.ejectedUntilMonoMs < fallback.ejectedUntilMonoMs) fallback = s
  }
  if (eligible === 0) return fallback
  if (eligible === 1) return last
  const i = Math.floor(random() * eligible)
  let j = Math.floor(random() * (eligible - 1))
  if (j >= i) j++
  let a: AddressState | undefined
  let b: AddressState | undefined
  for (let k = 0, n = 0; k < states.length && (a === undefined || b === undefined); k++) {
    const s = states[k]!
    if (s.removed || exclude?.has(s.address) || !takesPick(s, nowMonoMs)) continue
    if (n === i) a = s
    if (n === j) b = s
    n++
  }
  return a!.inFlight <= b!.inFlight ? a! : b!
}

/** Whether `s` (not removed, not excluded) may be drawn now: not ejected, healthy, and not a half-open probe already in use. */
function takesPick(s: AddressState, nowMonoMs: number): boolean {
  return s.ejectedUntilMonoMs <= nowMonoMs && s.activeHealthy && !(s.halfOpen && s.inFlight > 0)
}
