/**
 * The wall-clock time as an ISO 8601 string, formatted at most once per millisecond: the access
 * record of every request carries one, and at thousands of requests a second most of them share
 * the same millisecond.
 */
let lastMs = -1
let lastIso = ''

export function isoNow(): string {
  const ms = Date.now()
  if (ms !== lastMs) {
    lastMs = ms
    lastIso = new Date(ms).toISOString()
  }
  return lastIso
}
