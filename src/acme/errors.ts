/**
 * ACME failures as typed errors: problem documents (RFC 8555 §6.7, RFC 7807) become an
 * AcmeError whose message is a log line an operator can act on; the codes are stable for tests.
 */
import { parseHttpDate } from '../lib/http-date.ts'

export type AcmeErrorCode =
  | 'E_ACME' // the server answered with a problem document or an unexpected reply
  | 'E_ACME_HTTP' // the ACME server could not be reached (DNS, TCP, TLS, timeout)
  | 'E_ACME_TIMEOUT' // an order or authorization did not finish in time
  | 'E_ACME_STATE' // the state directory is unusable

export interface Problem {
  type?: string
  detail?: string
  status?: number
  /** A URL for a human to visit (RFC 7807 §3.1; RFC 8555 §7.3.3 for userActionRequired). */
  instance?: string
  subproblems?: { type?: string; detail?: string; identifier?: { value?: string } }[]
}

const PREFIX = 'urn:ietf:params:acme:error:'

/** What to tell the operator for the problem types an operator can do something about. */
const ADVICE: Record<string, string> = {
  rateLimited: "the CA's rate limit was reached; the proxy retries later. While testing, use the staging directory (see the README)",
  connection: 'the CA could not connect to this host on port 80 for the HTTP-01 challenge; check DNS, firewalls and --acme-http-listen',
  dns: "the CA could not resolve the name; check the domain's DNS records",
  unauthorized: 'the CA did not get the expected challenge answer; check that the name points at this host and port 80 reaches --acme-http-listen',
  incorrectResponse: 'the CA got a wrong challenge answer; another server may be answering port 80 for this name',
  rejectedIdentifier: 'the CA will not issue for this name; check --acme domains',
  caa: 'a CAA record forbids this CA for the name',
  externalAccountRequired: 'this CA needs external account binding, which the proxy does not support',
  userActionRequired: 'the CA needs you to act, for example to agree to new terms of service: the page it names says how; the proxy retries with back-off meanwhile',
  badNonce: 'the CA kept rejecting nonces',
}

/**
 * Advice for a problem the CA gave a signed request rather than a challenge: `unauthorized` there
 * is about the account (pebble and Boulder say so for a deactivated one; RFC 8555 §7.3.6: it can
 * never be used again), not about port 80.
 */
const REQUEST_ADVICE: Record<string, (accountKeyFile: string) => string> = {
  unauthorized: (file) => `the CA refused this ACME account; if it was deactivated or revoked, it cannot be used again (RFC 8555 §7.3.6): remove ${file} and the proxy registers a new account on its next try`,
}

export interface ProblemContext {
  retryAfterMs?: number
  /** The reply's Link rel="terms-of-service" (RFC 8555 §7.3.3), when it had one. */
  termsOfService?: string
  /** Set when the problem answered a signed request (client.ts): where the account key is, for the advice. */
  accountKeyFile?: string
}

export class AcmeError extends Error {
  readonly code: AcmeErrorCode
  /** The problem type without the ACME URN prefix ("rateLimited"), when there was one. */
  readonly problemType: string | undefined
  readonly httpStatus: number | undefined
  /** From Retry-After, when the server sent one. */
  readonly retryAfterMs: number | undefined

  constructor(code: AcmeErrorCode, message: string, extra: { problemType?: string; httpStatus?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, { cause: extra.cause })
    this.name = 'AcmeError'
    this.code = code
    this.problemType = extra.problemType
    this.httpStatus = extra.httpStatus
    this.retryAfterMs = extra.retryAfterMs
  }
}

/** Builds the error for a problem document; `what` names the request ("new order for a.test"). */
export function problemError(what: string, problem: Problem, httpStatus: number, ctx: ProblemContext = {}): AcmeError {
  const { retryAfterMs, termsOfService, accountKeyFile } = ctx
  const type = problem.type?.startsWith(PREFIX) ? problem.type.slice(PREFIX.length) : problem.type
  let msg = `${what}: ACME server said ${httpStatus}${type ? ` ${type}` : ''}${problem.detail ? `: ${problem.detail}` : ''}`
  for (const sub of problem.subproblems ?? []) {
    const subType = sub.type?.startsWith(PREFIX) ? sub.type.slice(PREFIX.length) : sub.type
    msg += `; ${sub.identifier?.value ?? '?'}: ${subType ?? ''} ${sub.detail ?? ''}`.trimEnd()
  }
  // Where a human must go (the page to agree to new terms): the operator cannot act without it.
  if (typeof problem.instance === 'string' && problem.instance !== '') msg += `; visit ${problem.instance.slice(0, 200)}`
  if (termsOfService) msg += `; terms of service: ${termsOfService.slice(0, 200)}`
  const advice = type === undefined ? undefined : accountKeyFile !== undefined && REQUEST_ADVICE[type] ? REQUEST_ADVICE[type](accountKeyFile) : ADVICE[type]
  if (advice) msg += ` (${advice})`
  if (retryAfterMs !== undefined) msg += `; retry after ${Math.ceil(retryAfterMs / 1000)} s`
  return new AcmeError('E_ACME', msg, { problemType: type, httpStatus, retryAfterMs })
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  // An HTTP-date, UTC in all three forms (Date.parse took asctime's, which has no zone, as local time).
  const at = parseHttpDate(v)
  return at === undefined ? undefined : Math.max(0, at - nowMs)
}

/** The target of a Link header's rel="terms-of-service" (RFC 8288, RFC 8555 §7.3.3), if any. */
export function termsOfServiceLink(link: string | null): string | undefined {
  for (const part of (link ?? '').split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part)
    if (m && /;\s*rel\s*=\s*"?([^";]*\s)?terms-of-service[\s";]/i.test(`${m[2]};`)) return m[1]
  }
  return undefined
}
