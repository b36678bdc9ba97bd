/**
 * Admission: whether the proxy takes a request at all (not during a drain; not beyond
 * max_concurrent_requests), and the count of every request it answered itself, by reason, for
 * proxy_client_requests_refused_total. A flood of refusals writes at most one log line a second
 * (timed on the monotonic clock: a wall clock stepped back does not silence it for the step).
 */
import { monoNow } from '../../lib/clock.ts'
import type { LogFn } from '../../lib/logger.ts'
import { statusFor, type FailureCode, type RefusalReason } from '../errors.ts'

export class Admission {
  /** Set when a drain starts: every new request is refused (503, connection closed). */
  stopping = false
  /** Set when drain_timeout ran out: what is cut now is logged DRAIN_TIMEOUT, not as a client leaving. */
  cutting = false
  readonly refused: Record<RefusalReason, number> = { malformed: 0, overload: 0, shutting_down: 0, connections: 0, header_timeout: 0, body_timeout: 0 }
  private loggedAtMonoMs = Number.NEGATIVE_INFINITY

  constructor(
    private readonly limits: { maxConcurrentRequests(): number; pendingRequests(): number },
    private readonly log?: LogFn,
  ) {}

  /** A failure code when the request must be refused, else undefined. Counts what it refuses. */
  admit(ip: string): FailureCode | undefined {
    if (this.stopping) {
      this.count('SHUTTING_DOWN', 'proxy is shutting down', ip)
      return 'SHUTTING_DOWN'
    }
    const max = this.limits.maxConcurrentRequests()
    // pendingRequests counts this request too, and every response still streaming.
    if (max > 0 && this.limits.pendingRequests() > max) {
      this.count('OVERLOADED', `max_concurrent_requests=${max} reached`, ip)
      return 'OVERLOADED'
    }
    return undefined
  }

  /**
   * Counts a request the proxy answered itself (codes with a refusal label), and logs it; with
   * `answered` false, a connection closed with no answer (nothing whole came in time: a FIN, or
   * HTTP/2's GOAWAY), logged without a status.
   */
  count(code: FailureCode, detail: string, ip: string, answered = true): void {
    const s = statusFor(code)
    const reason = s.refusal
    if (!reason) return
    this.refused[reason]++
    const nowMonoMs = monoNow()
    if (nowMonoMs - this.loggedAtMonoMs < 1000) return
    this.loggedAtMonoMs = nowMonoMs
    this.log?.(reason === 'malformed' ? 'info' : 'warn', answered ? 'request refused' : 'connection closed without an answer', { client: ip, ...(answered ? { status: s.status } : {}), reason: detail, refused_reason: reason, refused_total: this.refused[reason] })
  }
}
