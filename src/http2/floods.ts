/**
 * Flood budgets (RFC 9113 §10.5): how often a client may make the server work without progress
 * (rapid reset, CVE-2023-44487; SETTINGS, PING, WINDOW_UPDATE, PRIORITY and empty-frame floods;
 * DATA frames carrying a few bytes each),
 * counted in fixed windows. Going over a budget is a connection error ENHANCE_YOUR_CALM. The
 * budgets' sizes are in limits.ts; where each event happens is decided in session.ts.
 */
import { enhanceYourCalm } from './errors.ts'
import { FRAME_HEADER_BYTES } from './frames.ts'
import type { Http2Limits } from './limits.ts'

/** Counts events (or bytes) in fixed windows of `windowMs`; false once more than `max` in the current one. */
export class Budget {
  private windowStart = 0
  private count = 0

  constructor(private readonly max: number, private readonly windowMs: number, private readonly now: () => number) {}

  take(extra = 0): boolean {
    this.roll()
    this.count++
    return this.count <= this.max + extra
  }

  /** Adds `amount`, which may be below 0 (a credit within the window). */
  spend(amount: number): boolean {
    this.roll()
    this.count += amount
    return this.count <= this.max
  }

  private roll(): void {
    const t = this.now()
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t
      this.count = 0
    }
  }
}

export class FloodGuard {
  private readonly resets: Budget
  private readonly abandoned: Budget
  private readonly settings: Budget
  private readonly pings: Budget
  private readonly empties: Budget
  private readonly windowUpdates: Budget
  /** Bytes of DATA frame overhead less the body they carry, weighted (see dataOverhead). */
  private readonly overhead: Budget
  private readonly overheadPerBodyByte: number

  constructor(l: Http2Limits, now: () => number) {
    const budget = (max: number) => new Budget(max, l.floodWindowMs, now)
    this.resets = budget(l.maxResetsPerWindow)
    this.abandoned = budget(l.maxAbandonedPerWindow)
    this.settings = budget(l.maxSettingsPerWindow)
    this.pings = budget(l.maxPingsPerWindow)
    this.empties = budget(l.maxEmptyFramesPerWindow)
    this.windowUpdates = budget(l.maxWindowUpdatesPerWindow)
    this.overhead = budget(l.dataOverheadSlackBytes)
    this.overheadPerBodyByte = l.dataOverheadPerBodyByte
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

  /**
   * A DATA frame on an open stream, of `frameBytes` (its payload, padding included) with
   * `bodyBytes` of body. One with END_STREAM ends a stream, once per stream: not counted.
   */
  data(frameBytes: number, bodyBytes: number, endStream: boolean): void {
    if (endStream) return
    if (bodyBytes === 0) this.empty('empty DATA frames')
    this.dataOverhead(frameBytes, bodyBytes)
  }

  /**
   * Frame overhead (header, padding) against the body it carries, nginx's rule per window (limits.ts):
   * many tiny DATA frames cost a frame's work each, and through the proxy an upstream write each.
   */
  dataOverhead(frameBytes: number, bodyBytes: number): void {
    if (!this.overhead.spend(FRAME_HEADER_BYTES + frameBytes - bodyBytes - this.overheadPerBodyByte * bodyBytes)) throw enhanceYourCalm('flood of DATA frames carrying a few bytes each')
  }

  /** WINDOW_UPDATE frames are allowed two per DATA frame we sent, on top of the budget. */
  windowUpdate(dataFramesSent: number): void {
    if (!this.windowUpdates.take(2 * dataFramesSent)) throw enhanceYourCalm('WINDOW_UPDATE flood')
  }
}
