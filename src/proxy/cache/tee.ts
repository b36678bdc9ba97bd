/**
 * One upstream response body, read once and served to every request that shares it (the
 * leader and the collapsed ones) as it arrives, while it is also kept whole for the store.
 * Memory stays bounded: the body is kept only up to maxStoreBytes; past that it is no longer
 * stored, chunks every reader has passed are dropped, and the upstream is read only while at
 * most windowBytes wait for the slowest reader (so a slow reader slows the upstream, as without
 * a cache). What to do with a kept body is the caller's (cache.ts).
 *
 * Bytes read while the body was kept stay charged to the fill budget until every reader has
 * passed them, also once the body is stored or given up: a slow reader still needs them, and
 * uncharged they added up without bound (400 readers at 1 B/s of distinct 4 MiB misses held
 * 880 MiB beside a 64 MiB cache). Once stored, they are views of the stored body, not a copy.
 */
import { concatBytes } from '../../lib/bytes.ts'

/** Bytes all tees together keep for the store while bodies arrive; shared so that many large fills cannot add up without bound. */
export interface FillBudget {
  keptBytes: number
  maxKeptBytes: number
}

export interface TeeOptions {
  maxStoreBytes: number
  budget: FillBudget
  windowBytes: number
  /** Called once with the whole body when it ended and was kept. */
  onStored(body: Uint8Array): void
  /** Called once when the body will not be stored: too large, failed, or nobody reads it. */
  onAbandoned(): void
}

interface Cursor {
  /** Index of the next chunk this reader takes, counted from the body's first chunk. */
  index: number
}

export class BodyTee {
  private chunks: Uint8Array[] = []
  /** Chunks dropped from the front (only once the body is no longer kept). */
  private dropped = 0
  private bufferedBytes = 0
  totalBytes = 0
  private keeping = true
  private done = false
  private failure: unknown = undefined
  private readonly cursors = new Set<Cursor>()
  private waiting: (() => void)[] = []
  private pumpWaiting: (() => void) | undefined
  private readonly source: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void> }
  private settled = false
  /** Chunks before this index (counted from the body's first) are charged to the budget; all while kept. */
  private chargedUntil = Infinity

  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly opts: TeeOptions,
  ) {
    this.source = stream.getReader()
    void this.pump()
  }

  /** Whether a new reader can still get the body from its first byte. */
  get joinable(): boolean {
    return this.keeping && this.failure === undefined
  }

  /** A new reader from the first byte; call only while joinable. */
  reader(): ReadableStream<Uint8Array> {
    const cursor: Cursor = { index: this.dropped }
    this.cursors.add(cursor)
    return new ReadableStream<Uint8Array>(
      {
        pull: async (ctl) => {
          for (;;) {
            const i = cursor.index - this.dropped
            // A failed body's chunks are all dropped (dropAll), also those a reader behind had yet to take: i < 0.
            if (i >= 0 && i < this.chunks.length) {
              ctl.enqueue(this.chunks[i]!)
              cursor.index++
              this.released()
              return
            }
            if (this.failure !== undefined) {
              this.cursors.delete(cursor)
              ctl.error(this.failure)
              return
            }
            if (this.done) {
              this.cursors.delete(cursor)
              ctl.close()
              this.released()
              return
            }
            await new Promise<void>((r) => this.waiting.push(r))
          }
        },
        cancel: () => {
          this.cursors.delete(cursor)
          this.released()
        },
      },
      // Nothing is pulled ahead of the reader: the chunks stay here, shared.
      { highWaterMark: 0 },
    )
  }

  /** A reader moved on or left: drop what all have passed, and let the pump read again. */
  private released(): void {
    if (this.keeping) return
    let min = Infinity
    for (const c of this.cursors) if (c.index < min) min = c.index
    if (min === Infinity) min = this.dropped + this.chunks.length
    while (this.dropped < min && this.chunks.length > 0) {
      const n = this.chunks.shift()!.byteLength
      this.bufferedBytes -= n
      if (this.dropped < this.chargedUntil) this.opts.budget.keptBytes -= n
      this.dropped++
    }
    const w = this.pumpWaiting
    this.pumpWaiting = undefined
    w?.()
  }

  private wakeReaders(): void {
    const w = this.waiting
    this.waiting = []
    for (const f of w) f()
  }

  /** Not to be stored: what was kept stays charged until the readers pass it (released). */
  private abandon(): void {
    if (this.settled) return
    this.settled = true
    this.chargedUntil = this.dropped + this.chunks.length
    this.opts.onAbandoned()
  }

  /** The failed body's chunks are gone: their charge with them. */
  private dropAll(): void {
    for (let i = 0; i < this.chunks.length; i++) if (this.dropped + i < this.chargedUntil) this.opts.budget.keptBytes -= this.chunks[i]!.byteLength
    this.dropped += this.chunks.length
    this.chunks = []
    this.bufferedBytes = 0
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (!this.keeping) {
        // Not stored: read on only while the slowest reader is less than a window behind.
        while (this.cursors.size > 0 && this.bufferedBytes >= this.opts.windowBytes) await new Promise<void>((r) => (this.pumpWaiting = r))
        if (this.cursors.size === 0) {
          this.source.cancel().catch(() => {})
          this.done = true
          return
        }
      }
      let next: { done: boolean; value?: Uint8Array }
      try {
        next = await this.source.read()
      } catch (err) {
        this.failure = err ?? new Error('upstream body failed')
        this.abandon()
        this.dropAll()
        this.wakeReaders()
        return
      }
      if (next.done) {
        this.done = true
        if (this.keeping && !this.settled) {
          this.settled = true
          const body = this.chunks.length === 1 ? this.chunks[0]! : concatBytes(this.chunks, this.totalBytes)
          this.opts.onStored(body)
          // Readers behind go on from the stored body, the chunks read let go; still charged (above).
          let at = 0
          for (let i = 0; i < this.chunks.length; i++) {
            const n = this.chunks[i]!.byteLength
            this.chunks[i] = body.subarray(at, at + n)
            at += n
          }
          this.chargedUntil = this.dropped + this.chunks.length
          this.keeping = false
          this.released()
        }
        this.wakeReaders()
        return
      }
      const chunk = next.value!
      if (chunk.byteLength === 0) continue
      this.chunks.push(chunk)
      this.totalBytes += chunk.byteLength
      this.bufferedBytes += chunk.byteLength
      const budget = this.opts.budget
      if (this.keeping) budget.keptBytes += chunk.byteLength
      if (this.keeping && (this.totalBytes > this.opts.maxStoreBytes || budget.keptBytes > budget.maxKeptBytes)) {
        this.keeping = false
        this.abandon()
        this.released()
      }
      this.wakeReaders()
    }
  }
}
