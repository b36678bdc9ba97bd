/**
 * Bounds the bytes a socket's kernel send queue holds that have not been sent yet
 * (TCP_NOTSENT_LOWAT, Linux 3.12+), and when that bound is raised (SendBacklog). Which sockets
 * get one is their owners' (proxy/downstream/reply-writer.ts for client sockets); the option
 * goes through receive-buffer.ts's setsockopt.
 *
 * Why: Linux grows a socket's send buffer by itself (tcp_wmem, up to 4 MiB), and a client that
 * advertises a tiny window and reads a few bytes a second still gets ~1 MB accepted into its
 * socket within the first second (measured with `ss`, 500 `slowhttptest -X` readers). That is
 * kernel memory, but on its way it passes through user space as one fresh buffer per socket
 * read: ~500 MB of short-lived buffers in the first seconds, faster than the garbage collector
 * and the allocator give them back (the proxy's RSS peaked 50 to 105 MiB over idle). With the
 * option set, write() stops taking bytes once that many wait unsent (the socket reports
 * writable again below half of it; tcp(7)), so a slow reader is handed the bound plus its
 * window, not ~1 MB. Bytes in flight are not counted, so the congestion window, and with it a
 * distant fast client's throughput, is not limited. What a small bound costs is more writable
 * events per byte, so it is raised for good once the client has taken RAISE_AFTER_BYTES.
 * Where the proxy reads the bytes from also needs to know that a write taken in part is not a
 * slow client (receive-buffer.ts, peerBacklogBounded).
 */
import { setSocketOption } from './receive-buffer.ts'

/** Unsent bytes a client socket takes before write() stops taking more, at first. */
export const SEND_BACKLOG_BYTES = 64 * 1024
/** The bound once the client has shown it reads: room for two of the largest reads (512 KiB). */
export const LARGE_SEND_BACKLOG_BYTES = 1024 * 1024
/**
 * Bytes handed to the socket before the bound is raised: with the bound in place, a client can
 * only have taken that many by reading most of them (what is unsent is at most the bound, what
 * is in flight at most its window).
 */
export const RAISE_AFTER_BYTES = 2 * 1024 * 1024

// <netinet/tcp.h>, the same on every Linux architecture.
const IPPROTO_TCP = 6
const TCP_NOTSENT_LOWAT = 25

/**
 * The unsent-backlog bound of one socket: small from the start, large for good once
 * RAISE_AFTER_BYTES have been handed to it (over several responses of a kept-alive connection
 * too). Where the option cannot be set (setSocketOption does nothing off Linux or without FFI)
 * the kernel's own sizing stays.
 */
export class SendBacklog {
  private handedBytes = 0

  constructor(private readonly socket: object) {
    setSocketOption(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT, SEND_BACKLOG_BYTES)
  }

  /** `bytes` of a body were handed to the socket (taken, or queued until it drains). */
  wrote(bytes: number): void {
    if (this.handedBytes >= RAISE_AFTER_BYTES) return
    if ((this.handedBytes += bytes) < RAISE_AFTER_BYTES) return
    setSocketOption(this.socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT, LARGE_SEND_BACKLOG_BYTES)
  }
}
