/**
 * The access log: one line per request, JSON lines or readable text, to stdout, stderr, a file,
 * or nowhere. Writes never fail the request path. A file's lines are gathered per event-loop turn
 * and written with one synchronous write (log-writer.ts), as nginx does; a file that cannot be
 * written drops its lines, counted (proxy_access_log_dropped_total) and reported once per outage
 * (log-drops.ts), and traffic continues.
 */
import type { ResolvedLog } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { DropReport, type AccessLogStats } from './log-drops.ts'
import { FileLineWriter } from './log-writer.ts'
import type { RequestRecord } from './record.ts'

export interface AccessLog {
  write(record: RequestRecord): void
  /** Lines this log dropped: its destination failed or could not keep up. */
  readonly dropped: number
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

/** `stats` counts dropped lines over every access log the process has (a reload makes a new one). */
export function createAccessLog(cfg: ResolvedLog, log: LogFn, stdout: (s: string) => void = (s) => void process.stdout.write(s), stats: AccessLogStats = { dropped: 0 }): AccessLog {
  if (cfg.accessLog === 'off') return { write() {}, dropped: 0, close: async () => {} }
  if (cfg.accessLog === 'stdout' || cfg.accessLog === 'stderr') {
    const out = cfg.accessLog === 'stdout' ? stdout : (s: string) => void process.stderr.write(s)
    return {
      write: (r) => {
        try {
          out(formatRecord(r, cfg.format))
        } catch {
          // a closed stdout must not break requests
        }
      },
      dropped: 0,
      close: async () => {},
    }
  }
  return new FileAccessLog(cfg.accessLog, cfg.format, log, stats)
}

/** An access log to a file: lines batched per event-loop turn, one synchronous write each (log-writer.ts). */
class FileAccessLog implements AccessLog {
  private readonly report: DropReport
  private readonly writer: FileLineWriter

  constructor(
    path: string,
    private readonly format: 'json' | 'text',
    log: LogFn,
    stats: AccessLogStats,
  ) {
    this.report = new DropReport(stats, log, { path })
    this.writer = new FileLineWriter(path, this.report)
  }

  get dropped(): number {
    return this.report.dropped
  }

  write(record: RequestRecord): void {
    // A failing file costs a count per request, not a formatted line.
    if (this.writer.accepting) this.writer.add(formatRecord(record, this.format))
    else this.writer.skip()
  }

  async close(): Promise<void> {
    this.writer.close()
  }
}
