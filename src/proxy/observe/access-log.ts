/**
 * The access log: one line per request, JSON lines or readable text, to stdout, stderr, a file,
 * or nowhere. Writes are fire-and-forget and never block or fail the request path; a file that
 * cannot be written is reported once per episode and traffic continues.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import type { ResolvedLog } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
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
  dropped = 0
  private stream: WriteStream | undefined
  private failing = false
  private pendingBytes = 0

  constructor(
    private readonly path: string,
    private readonly format: 'json' | 'text',
    private readonly log: LogFn,
  ) {
    this.open()
  }

  private open(): void {
    const stream = createWriteStream(this.path, { flags: 'a' })
    stream.on('error', (err) => {
      if (!this.failing) this.log('error', 'access log cannot be written; requests continue, lines are dropped', { path: this.path, error: err.message })
      this.failing = true
      this.stream = undefined
      // Try again later: the disk may come back (a rotated or remounted path).
      setTimeout(() => {
        if (this.failing) this.open()
      }, 5000).unref?.()
    })
    stream.on('open', () => {
      if (this.failing) this.log('info', 'access log writable again', { path: this.path, dropped: this.dropped })
      this.failing = false
    })
    this.stream = stream
  }

  write(record: RequestRecord): void {
    const s = this.stream
    if (!s || this.failing || this.pendingBytes > MAX_PENDING_BYTES) {
      this.dropped++
      return
    }
    const line = formatRecord(record, this.format)
    this.pendingBytes += line.length
    s.write(line, () => {
      this.pendingBytes -= line.length
    })
  }

  close(): Promise<void> {
    const s = this.stream
    this.stream = undefined
    this.failing = false
    return new Promise((resolve) => (s ? s.end(() => resolve()) : resolve()))
  }
}
