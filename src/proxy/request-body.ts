/**
 * How a client's request body is prepared for the upstream. Small bodies (up to
 * REPLAYABLE_BODY_BYTES) are read whole before anything is sent, whether their length was
 * declared or they came chunked: a retry can replay them, and a malformed chunked body in that
 * range is refused by the listener before the upstream sees a byte (nginx buffers request bodies
 * for the same reason). A larger body streams: what was read ahead goes first, then the rest,
 * with backpressure; memory stays bounded by REPLAYABLE_BODY_BYTES plus one chunk. A body
 * declared larger is read ahead as far too before the upstream is asked, so that an upload
 * dribbled a byte at a time holds no upstream connection until it has sent that much (HTTP/2
 * streams with such bodies, 128 on each of 34 connections, held 3,837 connections to the origin,
 * and its other clients got 502s; nginx buffers whole bodies, in files, for this).
 */
import { Buffer } from 'node:buffer'
import { clientBodyFailure } from './errors.ts'
import { SocketBodyStream } from '../http1/body-stream.ts'

/** Request bodies up to this size are read before sending, so a retry can replay them. */
export const REPLAYABLE_BODY_BYTES = 64 * 1024

export type PreparedBody =
  | { kind: 'none' }
  | { kind: 'buffered'; bytes: Uint8Array }
  | { kind: 'stream'; stream: ReadableStream<Uint8Array> }
  /** The client's body failed while it was read ahead: it went away, or (chunked) it was malformed, or it stalled; `detail` in the words the listener answered with. */
  | { kind: 'failed'; code: 'CLIENT_GONE' | 'BAD_BODY' | 'CLIENT_BODY_TIMEOUT'; detail: string; ownTimer?: boolean }

export type BodyFailed = Extract<PreparedBody, { kind: 'failed' }>

/**
 * `declaredLength` is the Content-Length, or undefined for a chunked body. `stallMs` bounds
 * each wait for the client's next piece while reading ahead (header_timeout: where the listener
 * has no body timer of its own (Deno, or client_body_timeout 0), a body that never ends would otherwise
 * hold its request, and a slot of max_concurrent_requests, for good).
 */
export async function prepareBody(body: ReadableStream<Uint8Array> | null, declaredLength: number | undefined, stallMs = 0): Promise<PreparedBody> {
  // A declared 0 with no stream (HTTP/1.1) is whole now. An HTTP/2 stream not ended yet is read to
  // its end like any small body: DATA after it would make the request malformed (RFC 9113 §8.1.1).
  if (declaredLength === 0 && body === null) return { kind: 'buffered', bytes: new Uint8Array(0) }
  if (!body) return { kind: 'none' }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let bytes = 0
  try {
    while (bytes <= REPLAYABLE_BODY_BYTES) {
      const { done, value } = stallMs > 0 ? await withinMs(reader, stallMs) : await reader.read()
      if (done || !value) return { kind: 'buffered', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes) }
      if (value.byteLength === 0) continue
      chunks.push(value)
      bytes += value.byteLength
    }
  } catch (err) {
    // ownTimer: the stall was timed here (stallMs), not by the listener, which answers and counts its own.
    return { kind: 'failed', code: clientBodyFailure(err), detail: String((err as Error)?.message ?? err), ownTimer: (err as { ownTimer?: boolean })?.ownTimer === true }
  }
  // Longer than the read-ahead: stream what was read, then the rest of the client's body (whose
  // socket's reads widen as the upstream takes it: until the thirty-fourth session the wrapper hid
  // the socket from the pump, and an HTTP/1.1 upload's reads stayed ~110 KB for good).
  return { kind: 'stream', stream: SocketBodyStream.carriedOn(body, continueStream(chunks, reader)) }
}

/** The reader's next piece, or a CLIENT_BODY_TIMEOUT failure (the body cancelled) after `ms`. */
function withinMs(reader: BodyReader, ms: number): Promise<{ done: boolean; value?: Uint8Array }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = Object.assign(new Error(`no request body bytes for ${ms}ms`), { code: 'CLIENT_BODY_TIMEOUT', ownTimer: true })
      // Rejected first: the cancel ends the pending read as 'done', which must not win the race.
      reject(err)
      reader.cancel(err).catch(() => {})
    }, ms)
  })
  return Promise.race([reader.read(), stalled]).finally(() => clearTimeout(timer))
}

/** The part of a default reader that continueStream uses. */
interface BodyReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>
  cancel(reason?: unknown): Promise<void>
}

/** A stream of the chunks already read, followed by what `reader` still has; cancelling it cancels the client's body. */
function continueStream(head: Uint8Array[], reader: BodyReader): ReadableStream<Uint8Array> {
  let i = 0
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (i < head.length) {
          controller.enqueue(head[i]!)
          head[i++] = EMPTY // let it be collected once sent
          return
        }
        const { done, value } = await reader.read()
        if (done || !value) controller.close()
        else controller.enqueue(value)
      },
      cancel(reason) {
        return reader.cancel(reason)
      },
    },
    { highWaterMark: 0 },
  )
}

const EMPTY = new Uint8Array(0)

