/**
 * HTTP-date (RFC 9110 §5.6.7) read into ms since the epoch: the cache's Date, Expires,
 * Last-Modified and conditional fields, and the ACME server's Retry-After. Pure functions.
 */

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 }
const IMF = /^(?:mon|tue|wed|thu|fri|sat|sun), (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/
const RFC850 = /^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/
const ASCTIME = /^(?:mon|tue|wed|thu|fri|sat|sun) ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/**
 * An HTTP-date (RFC 9110 §5.6.7) in ms since the epoch: IMF-fixdate, and the obsolete RFC 850
 * and asctime forms recipients must accept (`nowMs` places RFC 850's two-digit years). undefined
 * when invalid; callers decide what an invalid date means (an invalid Expires is "already
 * expired", RFC 9111 §5.3).
 */
export function parseHttpDate(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined
  const v = value.trim().toLowerCase()
  let m = IMF.exec(v)
  if (m) return utc(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!)
  m = RFC850.exec(v)
  if (m) {
    // A date that appears to be more than 50 years in the future is in the past century (§5.6.7):
    // the whole date against now plus 50 years, not its year against this year's (31 Dec of the
    // year 50 on is more than 50 years ahead on any day but that one).
    const thisYear = new Date(nowMs).getUTCFullYear()
    const century = Math.floor(thisYear / 100) * 100
    const at = utc(century + Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!)
    if (at === undefined) return undefined
    const fiftyYearsOn = new Date(nowMs)
    fiftyYearsOn.setUTCFullYear(thisYear + 50)
    return at > fiftyYearsOn.getTime() ? utc(century - 100 + Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!) : at
  }
  m = ASCTIME.exec(v)
  if (m) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!)
  return undefined
}

function utc(year: number, mon: string, day: number, hh: string, mm: string, ss: string): number | undefined {
  const month = MONTHS[mon]
  if (month === undefined || day < 1 || day > 31) return undefined
  const h = Number(hh)
  const m = Number(mm)
  const s = Number(ss)
  if (h > 23 || m > 59 || s > 60) return undefined
  const ms = Date.UTC(year, month, day, h, m, Math.min(s, 59))
  // A day the month does not have (31 Feb, 29 Feb 2027) is not a date: Date.UTC would roll it
  // over into the next month, and an invalid date must not stand for a later one (RFC 9111 §5.3
  // takes an invalid Expires as in the past; RFC 9110 §13.1.3 ignores an invalid If-Modified-Since).
  return new Date(ms).getUTCDate() === day ? ms : undefined
}
