import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { parseRetryAfterMs } from '../../src/acme/errors.ts'
import { parseHttpDate } from '../../src/lib/http-date.ts'

describe('HTTP-date (RFC 9110 §5.6.7)', () => {
  test.each([
    ['Wed, 31 Feb 2027 00:00:00 GMT'],
    ['Fri, 31 Apr 2026 12:00:00 GMT'],
    ['Mon, 29 Feb 2027 00:00:00 GMT'],
    ['Thursday, 31-Jun-27 00:00:00 GMT'],
    ['Thu Feb 30 00:00:00 2000'],
    ['Sun, 00 Nov 1994 08:49:37 GMT'],
  ])('a day its month does not have is no date, not the next month: %p', (raw) => {
    expect(parseHttpDate(raw)).toBeUndefined()
  })

  test.each([
    ['Tue, 29 Feb 2000 00:00:00 GMT', Date.UTC(2000, 1, 29)],
    ['Mon, 29 Feb 2028 23:59:59 GMT', Date.UTC(2028, 1, 29, 23, 59, 59)],
    ['Thu, 31 Dec 2026 23:59:60 GMT', Date.UTC(2026, 11, 31, 23, 59, 59)],
    ['Sat, 31 Jan 2026 00:00:00 GMT', Date.UTC(2026, 0, 31)],
  ] as [string, number][])('the last day of a month, leap days and a leap second stay dates: %p', (raw, want) => {
    expect(parseHttpDate(raw)).toBe(want)
  })
})

describe('RFC 850 two-digit years (RFC 9110 §5.6.7: more than 50 years ahead is the past century)', () => {
  const nowMs = Date.UTC(2026, 10, 29, 4, 0, 0)
  test.each([
    // The year 50 on: its last day is more than 50 years ahead (it was read by its year alone, as 2076).
    ['Thursday, 31-Dec-76 00:00:00 GMT', Date.UTC(1976, 11, 31)],
    ['Monday, 30-Nov-76 00:00:00 GMT', Date.UTC(1976, 10, 30)],
    ['Sunday, 29-Nov-76 00:00:00 GMT', Date.UTC(2076, 10, 29)],
    ['Wednesday, 01-Jan-76 00:00:00 GMT', Date.UTC(2076, 0, 1)],
    ['Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 37)],
    ['Tuesday, 29-Feb-00 00:00:00 GMT', Date.UTC(2000, 1, 29)],
  ] as [string, number][])('%p', (raw, want) => {
    expect(parseHttpDate(raw, nowMs)).toBe(want)
  })
})

describe("ACME Retry-After (RFC 9110 §10.2.3) is read as UTC whatever the machine's time zone", () => {
  const zone = process.env.TZ
  beforeAll(() => {
    process.env.TZ = 'Asia/Tokyo'
  })
  afterAll(() => {
    if (zone === undefined) delete process.env.TZ
    else process.env.TZ = zone
  })

  const nowMs = Date.UTC(1994, 10, 6, 8, 19, 37)
  test.each([
    ['Sun Nov  6 08:49:37 1994'],
    ['Sunday, 06-Nov-94 08:49:37 GMT'],
    ['Sun, 06 Nov 1994 08:49:37 GMT'],
  ])('%p is 30 minutes after now', (raw) => {
    expect(parseRetryAfterMs(raw, nowMs)).toBe(30 * 60_000)
  })

  test('delay-seconds, a date in the past, and what is neither', () => {
    expect(parseRetryAfterMs('120', nowMs)).toBe(120_000)
    expect(parseRetryAfterMs('Sun, 06 Nov 1994 08:00:00 GMT', nowMs)).toBe(0)
    expect(parseRetryAfterMs('soon', nowMs)).toBeUndefined()
    expect(parseRetryAfterMs('Wed, 31 Feb 1994 00:00:00 GMT', nowMs)).toBeUndefined()
  })
})
