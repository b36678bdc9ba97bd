/**
 * Picking an address for a new request: power of two choices on in-flight counts among the
 * addresses that take traffic (Mitzenmacher; what Envoy and nginx's random two do). An expired
 * ejection turns into a half-open probe: one request at a time until one succeeds. When every
 * address is down, the one back soonest is tried rather than none.
 */
import type { AddressState } from './address-state.ts'

export function pickAddress(states: Iterable<AddressState>, nowMs: number, random: () => number, exclude?: ReadonlySet<string>): AddressState | undefined {
  const eligible: AddressState[] = []
  let fallback: AddressState | undefined
  for (const s of states) {
    if (s.removed || exclude?.has(s.address)) continue
    const ejected = s.ejectedUntil > nowMs
    if (!ejected && s.ejectedUntil !== 0 && !s.halfOpen) s.halfOpen = true
    if (!ejected && s.activeHealthy && !(s.halfOpen && s.inFlight > 0)) eligible.push(s)
    else if (!fallback || s.ejectedUntil < fallback.ejectedUntil) fallback = s
  }
  if (eligible.length === 0) return fallback
  if (eligible.length === 1) return eligible[0]
  const i = Math.floor(random() * eligible.length)
  let j = Math.floor(random() * (eligible.length - 1))
  if (j >= i) j++
  const a = eligible[i]!
  const b = eligible[j]!
  return a.inFlight <= b.inFlight ? a : b
}
