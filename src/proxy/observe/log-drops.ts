/**
 * Access-log lines that could not be written: counted (this log's and the process's total, which
 * /metrics shows), and reported on the operational log once per outage: one message when lines
 * start to be dropped, one when a write succeeds again. A destination that flaps is reported at
 * most once per REPORT_INTERVAL_MS; the counters see every line.
 */
import type { LogFn } from '../../lib/logger.ts'

/** Counters that outlive one access log (a reload replaces the log, not these). */
export interface AccessLogStats {
  /** Lines dropped since start, over every access log this process had. */
  dropped: number
}

/** Least time between two outage messages. */
export const REPORT_INTERVAL_MS = 60_000

export class DropReport {
  /** Lines this log dropped. */
  dropped = 0
  /** Whether lines are being dropped now (no write has succeeded since the last drop). */
  outage = false
  private outageDropped = 0
  /** Whether this outage's start was logged (then its end is too). */
  private announced = false
  /** An outage was announced within REPORT_INTERVAL_MS. */
  private quiet = false
  private quietTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly stats: AccessLogStats,
    private readonly log: LogFn,
    /** Where the lines go, for the messages: { path } or { stream }. */
    private readonly where: Record<string, string>,
  ) {}

  /** `lines` were not written; `msg` says why in words, `error` the cause. */
  drop(lines: number, msg: string, error: string): void {
    this.dropped += lines
    this.stats.dropped += lines
    if (this.outage) {
      this.outageDropped += lines
      return
    }
    this.outage = true
    this.outageDropped = lines
    this.announced = !this.quiet
    if (!this.announced) return
    this.log('error', msg, { ...this.where, error, dropped_total: this.stats.dropped })
    this.quiet = true
    this.quietTimer = setTimeout(() => (this.quiet = false), REPORT_INTERVAL_MS)
    this.quietTimer.unref?.()
  }

  /** A write succeeded: ends an outage. */
  recovered(): void {
    if (!this.outage) return
    this.outage = false
    if (this.announced) this.log('info', 'access log writable again', { ...this.where, dropped: this.outageDropped })
    this.announced = false
  }

  close(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer)
  }
}
