/**
 * Max-Forwards on TRACE and OPTIONS (RFC 9110 §7.6.2): an intermediary that receives one of
 * them with Max-Forwards MUST check and update it before forwarding. At 0 the proxy is the final
 * recipient and answers itself (OPTIONS: 200 with no content, §9.3.7; TRACE: the request as it
 * arrived, as `message/http`, fields likely to hold credentials left out, §9.3.8); above 0 the
 * request goes on with the value less one. Other methods ignore the field (it goes on as it came).
 * Pure: the request path (handler.ts) asks, and answers or forwards what it is given.
 */
import type { HeaderReader, ProxyReply, ProxyRequest } from './message.ts'

/** What to do with a TRACE or OPTIONS request: answer it here, or forward it with these fields. */
export type MaxForwardsStep = { answer: ProxyReply } | { headers: HeaderReader } | undefined

/** The largest Max-Forwards this proxy counts down exactly (§7.6.2 lets a recipient cap it). */
export const MAX_FORWARDS_SUPPORTED = Number.MAX_SAFE_INTEGER

/** Fields a TRACE answer never echoes (§9.3.8: "likely to contain sensitive data"). */
const NOT_ECHOED = new Set(['cookie', 'authorization', 'proxy-authorization'])

/** Undefined for any other method, and for a TRACE or OPTIONS without a valid Max-Forwards. `protocol`: the client's (the access log's). */
export function maxForwardsStep(req: ProxyRequest, requestId: string, protocol: string): MaxForwardsStep {
  const method = req.method
  if (method !== 'OPTIONS' && method !== 'TRACE') return undefined
  const value = req.headers.get('max-forwards')
  // 1*DIGIT (§7.6.2), of any length; anything else is not a count this proxy can update: it goes
  // on as it came (the RFC says nothing of invalid values; nginx and HAProxy pass them on too).
  if (value === null || !/^[0-9]+$/.test(value)) return undefined
  const left = Number(value)
  // "the lesser of the received value decremented by one or the recipient's maximum supported
  // value": past 2^53 - 1 a digit string is not an exact number here, so that is the maximum.
  if (left > MAX_FORWARDS_SUPPORTED) return { headers: replacing(req.headers, String(MAX_FORWARDS_SUPPORTED)) }
  if (left > 0) return { headers: replacing(req.headers, String(left - 1)) }
  return { answer: method === 'TRACE' ? traceAnswer(req, requestId, protocol) : optionsAnswer(requestId) }
}

function optionsAnswer(requestId: string): ProxyReply {
  return { status: 200, statusText: 'OK', headers: [['x-request-id', requestId]], body: '' }
}

/** The request as received, in message/http (an HTTP/2 one as HTTP/2.0: its version there is DIGIT "." DIGIT); names as the parsers give them, lower case. */
function traceAnswer(req: ProxyRequest, requestId: string, protocol: string): ProxyReply {
  let text = `TRACE ${req.target} ${protocol === 'HTTP/2' ? 'HTTP/2.0' : protocol}\r\n`
  req.headers.forEach((value, name) => {
    if (!NOT_ECHOED.has(name)) text += `${name}: ${value}\r\n`
  })
  text += '\r\n'
  return { status: 200, statusText: 'OK', headers: [['content-type', 'message/http'], ['cache-control', 'no-store'], ['x-request-id', requestId]], body: text }
}

/** The request's fields with Max-Forwards set to `value`. */
function replacing(headers: HeaderReader, value: string): HeaderReader {
  return {
    get: (name) => (name === 'max-forwards' ? value : headers.get(name)),
    forEach(fn) {
      headers.forEach((v, name) => fn(name === 'max-forwards' ? value : v, name))
    },
  }
}
