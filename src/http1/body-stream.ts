/**
 * A message body read from a socket, as a ReadableStream with backpressure: a chunk that no read
 * is waiting for pauses the socket, and the consumer's next read resumes it. Used for request
 * bodies on the client side and response bodies on the upstream side. Framing (Content-Length,
 * chunked) is the caller's; this only carries the bytes.
 *
 * The high-water mark is zero on purpose: the source is read only while the consumer asks for
 * bytes, and the consumers (proxy/downstream/reply-writer.ts, proxy/upstream/exchange.ts) ask
 * only once they have written the previous chunk whole. So a body held up by a slow reader or a
 * slow upstream keeps one socket read in user space (runtime/receive-buffer.ts bounds its size),
 * not a queue of them: measured, a queue of two 512 KiB reads plus one being written was ~1.2 MB
 * per slow reader.
 *
 * Also here: a whole body as a stream of views of it (slicesOf), for a writer that sends a large
 * one the way it sends a stream.
 */

/** The side the bytes come from. */
export interface PausableSource {
  pause(): void
  resume(): void
  /** The consumer wrote `bytes` onward: `whole` when its peer took them all at once (read sizing). */
  wrote?(whole: boolean, bytes: number): void
}

const byStream = new WeakMap<ReadableStream<Uint8Array>, SocketBodyStream>()

export class SocketBodyStream {
  readonly stream: ReadableStream<Uint8Array>
  private ctl: ReadableStreamDefaultController<Uint8Array> | undefined
  /** Whether this stream paused the source (and so owes it a resume). */
  paused = false
  /** Whether any body byte has come (a client that sends is not waiting for a 100). */
  started = false

  constructor(
    private readonly source: PausableSource,
    /** The consumer cancelled: the rest of the body will not be read. */
    onCancel: (reason: unknown) => void,
    /**
     * Called at the consumer's first read when no byte has arrived by then (none after: a push
     * clears it): where a "100 Continue" goes, once the body is wanted (RFC 9110 §10.1.1).
     */
    private firstRead?: () => void,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (ctl) => {
          this.ctl = ctl
        },
        pull: () => {
          if (this.firstRead !== undefined) {
            const first = this.firstRead
            this.firstRead = undefined
            first()
          }
          this.resume()
        },
        cancel: (reason) => {
          this.ctl = undefined
          onCancel(reason)
        },
      },
      { highWaterMark: 0 },
    )
    byStream.set(this.stream, this)
  }

  /** The SocketBodyStream behind `stream`, if it is one: its consumer reports its writes there. */
  static of(stream: ReadableStream<Uint8Array>): SocketBodyStream | undefined {
    return byStream.get(stream)
  }

  /** `wrapper` carries on `stream`'s bytes (request-body.ts): the socket behind one is behind the other. */
  static carriedOn(stream: ReadableStream<Uint8Array>, wrapper: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const source = byStream.get(stream)
    if (source !== undefined) byStream.set(wrapper, source)
    return wrapper
  }

  /** The consumer wrote `bytes` onward; `whole` when its peer took them at once. */
  wrote(whole: boolean, bytes: number): void {
    this.source.wrote?.(whole, bytes)
  }

  /** Whether the consumer still takes bytes. */
  get open(): boolean {
    return this.ctl !== undefined
  }

  /** Hands `chunk` to a waiting read, or queues it; either way the source pauses until the next read. */
  push(chunk: Uint8Array): void {
    const ctl = this.ctl
    if (!ctl || chunk.byteLength === 0) return
    this.firstRead = undefined
    this.started = true
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

/**
 * Whole bodies larger than this (a cache hit, a byte range of one) are not copied after their
 * head: they go as a stream of views of this size, each once the socket has taken the last, as a
 * streamed body does. A copy of a stored 4 MiB body per slow reader was held until the reader
 * had taken it (200 readers at 1 KiB/s: +800 MiB).
 */
export const SLICE_BYTES = 64 * 1024

/** `body` as a stream of views of SLICE_BYTES, made as they are read (no copy). */
export function slicesOf(body: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (at >= body.byteLength) return c.close()
        const end = Math.min(at + SLICE_BYTES, body.byteLength)
        c.enqueue(body.subarray(at, end))
        at = end
      },
    },
    { highWaterMark: 0 },
  )
}
