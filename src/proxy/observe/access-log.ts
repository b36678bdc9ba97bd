/**
 * The access log: one line per request, JSON lines or readable text, to stdout, stderr, a file,
 * or nowhere. Writes are fire-and-forget and never block or fail the request path; a file that
 * cannot be written is reported once per episode and traffic continues.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import type { ResolvedLog } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { DropReport } from './log-drops.ts'
import type { RequestRecord } from './record.ts'

export interface AccessLog {
  write(record: RequestRecord): void
  /** Lines dropped because the destination failed. */
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

export function createAccessLog(cfg: ResolvedLog, log: LogFn, stdout: (s: string) => void = (s) => void process.stdout.write(s)): AccessLog {
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
  return new FileAccessLog(cfg.accessLog, cfg.format, log)
}

/** Bytes buffered in memory for a slow or failing log file before lines are dropped. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024

class FileAccessLog implements AccessLog {
  private stream: WriteStream | undefined
  private failing = false
  private pendingBytes = 0
  private readonly report: DropReport

  constructor(
    private readonly path: string,
    private readonly format: 'json' | 'text',
    log: LogFn,
  ) {
    this.report = new DropReport({ dropped: 0 }, log, { path })
    this.open()
  }

  get dropped(): number {
    return this.report.dropped
  }

  private open(): void {
    const stream = createWriteStream(this.path, { flags: 'a' })
    stream.on('error', (err) => {
      // Once per outage; it ends when a line is written, not when the file opens.
      this.report.drop(0, 'access log cannot be written; requests continue, lines are dropped', err.message)
      this.failing = true
      this.stream = undefined
      // Try again later: the disk may come back (a rotated or remounted path).
      setTimeout(() => {
        if (this.failing) this.open()
      }, 5000).unref?.()
    })
    stream.on('open', () => {
      this.failing = false
    })
    this.stream = stream
  }

  write(record: RequestRecord): void {
    const s = this.stream
    if (!s || this.failing || this.pendingBytes > MAX_PENDING_BYTES) {
      this.report.drop(1, 'access log cannot be written; requests continue, lines are dropped', this.failing ? 'not open' : 'too many bytes waiting')
      return
    }
    const line = formatRecord(record, this.format)
    this.pendingBytes += line.length
    s.write(line, (err) => {
      this.pendingBytes -= line.length
      if (err) this.report.drop(1, 'access log cannot be written; requests continue, lines are dropped', err.message)
      else this.report.recovered()
    })
  }

  close(): Promise<void> {
    const s = this.stream
    this.stream = undefined
    this.failing = false
    this.report.close()
    return new Promise((resolve) => (s ? s.end(() => resolve()) : resolve()))
  }
}
