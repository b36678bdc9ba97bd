/**
 * How access-log lines reach their destination: gathered in one fixed buffer for the rest of the
 * event-loop turn (or until BATCH_BYTES), then handed on in one piece.
 *
 * A file gets one synchronous write per batch, as nginx writes its log: a regular file takes it
 * into the page cache in microseconds; the thread-pool write per line this replaces
 * (fs.WriteStream) kept up with ~40,000 lines/s and dropped the rest. A file that cannot be
 * opened or written drops its lines (counted, log-drops.ts) and is reopened every RETRY_MS.
 *
 * stdout, stderr (a pipe to journald or a container's log driver) and a FIFO path are written as
 * streams, with at most MAX_PENDING_BYTES handed over and not yet written: a reader that stalls costs
 * dropped lines (counted and reported, as Envoy does), never memory without bound and never a
 * stalled proxy (nginx blocks on its log instead; a proxy that stops serving because its log
 * reader is stuck takes the site down with it).
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs'
import type { DropReport } from './log-drops.ts'

/** Bytes gathered before they are written (a turn's lines are written sooner). */
export const BATCH_BYTES = 64 * 1024

/** Time between attempts to reopen a file that could not be written. */
export const RETRY_MS = 5000

/** Most write calls for one batch (a regular file takes it in one). */
const MAX_WRITES_PER_BATCH = 64

/** Worst case of UTF-8 bytes per UTF-16 code unit. */
const MAX_BYTES_PER_UNIT = 3

/** Bytes handed to a stream and not yet written beyond which a stream's lines are dropped. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024

/** Longest a closing stream log waits for what it handed over to be written. */
const CLOSE_WAIT_MS = 1000

const CANNOT_WRITE = 'access log cannot be written; requests continue, lines are dropped'
const SLOW_READER = 'access log reader is not keeping up; requests continue, lines are dropped'

/** Lines gathered into one buffer and handed on per event-loop turn, or when it is full. */
export abstract class LineBatcher {
  private readonly buf = Buffer.allocUnsafe(BATCH_BYTES)
  private usedBytes = 0
  private lines = 0
  private scheduled = false
  protected closed = false

  constructor(protected readonly report: DropReport) {}

  /** Whether a line would be taken now; when not, the caller calls skip() instead of formatting one. */
  abstract get accepting(): boolean

  /** Counts a line not taken. */
  abstract skip(): void

  add(line: string): void {
    if (this.closed) return
    if (this.usedBytes + line.length * MAX_BYTES_PER_UNIT > BATCH_BYTES) {
      this.flush()
      // A line longer than the buffer (a huge URL) goes on its own.
      if (line.length * MAX_BYTES_PER_UNIT > BATCH_BYTES) return this.emit(Buffer.from(line), 1)
    }
    this.usedBytes += this.buf.write(line, this.usedBytes)
    this.lines++
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.onTurnEnd)
    }
  }

  private readonly onTurnEnd = () => {
    this.scheduled = false
    this.flush()
  }

  /** Hands on what is gathered; a no-op when nothing is. */
  flush(): void {
    if (this.lines === 0) return
    const lines = this.lines
    const bytes = this.buf.subarray(0, this.usedBytes)
    this.lines = 0
    this.usedBytes = 0
    this.emit(bytes, lines)
  }

  /** Writes `bytes` (`lines` lines); `bytes` may be the reused buffer: copy it to keep it. */
  protected abstract emit(bytes: Buffer, lines: number): void
}

const NEWLINE = Buffer.from('\n')

