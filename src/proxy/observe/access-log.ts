/**
 * The access log: one line per request, JSON lines or readable text, to stdout, stderr, a file,
 * or nowhere. Writes never fail the request path. Lines are gathered per event-loop turn
 * (log-writer.ts): a file gets one synchronous write each, as nginx does; stdout, stderr and a
 * FIFO path get at most 8 MiB waiting for a slow reader. Lines that cannot be written are
 * dropped, counted (proxy_access_log_dropped_total) and reported once per outage (log-drops.ts);
 * traffic continues. reopen() follows a rotation (serve.ts calls it on SIGUSR1 and SIGHUP).
 */
import { createWriteStream, statSync } from 'node:fs'
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

/**
 * One line of the log. JSON escapes what it must (`"`, `\`, controls, lone surrogates), and DEL
 * and the C1 controls too (\u00XX, so a terminal never acts on them). The text format quotes the
 * request; what a client chose there (method, Host, target) has `"`, `\`, control bytes and
 * bytes beyond printable ASCII written as \xHH, as nginx's log does, so a field never ends early
 * or spans lines. The check is a regular-expression test per text field, or per JSON line; only
 * a line that needs it is rewritten.
 */
export function formatRecord(record: RequestRecord, format: 'json' | 'text'): string {
  if (format === 'json') {
    const json = JSON.stringify(record)
    return `${C1.test(json) ? json.replace(C1_ALL, unicodeEscape) : json}\n`
  }
  const r = record
  // Tested on the fields as they are (flat strings from the parser), not on a joined one.
  const plain = !NEEDS_ESCAPE.test(r.path) && !NEEDS_ESCAPE.test(r.host) && !NEEDS_ESCAPE.test(r.method)
  const request = plain ? `${r.method} ${r.host}${r.path}` : escapeBytes(`${r.method} ${r.host}${r.path}`)
  const up = r.upstream_addr ? ` upstream=${r.upstream_addr}${r.upstream_reused ? ' reused' : r.upstream_connect_ms !== undefined ? ` connect=${r.upstream_connect_ms}ms` : ''}` : ''
  const header = r.upstream_header_ms !== undefined ? ` header=${r.upstream_header_ms}ms` : ''
  const detail = r.error_detail
  const err = r.error ? ` error=${r.error}${detail ? ` detail="${NEEDS_ESCAPE.test(detail) ? escapeBytes(detail) : detail}"` : ''}` : ''
  const retries = r.retries > 0 ? ` retries=${r.retries}` : ''
  const cache = r.cache ? ` cache=${r.cache}` : ''
  return `${r.ts} ${r.client} "${request}" ${r.status} in=${r.bytes_in} out=${r.bytes_out} ${r.duration_ms}ms${up}${header}${retries}${cache}${err} id=${r.request_id}\n`
}

/**
 * DEL and the C1 controls, which JSON.stringify leaves raw. U+009B is CSI, the one-character
 * form of ESC [, which a terminal may act on when `tail -f` shows the line. They only occur
 * inside JSON strings, where \u00XX reads back as the same character.
 */
const C1 = /[\x7f-\x9f]/
const C1_ALL = /[\x7f-\x9f]/g
const unicodeEscape = (c: string) => `\\u00${c.charCodeAt(0).toString(16)}`

/** A character the text format writes as \xHH: `"`, `\`, C0 controls, DEL and beyond ASCII. */
const NEEDS_ESCAPE = /["\\\x00-\x1f\x7f-\uffff]/

/**
 * `s` with each character NEEDS_ESCAPE matches as \xHH: a character up to U+00FF is the byte it
 * was read as (the own listener reads the request line as latin1); one beyond (a path from
 * HTTP/2 or the runtime listener) is its UTF-8 bytes.
 */
function escapeBytes(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) out += s[i]
    else if (c <= 0xff) out += hexByte(c)
    else {
      const cp = s.codePointAt(i)!
      if (cp > 0xffff) i++
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += hexByte(b)
    }
  }
  return out
}

function hexByte(b: number): string {
  return `\\x${b < 0x10 ? '0' : ''}${b.toString(16).toUpperCase()}`
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
  // "/dev/stdout" is the process's stdout whatever it is (a pipe, a tty, systemd's journal socket,
  // which cannot be opened by path: ENXIO), so it is written as the stream it already is.
  const std = cfg.accessLog === '/dev/stdout' ? 'stdout' : cfg.accessLog === '/dev/stderr' ? 'stderr' : cfg.accessLog
  if (std === 'stdout' || std === 'stderr') {
    const stream = std === 'stdout' ? (opts.stdout ?? process.stdout) : (opts.stderr ?? process.stderr)
    const report = new DropReport(stats, log, { stream: std })
    return new BatchedAccessLog(new StreamLineWriter(stream, report), report, cfg.format, log)
  }
  const report = new DropReport(stats, log, { path: cfg.accessLog })
  // Anything but a regular file (a FIFO, a character device) could block a synchronous write for as
  // long as its reader stalls: it is a stream, written from the thread pool, bounded as stdout is.
  if (isSpecial(cfg.accessLog)) return new BatchedAccessLog(new StreamLineWriter(createWriteStream(cfg.accessLog, { flags: 'a' }), report, true), report, cfg.format, log)
  return new BatchedAccessLog(new FileLineWriter(cfg.accessLog, report), report, cfg.format, log)
}

/** An existing FIFO, character device or socket (a file not there yet is one the log creates; a directory fails to open, at start). */
function isSpecial(path: string): boolean {
  try {
    const st = statSync(path)
    return st.isFIFO() || st.isCharacterDevice() || st.isSocket()
  } catch {
    return false
  }
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
    // A path that cannot be opened (its directory removed) has just been reported as failing.
    if (this.writer.accepting) this.log('info', 'access log reopened', { path: this.writer.path })
  }

  close(): Promise<void> {
    return Promise.resolve(this.writer.close())
  }
}
