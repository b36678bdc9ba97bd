/**
 * When to renew, as pure functions of the certificate, the clock and a random source: at about
 * two thirds of the lifetime with jitter (so many proxies started together do not order in the
 * same minute), or inside the CA's ARI window (RFC 9773 §4.2); and how long to back off after a
 * failure. manager.ts owns the timers that act on these numbers.
 */

export interface Validity {
  notBeforeMs: number
  notAfterMs: number
}

/** The CA's suggested window (RFC 9773 §4.2). */
export interface Window {
  startMs: number
  endMs: number
}

/** Jitter around the two-thirds mark, as a fraction of the lifetime either way (±3 days of 90). */
const JITTER_FRACTION = 1 / 30
const FIRST_RETRY_MS = 60_000
/** The longest back-off; a CA's Retry-After is capped here too, so one header cannot stop ordering. */
export const MAX_RETRY_MS = 6 * 3600_000
/** setTimeout fires at once beyond 2^31-1 ms; timers are also re-armed at least this often. */
export const MAX_TIMER_MS = 12 * 3600_000

/**
 * The moment to start renewing. With an ARI window: a uniformly random point inside it, as the
 * RFC asks; a window already past means now. Without (or with one usableWindow refuses): two
 * thirds of the lifetime, ± jitter.
 */
export function renewalTimeMs(cert: Validity, random: () => number, ari?: Window): number {
  const window = ari && usableWindow(cert, ari)
  if (window) return window.startMs + random() * (window.endMs - window.startMs)
  const lifetimeMs = Math.max(0, cert.notAfterMs - cert.notBeforeMs)
  const twoThirds = cert.notBeforeMs + (lifetimeMs * 2) / 3
  return twoThirds + (random() * 2 - 1) * lifetimeMs * JITTER_FRACTION
}

/**
 * The part of a CA's window inside the certificate's life, or undefined when there is none. A
 * window that starts after expiry would serve an expired certificate until then; one that ended
 * before the certificate was issued would have each new certificate renewed the moment it
 * arrives, an order after order. Both are a broken CA; the two-thirds rule is used instead.
 */
export function usableWindow(cert: Validity, ari: Window): Window | undefined {
  if (ari.startMs >= cert.notAfterMs || ari.endMs <= cert.notBeforeMs || ari.endMs < ari.startMs) return undefined
  return { startMs: ari.startMs, endMs: Math.min(ari.endMs, cert.notAfterMs) }
}

/**
 * Back-off after `failures` consecutive failed attempts (1 = the first failure): one minute,
 * doubling to six hours, ±20% jitter; never sooner than the server's Retry-After, which counts
 * for at most six hours (`Retry-After: 99999999999999999999` must not mean "never again").
 */
export function retryDelayMs(failures: number, random: () => number, retryAfterMs?: number): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, Math.min(failures - 1, 20)))
  const jittered = base * (0.8 + 0.4 * random())
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_MS))
}

/** Whole and fractional days until expiry; negative once expired. For the log and /metrics. */
export function daysLeft(notAfterMs: number, nowMs: number): number {
  return (notAfterMs - nowMs) / 86_400_000
}