export class FileLineWriter extends LineBatcher {
  private fd = -1
  /** Set while lines are dropped unwritten, until the next reopen. */
  private failing = false
  /**
   * The file ends in the middle of a line (a write cut short by a full disk, or another writer's):
   * the next batch starts on a line of its own rather than glued onto it.
   */
  private midLine = false
  private retryTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly path: string,
    report: DropReport,
  ) {
    super(report)
    this.open()
  }

  get accepting(): boolean {
    return !this.failing && !this.closed
  }

  skip(): void {
    if (!this.closed) this.report.drop(1, CANNOT_WRITE, 'not open')
  }

  /** Writes what is gathered to the file open now, then opens the path anew (after a rotation). */
  reopen(): void {
    if (this.closed) return
    this.flush()
    this.open()
  }

  private open(): void {
    this.closeFd()
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    try {
      // Read as well as appended to: its last byte says whether it ends mid-line (a file the
      // proxy may write but not read is appended to as it is).
      this.fd = openForAppend(this.path)
      this.failing = false
      this.midLine = endsMidLine(this.fd)
    } catch (err) {
      this.fail(0, err)
    }
  }

  protected emit(bytes: Buffer, lines: number): void {
    if (this.fd < 0) return this.report.drop(lines, CANNOT_WRITE, 'not open')
    try {
      if (this.midLine && writeSync(this.fd, NEWLINE) === 1) this.midLine = false
      let offset = 0
      for (let i = 0; offset < bytes.length && i < MAX_WRITES_PER_BATCH; i++) offset += writeSync(this.fd, bytes, offset, bytes.length - offset)
      if (offset < bytes.length) throw new Error(`short write: ${offset} of ${bytes.length} bytes`)
    } catch (err) {
      return this.fail(lines, err)
    }
    if (this.report.outage) this.report.recovered()
  }

  /** Drops `lines` (what of them was written, cut, is ended by the next write: midLine on reopen); no line is taken until the file is reopened RETRY_MS later. */
  private fail(lines: number, err: unknown): void {
    this.report.drop(lines, CANNOT_WRITE, err instanceof Error ? err.message : String(err))
    this.failing = true
    if (this.retryTimer || this.closed) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (!this.closed) this.open()
    }, RETRY_MS)
    this.retryTimer.unref?.()
  }

  private closeFd(): void {
    if (this.fd < 0) return
    try {
      closeSync(this.fd)
    } catch {
      // already gone (a failed disk): nothing more to do with it
    }
    this.fd = -1
  }

  close(): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.closeFd()
    this.report.close()
  }
}

function openForAppend(path: string): number {
  try {
    return openSync(path, 'a+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err
    return openSync(path, 'a')
  }
}

/** Whether the file open on `fd` has bytes and its last one is not a newline (false when it cannot be read). */
function endsMidLine(fd: number): boolean {
  try {
    const size = fstatSync(fd).size
    if (size === 0) return false
    const last = Buffer.alloc(1)
    return readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a
  } catch {
    return false
  }
}

/** A writable stream as process.stdout is one: `done` runs once the chunk is written (or failed). */
export interface LineStream {
  write(chunk: Uint8Array, done: (err?: Error | null) => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  /** Closes the stream; called on close() only for a stream the log opened itself (a FIFO path). */
  destroy?(): unknown
}

export class StreamLineWriter extends LineBatcher {
  private pendingBytes = 0
  private onIdle: (() => void) | undefined
  /**
   * The reader is gone (EPIPE): a pipe's reader never comes back, and Bun's stdout says later
   * writes succeeded though none is made; every line from then on is dropped and counted.
   */
  private gone: string | undefined

  constructor(
    private readonly stream: LineStream,
    report: DropReport,
    /** The log opened the stream (a FIFO path), so closes it; never process.stdout or stderr. */
    private readonly owned = false,
  ) {
    super(report)
    // A failed write (EPIPE: the reader is gone) reaches its callback, and is counted there; the
    // stream's 'error' event needs a listener not to be reported as unhandled.
    stream.on('error', () => {})
  }

  get accepting(): boolean {
    return this.pendingBytes < MAX_PENDING_BYTES && !this.closed && this.gone === undefined
  }

  skip(): void {
    if (this.closed) return
    if (this.gone !== undefined) this.report.drop(1, CANNOT_WRITE, this.gone)
    else this.report.drop(1, SLOW_READER, `${this.pendingBytes} bytes waiting`)
  }

  protected emit(bytes: Buffer, lines: number): void {
    const n = bytes.length
    if (this.gone !== undefined) return this.report.drop(lines, CANNOT_WRITE, this.gone)
    if (this.pendingBytes + n > MAX_PENDING_BYTES) return this.report.drop(lines, SLOW_READER, `${this.pendingBytes} bytes waiting`)
    this.pendingBytes += n
    let settled = false
    const done = (err?: Error | null) => {
      if (settled) return
      settled = true
      this.pendingBytes -= n
      if (err && (err as NodeJS.ErrnoException).code === 'EPIPE') this.gone ??= err.message
      // Handed over before the reader went and "written" after it: not written.
      if (err || this.gone !== undefined) this.report.drop(lines, CANNOT_WRITE, err?.message ?? this.gone!)
      else if (this.report.outage) this.report.recovered()
      if (this.pendingBytes === 0) this.onIdle?.()
    }
    try {
      // A copy: the batch buffer is reused at once, the stream may hold the chunk a while.
      this.stream.write(Buffer.from(bytes), done)
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Hands on what is gathered and waits (CLOSE_WAIT_MS at most) until it is written. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.flush()
    this.closed = true
    this.report.close()
    const waited =
      this.pendingBytes === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, CLOSE_WAIT_MS)
            timer.unref?.()
            this.onIdle = () => {
              clearTimeout(timer)
              resolve()
            }
          })
    // What did not get written within the wait is dropped with the stream (counted by its callback).
    return waited.then(() => void (this.owned && this.stream.destroy?.()))
  }
}
