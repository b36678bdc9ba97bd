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
  /**
   * HTTP/2 connections the proxy ended with GOAWAY and an error code (RFC 9113 §5.4.1), by code:
   * a client's protocol error, or ENHANCE_YOUR_CALM for one that made it work without progress
   * (a rapid-reset flood's streams never reach the request path: this is where they show).
   */
  readonly http2Errors: Record<string, number> = { PROTOCOL_ERROR: 0, FLOW_CONTROL_ERROR: 0, FRAME_SIZE_ERROR: 0, COMPRESSION_ERROR: 0, STREAM_CLOSED: 0, SETTINGS_TIMEOUT: 0, ENHANCE_YOUR_CALM: 0, INTERNAL_ERROR: 0 }
  /** When each code was last logged: a flood of one (PROTOCOL_ERROR) does not hide another (ENHANCE_YOUR_CALM). */
  private readonly http2LoggedAtMonoMs = new Map<string, number>()

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

  /** An HTTP/2 connection ended with `code` (a name of RFC 9113 §7): counted, and logged at most once a second per code. */
  http2ConnectionError(code: string, detail: string, ip: string): void {
    this.http2Errors[code] = (this.http2Errors[code] ?? 0) + 1
    const nowMonoMs = monoNow()
    if (nowMonoMs - (this.http2LoggedAtMonoMs.get(code) ?? Number.NEGATIVE_INFINITY) < 1000) return
    this.http2LoggedAtMonoMs.set(code, nowMonoMs)
    this.log?.(code === 'INTERNAL_ERROR' ? 'error' : code === 'ENHANCE_YOUR_CALM' ? 'warn' : 'info', 'HTTP/2 connection ended with an error', { client: ip, code, reason: detail, total: this.http2Errors[code] })
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
