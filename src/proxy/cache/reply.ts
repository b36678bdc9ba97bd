/**
 * Answers made from stored responses: the Age the cache computed (RFC 9111 §4.2.3, §5.1), a
 * Content-Length for the stored body, the Cache-Status entry (RFC 9211), a 304 when the
 * client's own conditional request matches (§4.3.2), and a 206 when it asks for one byte range
 * of a whole stored 200 (range.ts). Pure, apart from reading the entry.
 */
import type { HeaderReader, ProxyReply } from '../message.ts'
import { contentRange, requestedRange } from './range.ts'
import { clientNotModified, notModifiedHeaders } from './revalidate.ts'
import type { Headers_ } from './policy.ts'
import { StoredReply } from './stored-reply.ts'

/** The cache's name in Cache-Status (RFC 9211 §2). */
export const CACHE_NAME = 'proxy'

/** Our entry of Cache-Status, e.g. `proxy; hit; ttl=57` or `proxy; fwd=uri-miss; stored`. */
export interface CacheStatus {
  hit?: boolean
  /** Why the request went forward; absent when it did not. */
  fwd?: 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale'
  fwdStatus?: number
  ttlS?: number
  stored?: boolean
  collapsed?: boolean
  detail?: string
}

export function formatCacheStatus(s: CacheStatus): string {
  let out = CACHE_NAME
  if (s.hit) out += '; hit'
  if (s.fwd) out += `; fwd=${s.fwd}`
  if (s.fwdStatus !== undefined) out += `; fwd-status=${s.fwdStatus}`
  if (s.ttlS !== undefined) out += `; ttl=${s.ttlS}`
  if (s.stored) out += '; stored'
  if (s.collapsed) out += '; collapsed'
  if (s.detail) out += `; detail=${s.detail}`
  return out
}

/** hitStatus's last answer, for its ttl. */
const lastHit = { ttlS: NaN, text: '' }

/** Our entry for a fresh hit with `ttlS` seconds of freshness left; hits in a row with the same ttl share one string. */
export function hitStatus(ttlS: number): string {
  if (ttlS !== lastHit.ttlS) {
    lastHit.text = formatCacheStatus({ hit: true, ttlS })
    lastHit.ttlS = ttlS
  }
  return lastHit.text
}

/**
 * Headers with our Cache-Status entry (or its text) appended to any the upstream sent: the list
 * reads from the origin towards the client (RFC 9211 §2), so ours comes last.
 */
export function withCacheStatus(headers: Headers_, status: CacheStatus | string): [string, string][] {
  const out: [string, string][] = []
  let prior: string | undefined
  for (const pair of headers) {
    if (pair[0].length === 12 && pair[0].toLowerCase() === 'cache-status') prior = prior === undefined ? pair[1] : `${prior}, ${pair[1]}`
    else out.push(pair as [string, string])
  }
  const ours = typeof status === 'string' ? status : formatCacheStatus(status)
  out.push(['cache-status', prior === undefined ? ours : `${prior}, ${ours}`])
  return out
}

/** What a reply from a stored (or shared in-flight) response is made of: a stored entry (store.ts CacheEntry) is one. */
export interface StoredAnswer {
  status: number
  statusText: string
  headers: Headers_
  /** The whole body, or a stream of it while it still arrives. */
  body: Uint8Array | ReadableStream<Uint8Array> | (() => ReadableStream<Uint8Array>)
}

/**
 * The reply for a request answered from a stored response `a` (its body `bodyLength` bytes long
 * when known, `ageMs` old): Age replaced by ours, the body's length, our request id and
 * Cache-Status; no body for HEAD; a 304 when the client's conditions say it already has this
 * response; a 206 for one satisfiable byte range of a GET.
 */
export function answerFromStore(req: { method: string; headers: HeaderReader }, a: StoredAnswer, bodyLength: number | undefined, ageMs: number, requestId: string, status: CacheStatus | string): ProxyReply {
  const ageS = String(Math.floor(ageMs / 1000))
  const ours = typeof status === 'string' ? status : formatCacheStatus(status)
  if ((req.method === 'GET' || req.method === 'HEAD') && a.status === 200 && clientNotModified(req.headers, a.headers)) {
    const headers = notModifiedHeaders(a.headers)
    headers.push(['age', ageS], ['x-request-id', requestId])
    return { status: 304, statusText: 'Not Modified', headers: withCacheStatus(headers, ours), body: null }
  }
  // A single byte range of a whole stored 200 (RFC 9110 §14): a 206 with that part of the body.
  const range = a.status === 200 && a.body instanceof Uint8Array ? requestedRange(req, a.headers, a.body.byteLength) : undefined
  if (range !== undefined && a.body instanceof Uint8Array) {
    const part = a.body.subarray(range.first, range.last + 1)
    const reply = new StoredReply(206, 'Partial Content', a.headers, ageS, part.byteLength, requestId, ours, part)
    reply.headers = [...reply.headers.filter(([n]) => n.toLowerCase() !== 'content-range'), ['content-range', contentRange(range)]]
    return reply
  }
  let body: ProxyReply['body'] = null
  if (req.method !== 'HEAD') body = typeof a.body === 'function' ? a.body() : a.body
  return new StoredReply(a.status, a.statusText, a.headers, ageS, bodyLength, requestId, ours, body)
}

/** The cache's own answer when only-if-cached finds nothing usable (RFC 9111 §5.2.1.7). */
export function onlyIfCachedReply(requestId: string): ProxyReply {
  const headers: [string, string][] = [['content-type', 'text/plain; charset=utf-8'], ['cache-control', 'no-store'], ['x-request-id', requestId]]
  return { status: 504, statusText: 'Gateway Timeout', headers: withCacheStatus(headers, { detail: 'only-if-cached' }), body: `504 not in cache and the request said only-if-cached (request id ${requestId})\n` }
}

/** Cancels a body the cache will not pass on, so the upstream exchange ends. */
export function discardBody(body: ProxyReply['body']): void {
  if (body instanceof ReadableStream) body.cancel().catch(() => {})
}
