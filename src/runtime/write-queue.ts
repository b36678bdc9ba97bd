/**
 * Ordered writes to a Bun socket, whose write() may take only part of the bytes: the rest is
 * queued and sent, in order, from the socket's drain event, and an end waits for what is queued.
 * Shared by upstream connections (socket.ts), HTTP/1.1 client connections
 * (proxy/downstream/reply-writer.ts) and HTTP/2 ones (http2/bun-listener.ts).
 */

/**
 * The unwritten rest of a write, as a copy when it is under half of the buffer it views: a view
 * keeps its whole parent alive, and the parent is usually one socket read of up to 128 KiB
 * (runtime/receive-buffer.ts). Measured with 500 stalled readers: unwritten rests of 54 KiB on
 * average pinned reads of 105 KiB, so half of what was held was already sent.
 */
function keep(rest: Uint8Array): Uint8Array {
  return rest.byteLength * 2 <= rest.buffer.byteLength ? new Uint8Array(rest) : rest
}

export class WriteQueue {
  private queue: Uint8Array[] = []
  /** end() the socket once the queue is empty (endWhenFlushed). */
  private endPending = false

  constructor(private readonly socket: { write(data: Uint8Array): number; end(): void }) {}

  /** FIN once every queued byte has been sent: now if nothing waits, else from flush(). */
  endWhenFlushed(): void {
    if (this.queue.length === 0) this.socket.end()
    else this.endPending = true
  }

  /** Whether the socket has been (or will be, once flushed) ended through endWhenFlushed(). */
  get ending(): boolean {
    return this.endPending
  }

  get empty(): boolean {
    return this.queue.length === 0
  }

  /** Writes `bytes` now or queues what the socket did not take; true when all of it was written. */
  write(bytes: Uint8Array): boolean {
    if (this.queue.length > 0) {
      this.queue.push(bytes)
      return false
    }
    const n = this.socket.write(bytes)
    if (n === bytes.byteLength) return true
    // -1: nothing taken (seen from a TLS socket in a burst of writes; a closed socket says it too).
    // The bytes wait for the drain event rather than being dropped; a close clears the queue.
    this.queue.push(n <= 0 ? bytes : keep(bytes.subarray(n)))
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
      if (n < head.byteLength) {
        this.queue[0] = keep(head.subarray(n))
        return false
      }
      this.queue.shift()
    }
    if (this.endPending) {
      this.endPending = false
      this.socket.end()
      return false
    }
    return true
  }

  clear(): void {
    this.queue = []
    this.endPending = false
  }
}
