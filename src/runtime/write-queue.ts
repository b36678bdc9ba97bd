/**
 * Ordered writes to a Bun socket, whose write() may take only part of the bytes: the rest is
 * queued and sent, in order, from the socket's drain event, and an end waits for what is queued.
 * Shared by upstream connections (socket.ts), HTTP/1.1 client connections
 * (proxy/downstream/reply-writer.ts) and HTTP/2 ones (http2/bun-listener.ts).
 *
 * Batched queues (`{ batch: true }`) hold small writes (at most 64 KiB a socket) made while the
 * event loop handles one round of socket events and send them all at the end of it (one
 * setImmediate for every queue), instead of one send per write as it is made. Bun corks a
 * socket's writes only inside that socket's own callbacks, and the request path writes from
 * promise reactions, outside them.
 * Measured (scripts/ab-cpu.ts, small proxied requests, c=64): each send wakes the peer that
 * waits for it (wrk, nginx), and spread-out sends woke them once per request; sent together, one
 * wake-up serves several, and the proxy's system time per request fell by a fifth. What a write
 * returns stays honest for backpressure: a batched write says true, and what the socket does not
 * take when the batch is sent is queued, so the next write says false until the drain.
 */
import { concatBytes } from '../lib/bytes.ts'

/**
 * The unwritten rest of a write, as a copy when it is under half of the buffer it views: a view
 * keeps its whole parent alive, and the parent is usually one socket read of up to 128 KiB
 * (runtime/receive-buffer.ts). Measured with 500 stalled readers: unwritten rests of 54 KiB on
 * average pinned reads of 105 KiB, so half of what was held was already sent.
 */
function keep(rest: Uint8Array): Uint8Array {
  return rest.byteLength * 2 <= rest.buffer.byteLength ? new Uint8Array(rest) : rest
}

/** Only writes this small start a batch (heads, small bodies); larger ones go out at once. */
const BATCH_START_MAX_BYTES = 16 * 1024
/**
 * Most bytes one socket's batch holds: past it, what is held goes out with the write, and the
 * write's result is the socket's (so a body pump waits for the drain as before batching).
 */
const BATCH_MAX_BYTES = 64 * 1024

/**
 * Queues holding a batch, sent together by one setImmediate at the end of this round of events;
 * and the list of the round before, emptied, which the next round fills (two lists for the
 * process's life, not one per round). A queue given a batch while a round is sent goes in the
 * other list, for the next round.
 */
let batched: WriteQueue[] = []
let spare: WriteQueue[] = []
let batchScheduled = false
const later: (fn: () => void) => void = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : queueMicrotask

function sendBatches(): void {
  batchScheduled = false
  const queues = batched
  batched = spare
  try {
    for (let i = 0; i < queues.length; i++) queues[i]!.sendBatch()
  } finally {
    queues.length = 0
    spare = queues
  }
}

export interface WriteQueueOptions {
  /** Hold small writes and send them with the others of this round of events (see above). */
  batch?: boolean
  /** Bytes the socket did not take are now queued (the owner may time the wait: send_timeout). */
  onQueued?: () => void
  /** What ends the socket once everything is sent (default its end(): a FIN). */
  end?: () => void
  /** A batch was handed to the socket (the owner may compare `taken` with what it waits for). */
  onSent?: () => void
}

export class WriteQueue {
  private queue: Uint8Array[] = []
  /**
   * Writes held for the end of this round of events, in order (batched queues only): the first,
   * and those after it (most rounds hold one write, and no list is made for it).
   */
  private batch: Uint8Array | undefined
  private batchMore: Uint8Array[] | undefined
  private batchBytes = 0
  /** end() the socket once the queue is empty (endWhenFlushed). */
  private endPending = false
  private readonly batching: boolean
  private readonly onQueued: (() => void) | undefined
  private readonly endSocket: () => void
  private readonly onSent: (() => void) | undefined
  /** Bytes given to write() in all, and of them the ones the socket took: the rest is held, queued, or was dropped (clear). */
  given = 0
  taken = 0

