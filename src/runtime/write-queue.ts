/**
 * Ordered writes to a Bun socket, whose write() may take only part of the bytes: the rest is
 * queued and sent, in order, from the socket's drain event. Shared by upstream connections
 * (socket.ts) and client connections (proxy/downstream/http1-listener.ts).
 */

export class WriteQueue {
  private queue: Uint8Array[] = []

  constructor(private readonly socket: { write(data: Uint8Array): number }) {}

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
    this.queue.push(n <= 0 ? bytes : bytes.subarray(n))
    return false
  }

  /** Call from the drain event: sends what is queued; true when nothing is left. */
  flush(): boolean {
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      const n = this.socket.write(head)
      if (n < 0) return false
      if (n < head.byteLength) {
        this.queue[0] = head.subarray(n)
        return false
      }
      this.queue.shift()
    }
    return true
  }

  clear(): void {
    this.queue = []
  }
}
