/** The failure vocabulary: every code's status, refusal label and close flag, and the answer the proxy makes itself. */
import { describe, expect, test } from 'bun:test'
import { ALLOWED_METHODS, FAILURE_CODES, failureHeaders, failureReply, isAddressFailure, RequestFailure, statusFor, type FailureCode, type RefusalReason } from '../../src/proxy/errors.ts'

/** Written out by hand (RFC 9110 §15): a code added to errors.ts without a row here fails the first test. */
const EXPECTED: [FailureCode, number, RefusalReason | undefined, boolean][] = [
  ['CONNECT_REFUSED', 502, undefined, false],
  ['CONNECT_FAILED', 502, undefined, false],
  ['TLS_FAILED', 502, undefined, false],
  ['UPSTREAM_LOOP', 502, undefined, false], // the address is the proxy's own listener: an address failure (another address is tried)
  ['RESET_BEFORE_RESPONSE', 502, undefined, false],
  ['BAD_RESPONSE', 502, undefined, false],
  ['RESET_MID_BODY', 502, undefined, false],
  ['IDLE_TIMEOUT', 502, undefined, false],
  ['CONNECT_TIMEOUT', 504, undefined, false],
  ['HEADER_TIMEOUT', 504, undefined, false],
  ['POOL_TIMEOUT', 503, undefined, false],
  ['NO_ADDRESS', 503, undefined, false],
  ['NOT_RESOLVED', 503, undefined, false],
  ['NO_FILE_DESCRIPTORS', 503, undefined, true], // the proxy's own overload: not counted against the address; the client's connection closes, giving its descriptor back
  ['BAD_REQUEST', 400, 'malformed', true],
  ['BAD_BODY', 400, 'malformed', true],
  ['URI_TOO_LONG', 414, 'malformed', true],
  ['HEAD_TOO_LARGE', 431, 'malformed', true],
  ['METHOD_NOT_ALLOWED', 405, 'malformed', true],
  ['NOT_IMPLEMENTED', 501, 'malformed', true],
  ['VERSION_NOT_SUPPORTED', 505, 'malformed', true],
  ['BODY_TOO_LARGE', 413, undefined, false],
  ['CLIENT_HEADER_TIMEOUT', 408, 'header_timeout', true],
  ['CLIENT_BODY_TIMEOUT', 408, 'body_timeout', true],
  ['CLIENT_GONE', 499, undefined, false],
  ['CLIENT_SEND_TIMEOUT', 408, undefined, false],
  ['TOO_MANY_CONNECTIONS', 503, 'connections', true],
  ['OVERLOADED', 503, 'overload', true],
  ['SHUTTING_DOWN', 503, 'shutting_down', true],
  ['DRAIN_TIMEOUT', 503, undefined, false],
  ['INTERNAL', 500, undefined, false],
]

const ADDRESS_FAILURES = new Set<FailureCode>(['CONNECT_REFUSED', 'CONNECT_TIMEOUT', 'CONNECT_FAILED', 'TLS_FAILED', 'UPSTREAM_LOOP'])

/** Header names lower-cased into a map (each name appears once in these answers). */
function headerMap(headers: [string, string][]): Map<string, string> {
  const m = new Map<string, string>()
  for (const [name, value] of headers) {
    expect(m.has(name.toLowerCase())).toBe(false)
    m.set(name.toLowerCase(), value)
  }
  return m
}

describe('statusFor', () => {
  test('the table here covers exactly FAILURE_CODES', () => {
    expect(EXPECTED.map((r) => r[0]).sort()).toEqual([...FAILURE_CODES].sort())
    expect(new Set(FAILURE_CODES).size).toBe(FAILURE_CODES.length)
  })

  test.each(EXPECTED)('%s -> %d (refusal %p, close %p)', (code, status, refusal, close) => {
    const s = statusFor(code)
    expect(s.status).toBe(status)
    expect(s.refusal).toBe(refusal)
    expect(s.close ?? false).toBe(close)
    expect(s.reason.length).toBeGreaterThan(0)
  })

  test.each(EXPECTED.map((r) => r[0]))('%s: counts against the address only for connect failures', (code) => {
    expect(isAddressFailure(code)).toBe(ADDRESS_FAILURES.has(code))
    expect(new RequestFailure(code, 'connect', 'x').isAddressFailure).toBe(ADDRESS_FAILURES.has(code))
  })
})

describe('failureHeaders', () => {
  test.each(EXPECTED)('%s', (code, status, _refusal, close) => {
    const h = headerMap(failureHeaders(code, 'rid-42'))
    expect(h.get('x-request-id')).toBe('rid-42')
    expect(h.get('cache-control')).toBe('no-store')
    expect(h.get('content-type')).toStartWith('text/plain')
    // RFC 9110 §15.6.4 (503 may say when to come back), §15.5.6 (405 must list Allow).
    expect(h.get('retry-after')).toBe(status === 503 ? '1' : undefined)
    expect(h.get('allow')).toBe(status === 405 ? ALLOWED_METHODS : undefined)
    expect(h.get('connection')).toBe(close ? 'close' : undefined)
  })

  test('Allow lists the methods the proxy forwards', () => {
    const methods = ALLOWED_METHODS.split(',').map((m) => m.trim())
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']) expect(methods).toContain(m)
  })
})

describe('failureReply', () => {
  test.each(EXPECTED)('%s: status and a body naming status, reason and request id', (code, status) => {
    const r = failureReply(code, 'rid-7')
    expect(r.status).toBe(status)
    expect(r.headers).toEqual(failureHeaders(code, 'rid-7'))
    expect(typeof r.body).toBe('string')
    const body = r.body as string
    expect(body).toStartWith(`${status} `)
    expect(body).toContain(statusFor(code).reason)
    expect(body).toContain('rid-7')
    expect(body).toEndWith('\n')
  })

  test('a detail replaces the reason in the body, not the status', () => {
    const r = failureReply('NO_ADDRESS', 'rid-8', 'every address of origin.test is ejected')
    expect(r.status).toBe(503)
    const body = r.body as string
    expect(body).toContain('every address of origin.test is ejected')
    expect(body).not.toContain(statusFor('NO_ADDRESS').reason)
    expect(body).toContain('rid-8')
  })
})
