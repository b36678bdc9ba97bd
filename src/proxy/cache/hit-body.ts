/**
 * The body of a cache hit that the listener streams over time (larger than SLICE_BYTES, for the
 * own listeners, which keep its Content-Length): views of the stored body, one slice per read,
 * with the body pinned in the store (store.ts pin) from the first read until the reply ends,
 * read to its end or cancelled (the client gone, send_timeout, an HTTP/2 reset or the connection
 * closed: the listeners cancel a body they stop reading). A stored body evicted, replaced or
 * purged while slow readers take it then stays charged to max_size until the last of them ends.
 * Smaller bodies go out in one write and are left as they are (nothing extra per hit).
 *
 * The last SLICE_BYTES go as a copy: a listener reads the end once what it queued is below its
 * high-water mark (HTTP/1.1: nothing queued; HTTP/2: under a stream's 64 KiB), and bytes still
 * queued then are views of that copy, not of the stored body, which the unpin no longer counts.
 */
import { SLICE_BYTES } from '../../http1/body-stream.ts'
import type { ProxyReply } from '../message.ts'
import type { CacheEntry, CacheStore } from './store.ts'

/** `reply` (made from `entry`), its body streamed pinned when it is one the listener streams anyway. */
export function pinWhileRead(reply: ProxyReply, store: CacheStore, entry: CacheEntry, streamKeepsLength: boolean | undefined): ProxyReply {
  const body = reply.body
  if (streamKeepsLength === true && body instanceof Uint8Array && body.byteLength > SLICE_BYTES) reply.body = pinnedSlices(store, entry, body)
  return reply
}

/** `bytes` (all or part of `entry`'s body) as a stream of views, `entry` pinned from the first read to the end or a cancel; released once. */
export function pinnedSlices(store: CacheStore, entry: CacheEntry, bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0
  let state: 'unread' | 'pinned' | 'ended' = 'unread'
  const end = (): void => {
    if (state === 'pinned') store.unpin(entry)
    state = 'ended'
  }
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (state === 'ended') return c.close()
        if (state === 'unread') {
          state = 'pinned'
          store.pin(entry)
        }
        if (at >= bytes.byteLength) {
          end()
          return c.close()
        }
        const tailAt = bytes.byteLength - SLICE_BYTES
        if (at >= tailAt) {
          c.enqueue(bytes.slice(at))
          at = bytes.byteLength
          return
        }
        const next = Math.min(at + SLICE_BYTES, tailAt)
        c.enqueue(bytes.subarray(at, next))
        at = next
      },
      cancel: end,
    },
    { highWaterMark: 0 },
  )
}
