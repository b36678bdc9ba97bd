/**
 * Human units at the edge: durations ("250ms", "30s", "5m", "1h") and sizes ("64KiB", "1MB").
 * Parsed once while resolving config; nothing downstream sees a string unit.
 */

/** The longest wait a timer can take: setTimeout fires at once beyond 2^31-1 ms (Bun, Node, Deno). */
export const MAX_TIMER_MS = 2 ** 31 - 1

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses "250ms", "1.5s", "5m", "1h30m", "0". Returns milliseconds, or undefined when malformed or under 1 ms (isUnderOneMs tells which). */
export function parseDurationMs(raw: string): number | undefined {
  const total = durationTotalMs(raw)
  if (total === undefined) return undefined
  // Under a millisecond would round to 0, which means "none" (no timeout) where 0 is allowed.
  if (total > 0 && total < 1) return undefined
  return Math.round(total)
}

/** Whether `raw` is well written but under 1 ms ("0.4ms"), which parseDurationMs refuses: for a message that says so. */
export function isUnderOneMs(raw: string): boolean {
  const total = durationTotalMs(raw)
  return total !== undefined && total > 0 && total < 1
}

/** The sum of "1h30m"'s parts in ms, unrounded; undefined when malformed. */
function durationTotalMs(raw: string): number | undefined {
  const text = raw.trim()
  if (text === '0') return 0
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== text.length) return undefined
  return total
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
}

/** Parses "64KiB", "1MB", "512", "2GiB". Returns bytes, or undefined when malformed or a fraction of a byte (isFractionOfByte tells which). */
export function parseSizeBytes(raw: string): number | undefined {
  const read = sizeRead(raw)
  if (read === undefined || !wholeBytes(read)) return undefined
  return Math.round(read.bytes)
}

/** Whether `raw` is well written but not a whole number of bytes ("1.5", "0.5B"), which parseSizeBytes refuses: for a message that says so. */
export function isFractionOfByte(raw: string): boolean {
  const read = sizeRead(raw)
  return read !== undefined && !wholeBytes(read)
}

/** A fraction of a byte is no size ("0.4" would round to 0, which means "no limit" for the limits). */
function wholeBytes(read: { bytes: number; factor: number }): boolean {
  // Past the largest float ("9" x 400) is no fraction either: the caller refuses it as too large.
  return read.factor === 1 ? Number.isInteger(read.bytes) || read.bytes === Infinity : !(read.bytes > 0 && read.bytes < 1)
}

/** "1.5KiB" -> 1536 bytes and its unit's factor, unrounded; undefined when malformed. */
function sizeRead(raw: string): { bytes: number; factor: number } | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw)
  if (!m) return undefined
  const unit = (m[2] ?? '').toLowerCase() || 'b'
  const factor = SIZE_UNITS[unit]
  if (factor === undefined) return undefined
  return { bytes: Number(m[1]) * factor, factor }
}

/** "1500" -> "1.5s", "250" -> "250ms", for printing resolved config and --help defaults. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0'
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  if (ms >= 1000) return `${ms / 1000}s`
  return `${ms}ms`
}

export function formatSizeBytes(bytes: number): string {
  if (bytes === 0) return '0'
  for (const [unit, f] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes % f === 0) return `${bytes / f}${unit}`
  }
  return `${bytes}B`
}
