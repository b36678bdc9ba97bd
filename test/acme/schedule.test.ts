import { describe, expect, test } from 'bun:test'
import { daysLeft, renewalTimeMs, retryDelayMs } from '../../src/acme/schedule.ts'

const DAY = 86_400_000
const cert90 = { notBeforeMs: 0, notAfterMs: 90 * DAY }

describe('renewal schedule', () => {
  test('two thirds of the lifetime, jittered by at most 1/30 of it either way', () => {
    expect(renewalTimeMs(cert90, () => 0.5)).toBe(60 * DAY)
    expect(renewalTimeMs(cert90, () => 0)).toBe(57 * DAY)
    expect(renewalTimeMs(cert90, () => 1)).toBe(63 * DAY)
    // A 6-day certificate (short-lived profile) renews at day 4 ± 0.2.
    expect(renewalTimeMs({ notBeforeMs: 0, notAfterMs: 6 * DAY }, () => 0.5)).toBe(4 * DAY)
  })

  test('an ARI window wins: a uniform point inside it (RFC 9773 §4.2)', () => {
    const ari = { startMs: 10 * DAY, endMs: 12 * DAY }
    expect(renewalTimeMs(cert90, () => 0, ari)).toBe(10 * DAY)
    expect(renewalTimeMs(cert90, () => 0.5, ari)).toBe(11 * DAY)
    expect(renewalTimeMs(cert90, () => 1, ari)).toBe(12 * DAY)
  })

  test("an ARI window outside the certificate's life is not followed; one reaching past expiry is cut at expiry", () => {
    // Starting after expiry (years away): renewing then would serve an expired certificate.
    expect(renewalTimeMs(cert90, () => 0.5, { startMs: 900 * DAY, endMs: 901 * DAY })).toBe(60 * DAY)
    // Ended before the certificate was issued: each new certificate would be renewed on arrival.
    expect(renewalTimeMs({ notBeforeMs: 100 * DAY, notAfterMs: 190 * DAY }, () => 0.5, { startMs: 10 * DAY, endMs: 12 * DAY })).toBe(160 * DAY)
    // Straddling expiry: the point is chosen before it.
    expect(renewalTimeMs(cert90, () => 1, { startMs: 80 * DAY, endMs: 120 * DAY })).toBe(90 * DAY)
    expect(renewalTimeMs(cert90, () => 0.5, { startMs: 80 * DAY, endMs: 120 * DAY })).toBe(85 * DAY)
  })

  test('back-off doubles from one minute to six hours, and respects Retry-After', () => {
    const mid = () => 0.5 // no jitter
    expect(retryDelayMs(1, mid)).toBe(60_000)
    expect(retryDelayMs(2, mid)).toBe(120_000)
    expect(retryDelayMs(5, mid)).toBe(16 * 60_000)
    expect(retryDelayMs(30, mid)).toBe(6 * 3600_000)
    expect(retryDelayMs(1, () => 0)).toBe(48_000)
    expect(retryDelayMs(1, () => 1)).toBeCloseTo(72_000, 6)
    expect(retryDelayMs(1, mid, 3600_000)).toBe(3600_000)
    // A Retry-After beyond the longest back-off counts as six hours, not as "never again".
    expect(retryDelayMs(1, mid, 99999999999999999999 * 1000)).toBe(6 * 3600_000)
  })

  test('days left', () => {
    expect(daysLeft(10 * DAY, 4 * DAY)).toBe(6)
    expect(daysLeft(10 * DAY, 11 * DAY)).toBe(-1)
  })
})
