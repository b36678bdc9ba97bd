/**
 * The access log: one line per request, JSON lines or readable text, to stdout, stderr, a file,
 * or nowhere. Writes never fail the request path. Lines are gathered per event-loop turn
 * (log-writer.ts): a file gets one synchronous write each, as nginx does; stdout and stderr get
 * at most 8 MiB waiting for a slow reader. Lines that cannot be written are dropped, counted
 * (proxy_access_log_dropped_total) and reported once per outage (log-drops.ts); traffic
 * continues.
 */
import type { ResolvedLog } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { DropReport, type AccessLogStats } from './log-drops.ts'
import { FileLineWriter, StreamLineWriter, type LineStream } from './log-writer.ts'
import type { RequestRecord } from './record.ts'

export interface AccessLog {
  write(record: RequestRecord): void
  /** Lines this log dropped: its destination failed or could not keep up. */
  readonly dropped: number
  /** Opens a file log's path anew, after a rotation moved the file away (a stream's: a no-op). */
  reopen(): void
  close(): Promise<void>
}

export function formatRecord(record: RequestRecord, format: 'json' | 'text'): string {
  if (format === 'json') return `${JSON.stringify(record)}\n`
  const r = record
  const up = r.upstream_addr ? ` upstream=${r.upstream_addr}${r.upstream_reused ? ' reused' : r.upstream_connect_ms !== undefined ? ` connect=${r.upstream_connect_ms}ms` : ''}` : ''
  const header = r.upstream_header_ms !== undefined ? ` header=${r.upstream_header_ms}ms` : ''
  const err = r.error ? ` error=${r.error}` : ''
  const retries = r.retries > 0 ? ` retries=${r.retries}` : ''
  const cache = r.cache ? ` cache=${r.cache}` : ''
  return `${r.ts} ${r.client} "${r.method} ${r.host}${r.path}" ${r.status} in=${r.bytes_in} out=${r.bytes_out} ${r.duration_ms}ms${up}${header}${retries}${cache}${err} id=${r.request_id}\n`
}

export type { AccessLogStats } from './log-drops.ts'

/** The dropped-lines counter in the Prometheus text format (a counter, summed over workers). */
export function renderAccessLogMetrics(stats: AccessLogStats, out: string[]): void {
  out.push('# HELP proxy_access_log_dropped_total Access log lines not written (destination failing or too slow).', '# TYPE proxy_access_log_dropped_total counter')
  out.push(`proxy_access_log_dropped_total ${stats.dropped}`)
}

export interface AccessLogOptions {
  /** Counts dropped lines over every access log of the process (a reload makes a new one). */
  stats?: AccessLogStats
  /** Where "stdout" and "stderr" lines go; process.stdout and process.stderr by default. */
  stdout?: LineStream
  stderr?: LineStream
}

/**
 * stdout and stderr are written as streams, not through CliIo: the log must learn when a write
 * is done, to bound what waits for a slow reader.
 */
export function createAccessLog(cfg: ResolvedLog, log: LogFn, opts: AccessLogOptions = {}): AccessLog {
  if (cfg.accessLog === 'off') return { write() {}, dropped: 0, reopen() {}, close: async () => {} }
  const stats = opts.stats ?? { dropped: 0 }
  if (cfg.accessLog === 'stdout' || cfg.accessLog === 'stderr') {
    const stream = cfg.accessLog === 'stdout' ? (opts.stdout ?? process.stdout) : (opts.stderr ?? process.stderr)
    const report = new DropReport(stats, log, { stream: cfg.accessLog })
    return new BatchedAccessLog(new StreamLineWriter(stream, report), report, cfg.format, log)
  }
  const report = new DropReport(stats, log, { path: cfg.accessLog })
  return new BatchedAccessLog(new FileLineWriter(cfg.accessLog, report), report, cfg.format, log)
}

/** Lines batched per event-loop turn by a writer (log-writer.ts): a file's, or a stream's. */
class BatchedAccessLog implements AccessLog {
  constructor(
    private readonly writer: FileLineWriter | StreamLineWriter,
    private readonly report: DropReport,
    private readonly format: 'json' | 'text',
    private readonly log: LogFn,
  ) {}

  get dropped(): number {
    return this.report.dropped
  }

  write(record: RequestRecord): void {
    // A failing destination costs a count per request, not a formatted line.
    if (this.writer.accepting) this.writer.add(formatRecord(record, this.format))
    else this.writer.skip()
  }

  reopen(): void {
    if (!(this.writer instanceof FileLineWriter)) return
    this.writer.reopen()
    this.log('info', 'access log reopened', { path: this.writer.path })
  }

  close(): Promise<void> {
    return Promise.resolve(this.writer.close())
  }
}
