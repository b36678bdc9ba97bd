/**
 * One upstream response body, read once and served to every request that shares it (the
 * leader and the collapsed ones) as it arrives, while it is also kept whole for the store.
 * Memory stays bounded: the body is kept only up to maxStoreBytes; past that it is no longer
 * stored, chunks every reader has passed are dropped, and the upstream is read only while at
 * most windowBytes wait for the slowest reader (so a slow reader slows the upstream, as without
 * a cache), unless another has taken everything and waits: a reader that stays that far behind
 * it and takes less than a window in 2 s is cut (cutLaggards). What to do with a kept body is the
 * caller's (cache.ts).
 *
 * Bytes read while the body was kept stay charged to the fill budget until every reader has
 * passed them, also once the body is stored or given up: a slow reader still needs them, and
 * uncharged they added up without bound (400 readers at 1 B/s of distinct 4 MiB misses held
 * 880 MiB beside a 64 MiB cache). Once stored, they are views of the stored body, not a copy.
 */
import { concatBytes } from '../../lib/bytes.ts'
import { monoNow } from '../../lib/clock.ts'

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
  /** Its stream's controller: a reader that falls too far behind is cut through it (cutLaggards). */
  ctl: ReadableStreamDefaultController<Uint8Array> | undefined
  /** Since when (monotonic ms) it has been the reader a window behind one that waits; 0 while it is not, or caught up since. */
  behindSinceMs: number
  /** Bytes it has taken in all, and when it fell behind (a reader that keeps taking a window per grace is slower, not stalled). */
  takenBytes: number
  takenAtBehind: number
}

/** How long a reader may stay a whole window behind a reader that waits before it is cut: a moment's lag (a busy event loop) is not slowness. */
const LAG_GRACE_MS = 2000

/** What a reader cut for falling behind a shared body no longer kept gets (cutLaggards). */
const LAGGED = 'fell more than the shared window behind the other readers of a response too large to store; ask again'

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
  /** Wakes the pump when a laggard's grace ends (cutLaggards); at most one. */
  private lagTimer: ReturnType<typeof setTimeout> | undefined

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
    const cursor: Cursor = { index: this.dropped, ctl: undefined, behindSinceMs: 0, takenBytes: 0, takenAtBehind: 0 }
    this.cursors.add(cursor)
    return new ReadableStream<Uint8Array>(
      {
        start: (ctl) => void (cursor.ctl = ctl),
        pull: async (ctl) => {
          for (;;) {
            const i = cursor.index - this.dropped
            // A failed body's chunks are all dropped (dropAll), also those a reader behind had yet to take: i < 0.
            if (i >= 0 && i < this.chunks.length) {
              ctl.enqueue(this.chunks[i]!)
              cursor.takenBytes += this.chunks[i]!.byteLength
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
            cursor.behindSinceMs = 0 // it has everything read: not behind
            this.wakePump() // a reader waits for more: readers far behind may now be cut
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
    this.wakePump()
  }

  private wakePump(): void {
    const w = this.pumpWaiting
    this.pumpWaiting = undefined
    w?.()
  }

  /**
   * A body no longer kept is read at the pace of its readers within windowBytes: one reader that
   * takes nothing (or a trickle) held every other at that window for as long as it liked (an
   * outside review: a fast download stopped at 1.1 MB for as long as a second client read 90 KB
   * in 16 s). So a reader that stays a whole window behind one that has taken everything read
   * and waits for more, and takes less than a window in LAG_GRACE_MS (a stalled or trickling
   * client, not a slower link: one at 1 MB/s is kept, and paces the others as before), is cut
   * (its stream errors: LAGGED) and the rest goes on. True when one was.
   */
  private cutLaggards(): boolean {
    if (this.keeping || this.cursors.size < 2) return false
    let fastest = -1
    let slowest = Infinity
    for (const c of this.cursors) {
      fastest = Math.max(fastest, c.index)
      slowest = Math.min(slowest, c.index)
    }
    if (fastest < this.dropped + this.chunks.length || slowest === fastest) return false
    const now = monoNow()
    let cut = false
    let dueMs = Infinity
    for (const c of [...this.cursors]) {
      if (c.index !== slowest) continue
      // Behind since now; or, having taken a window in its grace, again from now (a slower reader, kept).
      if (c.behindSinceMs === 0 || (now - c.behindSinceMs >= LAG_GRACE_MS && c.takenBytes - c.takenAtBehind >= this.opts.windowBytes)) {
        c.behindSinceMs = now
        c.takenAtBehind = c.takenBytes
      }
      if (now - c.behindSinceMs < LAG_GRACE_MS) {
        dueMs = Math.min(dueMs, c.behindSinceMs + LAG_GRACE_MS)
        continue
      }
      this.cursors.delete(c)
      cut = true
      try {
        c.ctl?.error(Object.assign(new Error(LAGGED), { code: 'CLIENT_SEND_TIMEOUT' })) // logged as a client too slow to take its answer
      } catch {}
    }
    if (cut) this.released()
    else if (dueMs !== Infinity && this.lagTimer === undefined) {
      // The pump waits for a reader to move; this wakes it when the laggard's grace ends.
      this.lagTimer = setTimeout(() => {
        this.lagTimer = undefined
        this.wakePump()
      }, dueMs - now)
      ;(this.lagTimer as { unref?: () => void }).unref?.()
    }
    return cut
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
        while (this.cursors.size > 0 && this.bufferedBytes >= this.opts.windowBytes) {
          if (!this.cutLaggards()) await new Promise<void>((r) => (this.pumpWaiting = r))
        }
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
