/**
 * Request metrics as plain counters and fixed-bucket histograms, fed once per request from the
 * access record, and rendered in the Prometheus text format (version 0.0.4). Gauges that live
 * elsewhere (pool, resolver) are read at scrape time by admin.ts.
 */
import type { RequestRecord } from './record.ts'

/** Latency buckets in seconds, from 1 ms to 60 s. */
const BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export class Histogram {
  readonly counts = new Array<number>(BUCKETS_S.length).fill(0)
  count = 0
  sumS = 0
  observeMs(ms: number): void {
    const s = ms / 1000
    this.count++
    this.sumS += s
    for (let i = 0; i < BUCKETS_S.length; i++) {
      if (s <= BUCKETS_S[i]!) {
        this.counts[i]!++
        break
      }
    }
  }
  render(name: string, labels: string, out: string[]): void {
    let cumulative = 0
    const sep = labels ? `${labels},` : ''
    for (let i = 0; i < BUCKETS_S.length; i++) {
      cumulative += this.counts[i]!
      out.push(`${name}_bucket{${sep}le="${BUCKETS_S[i]}"} ${cumulative}`)
    }
    out.push(`${name}_bucket{${sep}le="+Inf"} ${this.count}`)
    out.push(`${name}_sum${labels ? `{${labels}}` : ''} ${this.sumS}`)
    out.push(`${name}_count${labels ? `{${labels}}` : ''} ${this.count}`)
  }
}

/** Status classes as counted: 1xx to 5xx, then anything else. */
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other']

interface UpstreamMetrics {
  /** Requests per status class, indexed as CLASSES (no label string made per request). */
  requestsByClass: number[]
  connect: Histogram
  header: Histogram
  total: Histogram
  bytesIn: number
  bytesOut: number
  retries: number
  errors: Map<string, number>
}

export class RequestMetrics {
  readonly upstreams = new Map<string, UpstreamMetrics>()

  observe(r: RequestRecord): void {
    let m = this.upstreams.get(r.upstream)
    if (!m) {
      m = { requestsByClass: CLASSES.map(() => 0), connect: new Histogram(), header: new Histogram(), total: new Histogram(), bytesIn: 0, bytesOut: 0, retries: 0, errors: new Map() }
      this.upstreams.set(r.upstream, m)
    }
    m.requestsByClass[r.status >= 100 && r.status < 600 ? Math.floor(r.status / 100) - 1 : 5]!++
    if (r.upstream_connect_ms !== undefined) m.connect.observeMs(r.upstream_connect_ms)
    if (r.upstream_header_ms !== undefined) m.header.observeMs(r.upstream_header_ms)
    // A tunnel's record (101) lasts as long as the tunnel, minutes or hours: not a request's latency (proxy_open_tunnels counts them).
    if (r.status !== 101) m.total.observeMs(r.duration_ms)
    m.bytesIn += r.bytes_in
    m.bytesOut += r.bytes_out
    m.retries += r.retries
    if (r.error) m.errors.set(r.error, (m.errors.get(r.error) ?? 0) + 1)
  }

  /**
   * A reload's config names these upstreams: the series of any other go (an upstream renamed or
   * removed; a config generator that names upstreams per deploy grew /metrics by about 58 series
   * each, for good, in an outside leak hunt). A request of a removed upstream still in flight
   * brings its series back until the next reload.
   */
  retain(names: Iterable<string>): void {
    const keep = new Set(names)
    for (const name of [...this.upstreams.keys()]) if (!keep.has(name)) this.upstreams.delete(name)
  }

  render(out: string[]): void {
    const each = (help: string, name: string, type: string, fn: (u: string, m: UpstreamMetrics) => void) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
      for (const [u, m] of this.upstreams) fn(u, m)
    }
    each('Requests by status class.', 'proxy_requests_total', 'counter', (u, m) => {
      m.requestsByClass.forEach((n, i) => n > 0 && out.push(`proxy_requests_total{upstream="${esc(u)}",class="${CLASSES[i]}"} ${n}`))
    })
    each('Failed requests by error code.', 'proxy_request_errors_total', 'counter', (u, m) => {
      for (const [code, n] of m.errors) out.push(`proxy_request_errors_total{upstream="${esc(u)}",code="${code}"} ${n}`)
    })
    each('Retries on another address.', 'proxy_retries_total', 'counter', (u, m) => out.push(`proxy_retries_total{upstream="${esc(u)}"} ${m.retries}`))
    each('Request body bytes received from clients.', 'proxy_bytes_in_total', 'counter', (u, m) => out.push(`proxy_bytes_in_total{upstream="${esc(u)}"} ${m.bytesIn}`))
    each('Response body bytes sent to clients.', 'proxy_bytes_out_total', 'counter', (u, m) => out.push(`proxy_bytes_out_total{upstream="${esc(u)}"} ${m.bytesOut}`))
    each('Time to open a new upstream connection (TCP and TLS).', 'proxy_upstream_connect_seconds', 'histogram', (u, m) => m.connect.render('proxy_upstream_connect_seconds', `upstream="${esc(u)}"`, out))
    each('Time from sending the request to the first response byte.', 'proxy_upstream_header_seconds', 'histogram', (u, m) => m.header.render('proxy_upstream_header_seconds', `upstream="${esc(u)}"`, out))
    each('Whole request time as the client saw it (not upgrade tunnels: status 101).', 'proxy_request_duration_seconds', 'histogram', (u, m) => m.total.render('proxy_request_duration_seconds', `upstream="${esc(u)}"`, out))
  }
}

/** Escapes a Prometheus label value. */
export function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}
