/**
 * Access records an HTTP/1.1 client connection keeps until the socket took their reply, so that
 * a reply cut when the connection ends (the client gone, send_timeout) is logged with the body
 * bytes that went out and the code that cut it, not as sent whole: a whole reply (at most 64 KiB,
 * one write) is recorded before it is written, and its bytes may be held for a batch or queued for
 * a slow client (runtime/write-queue.ts). The connection's current request's record, then those
 * whose reply is written and waits for the socket (pipelined ones may follow), each with the
 * writer's byte count at its reply's end. One per connection: nothing made per request.
 */
import type { GoneListener, WriteCut } from '../message.ts'

/** The write queue's byte counts (runtime/write-queue.ts). */
interface ByteCounts {
  readonly given: number
  readonly taken: number
}

export class HeldRecords {
  private current: GoneListener | undefined = undefined
  private readonly waiting: GoneListener[] = []
  private readonly ends: number[] = []

  constructor(private readonly bytes: ByteCounts) {}

  /** Keeps the current request's record (the request path's holdRecord): true, it is held. */
  hold(of: GoneListener): true {
    this.current = of
    return true
  }

  /** The current reply was written to its end: its record waits for the socket to take it. */
  replyEnded(): void {
    if (this.current === undefined) return
    this.waiting.push(this.current)
    this.ends.push(this.bytes.given)
    this.current = undefined
    this.taken()
  }

  /** The current request got no reply from this writer (the connection answered it itself): its record as it is. */
  unwritten(): void {
    const held = this.current
    this.current = undefined
    held?.written(0, undefined)
  }

  /** The socket took bytes: the records whose reply it has taken whole are written. */
  taken(): void {
    if (this.waiting.length === 0) return
    const taken = this.bytes.taken
    while (this.waiting.length > 0 && this.ends[0]! <= taken) {
      this.ends.shift()
      this.waiting.shift()!.written(0, undefined)
    }
  }

  /** The connection ended (`err`: why, if cut): each reply is cut where the socket stopped taking it; a current one not written to its end is cut. */
  closed(err: Error | undefined): void {
    const cut: WriteCut = (err as { code?: string } | undefined)?.code === 'CLIENT_SEND_TIMEOUT' ? 'CLIENT_SEND_TIMEOUT' : 'CLIENT_GONE'
    const taken = this.bytes.taken
    while (this.waiting.length > 0) {
      const unsent = this.ends.shift()! - taken
      this.waiting.shift()!.written(Math.max(0, unsent), unsent > 0 ? cut : undefined)
    }
    const held = this.current
    this.current = undefined
    held?.written(Math.max(0, this.bytes.given - taken), cut)
  }
}
