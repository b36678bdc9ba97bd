/**
 * Flood budgets (RFC 9113 §10.5): how often a client may make the server work without progress
 * (rapid reset, CVE-2023-44487; SETTINGS, PING, WINDOW_UPDATE, PRIORITY and empty-frame floods),
 * counted in fixed windows. Going over a budget is a connection error ENHANCE_YOUR_CALM. The
 * budgets' sizes are in limits.ts; where each event happens is decided in session.ts.
 */
import { enhanceYourCalm } from './errors.ts'
import type { Http2Limits } from './limits.ts'

/** Counts events in fixed windows of `windowMs`; take() is false once more than `max` happened in the current one. */
export class Budget {
  private windowStart = 0
  private count = 0

  constructor(private readonly max: number, private readonly windowMs: number, private readonly now: () => number) {}

  take(extra = 0): boolean {
    const t = this.now()
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t
      this.count = 0
    }
    this.count++
    return this.count <= this.max + extra
  }
}

export class FloodGuard {
  private readonly resets: Budget
  private readonly abandoned: Budget
  private readonly settings: Budget
  private readonly pings: Budget
  private readonly empties: Budget
  private readonly windowUpdates: Budget

  constructor(l: Http2Limits, now: () => number) {
    const budget = (max: number) => new Budget(max, l.floodWindowMs, now)
    this.resets = budget(l.maxResetsPerWindow)
    this.abandoned = budget(l.maxAbandonedPerWindow)
    this.settings = budget(l.maxSettingsPerWindow)
    this.pings = budget(l.maxPingsPerWindow)
    this.empties = budget(l.maxEmptyFramesPerWindow)
    this.windowUpdates = budget(l.maxWindowUpdatesPerWindow)
  }

  /** A stream reset by the client, or by us for its error, or refused: the rapid-reset count. */
  reset(what: string): void {
    if (!this.resets.take()) throw enhanceYourCalm(`too many ${what}`)
  }

  /** A request the client cancelled after it reached the request path, before its answer began. */
  abandon(): void {
    if (!this.abandoned.take()) throw enhanceYourCalm('too many requests cancelled before their response')
  }

  setting(): void {
    if (!this.settings.take()) throw enhanceYourCalm('SETTINGS flood')
  }

  ping(): void {
    if (!this.pings.take()) throw enhanceYourCalm('PING flood')
  }

  /** A frame that carries nothing we use: empty DATA, PRIORITY, an unknown type. */
  empty(what: string): void {
    if (!this.empties.take()) throw enhanceYourCalm(`flood of ${what}`)
  }

  /** A DATA frame on an open stream: without body bytes (padding at most) and END_STREAM, it carries nothing. */
  data(bodyBytes: number, endStream: boolean): void {
    if (bodyBytes === 0 && !endStream) this.empty('empty DATA frames')
  }

  /** WINDOW_UPDATE frames are allowed two per DATA frame we sent, on top of the budget. */
  windowUpdate(dataFramesSent: number): void {
    if (!this.windowUpdates.take(2 * dataFramesSent)) throw enhanceYourCalm('WINDOW_UPDATE flood')
  }
}
