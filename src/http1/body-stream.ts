/**
 * A message body read from a socket, as a ReadableStream with backpressure: when the consumer
 * falls behind (two chunks queued), the socket is paused; when it pulls again, the socket
 * resumes. Used for request bodies on the client side and response bodies on the upstream side.
 * Framing (Content-Length, chunked) is the caller's; this only carries the bytes.
 */

/** The side the bytes come from. */
export interface PausableSource {
  pause(): void
  resume(): void
}

export class SocketBodyStream {
  readonly stream: ReadableStream<Uint8Array>
  private ctl: ReadableStreamDefaultController<Uint8Array> | undefined
  /** Whether this stream paused the source (and so owes it a resume). */
  paused = false

  constructor(
    private readonly source: PausableSource,
    /** The consumer cancelled: the rest of the body will not be read. */
    onCancel: (reason: unknown) => void,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (ctl) => {
          this.ctl = ctl
        },
        pull: () => this.resume(),
        cancel: (reason) => {
          this.ctl = undefined
          onCancel(reason)
        },
      },
      { highWaterMark: 2 },
    )
  }

  /** Whether the consumer still takes bytes. */
  get open(): boolean {
    return this.ctl !== undefined
  }

  /** Queues `chunk`; pauses the source once the consumer is behind. */
  push(chunk: Uint8Array): void {
    const ctl = this.ctl
    if (!ctl || chunk.byteLength === 0) return
    ctl.enqueue(chunk)
    if ((ctl.desiredSize ?? 1) <= 0 && !this.paused) {
      this.paused = true
      this.source.pause()
    }
  }

  /** Resumes the source if this stream paused it. */
  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.source.resume()
  }

  close(): void {
    const ctl = this.ctl
    this.ctl = undefined
    try {
      ctl?.close()
    } catch {
      // cancelled meanwhile
    }
  }

  error(err: unknown): void {
    const ctl = this.ctl
    this.ctl = undefined
    try {
      ctl?.error(err)
    } catch {
      // closed meanwhile
    }
  }
}
