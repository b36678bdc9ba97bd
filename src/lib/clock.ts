/**
 * The wall-clock time as text, formatted no more often than it can change: ISO 8601 for the
 * access record of every request (at thousands of requests a second most share a millisecond),
 * and the HTTP date (IMF-fixdate, whole seconds) for responses the proxy writes itself.
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

let lastSecond = -1
let lastHttpDate = ''

export function httpDateNow(): string {
  const ms = Date.now()
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastSecond = second
    lastHttpDate = new Date(ms).toUTCString()
  }
  return lastHttpDate
}
