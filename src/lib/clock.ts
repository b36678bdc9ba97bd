/**
 * The clocks: read once per socket event (below), the pair of them as the seam that timed state
 * takes (Clocks), and the wall-clock time as text, formatted no more often than it can change:
 * ISO 8601 for the access record of every request (at thousands of requests a second most share
 * a millisecond), and the HTTP date (IMF-fixdate, whole seconds) for responses the proxy writes
 * itself. Durations and deadlines use the monotonic clock: the wall clock steps (NTP, an operator,
 * a VM resumed), and is only for times shown to people or compared with wall-clock data.
 */
let lastMs = -1
let lastIso = ''

export function isoNow(): string {
  const ms = wallNow()
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

/*
 * The clocks read once per socket event. A request's path sets a dozen deadlines and durations
 * while one socket event is handled (the client's read: its deadline, start, the attempt's
 * deadline, the send; the upstream's read: its arrival, the record's duration, the pool's idle
 * mark). The socket callbacks hold one reading of each clock for the synchronous work they do
 * (holdClocks / releaseClocks, in try/finally, nested ones keeping the outer reading), as nginx
 * reads its time once per turn of its event loop; outside a held event the clocks are read.
 */
let held = 0
let heldMonoMs = -1
let heldWallMs = -1

/** Monotonic milliseconds (performance.now()), the held reading inside a socket event. */
export function monoNow(): number {
  if (held === 0) return performance.now()
  if (heldMonoMs < 0) heldMonoMs = performance.now()
  return heldMonoMs
}

/** Wall-clock milliseconds (Date.now()), the held reading inside a socket event. */
export function wallNow(): number {
  if (held === 0) return Date.now()
  if (heldWallMs < 0) heldWallMs = Date.now()
  return heldWallMs
}

export function holdClocks(): void {
  held++
}

export function releaseClocks(): void {
  if (--held > 0) return
  held = 0
  heldMonoMs = -1
  heldWallMs = -1
}

/**
 * Both clocks, as the resolver and the pool take them (tests inject fakes whose wall clock steps).
 * monoMs is for every duration and deadline; wallMs only to show a moment (wallAtMs).
 */
export interface Clocks {
  monoMs(): number
  wallMs(): number
}

/** The process's clocks, held per socket event. */
export const heldClocks: Clocks = { monoMs: monoNow, wallMs: wallNow }

/** The wall-clock time of a monotonic mark, for display: the wall clock now, less the time since the mark. */
export function wallAtMs(clocks: Clocks, markMonoMs: number): number {
  return clocks.wallMs() - (clocks.monoMs() - markMonoMs)
}
