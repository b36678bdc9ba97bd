/**
 * One request's access record: what the access log writes and the metrics count. The request
 * path fills it (handler.ts), as do the upgrade tunnel and the listener's own refusals; field
 * names follow nginx's upstream variables where one exists.
 */

export interface RequestRecord {
  ts: string
  request_id: string
  client: string
  method: string
  host: string
  path: string
  /** HTTP/1.0, HTTP/1.1 or HTTP/2: how the client spoke to the proxy (the upstream is HTTP/1.1). */
  protocol: string
  status: number
  bytes_in: number
  bytes_out: number
  duration_ms: number
  upstream: string
  upstream_addr?: string
  upstream_status?: number
  upstream_connect_ms?: number
  upstream_header_ms?: number
  upstream_reused?: boolean
  retries: number
  /** A failure code of proxy/errors.ts. */
  error?: string
  /** An upstream failure in words (the parser's reason for a BAD_RESPONSE, the connect error, DNS's answer). */
  error_detail?: string
  /** How the edge cache answered: hit, stale, revalidated, collapsed, miss, bypass, refresh. */
  cache?: string
}

/** Milliseconds rounded to microseconds, as the log writes them. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