  constructor(
    private readonly socket: { write(data: Uint8Array): number; end(): void },
    opts: WriteQueueOptions = {},
  ) {
    this.batching = opts.batch === true
    this.onQueued = opts.onQueued
    this.endSocket = opts.end ?? (() => socket.end())
    this.onSent = opts.onSent
  }

  /** FIN once every queued byte has been sent: now if nothing waits, else from flush(). */
  endWhenFlushed(): void {
    this.sendBatch()
    if (this.queue.length === 0) this.endSocket()
    else this.endPending = true
  }

  /** Sends what this queue holds in a batch (called for every batched queue at the end of a round). */
  sendBatch(): void {
    const first = this.batch
    if (first === undefined) return
    const more = this.batchMore
    const total = this.batchBytes
    this.batch = undefined
    this.batchMore = undefined
    this.batchBytes = 0
    // One send (and over TLS one record) for what one socket was given this round.
    if (more === undefined) this.sendNow(first)
    else this.sendNow(concatBytes([first, ...more], total))
    this.onSent?.()
  }

  /** Whether the socket has been (or will be, once flushed) ended through endWhenFlushed(). */
  get ending(): boolean {
    return this.endPending
  }

  get empty(): boolean {
    return this.queue.length === 0 && this.batch === undefined
  }

  /** Bytes given that the socket has not taken (held, queued, or dropped by clear). */
  get unsent(): number {
    return this.given - this.taken
  }

  /** Whether bytes wait for the socket's drain (it did not take them); a batch not yet sent does not count. */
  get backlogged(): boolean {
    return this.queue.length > 0
  }

  /**
   * Writes `bytes` now, or holds them for this round's batch, or queues what the socket did not
   * take; true when all of it was written or is in the batch.
   */
  write(bytes: Uint8Array): boolean {
    this.given += bytes.byteLength
    if (this.queue.length > 0) {
      this.queue.push(bytes)
      return false
    }
    if (this.batch !== undefined) {
      if (this.batchBytes + bytes.byteLength <= BATCH_MAX_BYTES) {
        ;(this.batchMore ??= []).push(bytes)
        this.batchBytes += bytes.byteLength
        return true
      }
      // Too much to hold: what is held goes first (the order of bytes is the socket's), then this.
      this.sendBatch()
      return this.sendNow(bytes)
    }
    if (this.batching && !this.endPending && bytes.byteLength <= BATCH_START_MAX_BYTES) {
      this.batch = bytes
      this.batchBytes = bytes.byteLength
      batched.push(this)
      if (!batchScheduled) {
        batchScheduled = true
        later(sendBatches)
      }
      return true
    }
    return this.sendNow(bytes)
  }

  private sendNow(bytes: Uint8Array): boolean {
    if (this.queue.length > 0) {
      this.queue.push(bytes)
      return false
    }
    const n = this.socket.write(bytes)
    if (n > 0) this.taken += n
    if (n === bytes.byteLength) return true
    // -1: nothing taken (seen from a TLS socket in a burst of writes; a closed socket says it too).
    // The bytes wait for the drain event rather than being dropped; a close clears the queue.
    this.queue.push(n <= 0 ? bytes : keep(bytes.subarray(n)))
    this.onQueued?.()
    return false
  }

  /**
   * Call from the drain event: sends what is queued; true when nothing is left and the socket
   * stays open (false too once it has been ended for a pending endWhenFlushed).
   */
  flush(): boolean {
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      const n = this.socket.write(head)
      if (n < 0) return false
      this.taken += n
      if (n < head.byteLength) {
        this.queue[0] = keep(head.subarray(n))
        return false
      }
      this.queue.shift()
    }
    if (this.endPending) {
      this.endPending = false
      this.endSocket()
      return false
    }
    return true
  }

  clear(): void {
    this.batch = undefined
    this.batchMore = undefined
    this.queue = []
    this.endPending = false
  }
}
