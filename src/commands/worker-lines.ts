/**
 * The workers' stdout (the access log's default destination) through the supervisor, whole lines
 * only. Each worker writes a pipe of its own, and one writer, this, puts lines on the stdout they
 * share: a pipe keeps one write whole only up to 4 KiB (PIPE_BUF), and a worker's batch is up to
 * 64 KiB, so with the workers on the one pipe a reader that lags got two workers' lines cut into
 * each other. A reader that does not keep up pauses every worker's pipe (each worker then drops
 * and counts its own lines, log-writer.ts); a reader gone (EPIPE) closes them, so each worker
 * counts its lines as dropped.
 */
import type { Readable, Writable } from 'node:stream'

/** A line longer than this (never an access-log record) goes on in pieces rather than held. */
const MAX_LINE_BYTES = 1024 * 1024

const NEWLINE = 0x0a

export class WorkerLines {
  private readonly sources = new Set<Readable>()
  private paused = false
  private gone = false

  constructor(private readonly out: Writable) {
    out.on('drain', this.onDrain)
    out.on('error', this.onGone)
  }

  /** Relays one worker's stdout until it closes. */
  add(source: Readable): void {
    if (this.gone) return void source.destroy()
    this.sources.add(source)
    let carry: Buffer | undefined
    source.on('data', (chunk: Buffer) => {
      const last = chunk.lastIndexOf(NEWLINE)
      if (last < 0) {
        carry = carry ? Buffer.concat([carry, chunk]) : chunk
        if (carry.length > MAX_LINE_BYTES) {
          this.write(carry)
          carry = undefined
        }
        return
      }
      const whole = chunk.subarray(0, last + 1)
      this.write(carry ? Buffer.concat([carry, whole]) : whole)
      carry = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined
    })
    source.on('error', () => {})
    source.once('close', () => {
      this.sources.delete(source)
      // A worker that died in the middle of a line: ended, so the next worker's line starts on its own.
      if (carry) this.write(Buffer.concat([carry, Buffer.from('\n')]))
      carry = undefined
    })
    if (this.paused) source.pause()
  }

  /**
   * Stops relaying (the workers have exited). What was handed to stdout and is not written yet is
   * main.ts's to flush at exit (at most 5 s: Bun's stdout reports nothing queued, so it cannot be
   * waited for here).
   */
  close(): void {
    this.out.off('drain', this.onDrain)
    for (const s of this.sources) s.destroy()
    this.sources.clear()
  }

  private write(bytes: Buffer): void {
    if (this.gone) return
    const more = this.out.write(bytes, (err) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EPIPE') this.onGone()
    })
    if (more || this.paused) return
    this.paused = true
    for (const s of this.sources) s.pause()
  }

  private readonly onDrain = () => {
    if (!this.paused || this.gone) return
    this.paused = false
    for (const s of this.sources) s.resume()
  }

  private readonly onGone = () => {
    if (this.gone) return
    this.gone = true
    for (const s of this.sources) s.destroy()
    this.sources.clear()
  }
}
