/**
 * Whether the kernel holds news of a socket's peer that its event handlers have not heard yet: a
 * FIN, a reset, or bytes (poll(2) with a zero timeout, through libc by bun:ffi). The upstream pool
 * asks it before it writes a request that may not be replayed (a POST) into a kept-alive
 * connection: an upstream that closed the connection as the request arrived leaves its FIN in the
 * kernel, and the close handler runs only later in the same round of socket events, after the
 * request was written (measured: test/integration/idle-close-race.test.ts, 502 before).
 * Linux on Bun; elsewhere it says false (nothing known), as for a socket without a descriptor.
 */
import { libcFunction } from './receive-buffer.ts'

// <poll.h>; POLLRDHUP is Linux's (the peer shut its writing half: a FIN).
const POLLIN = 0x001
const POLLERR = 0x008
const POLLHUP = 0x010
const POLLRDHUP = 0x2000

type Poll = (fds: Int32Array, count: number, timeoutMs: number) => number
let poll: Poll | null | undefined
/** One struct pollfd: int fd; short events; short revents (8 bytes). */
const pollFd = new Int32Array(2)
const pollEvents = new Int16Array(pollFd.buffer)

/** True when `socket` (a Bun socket: its `fd`) has a FIN, a reset or unread bytes waiting. */
export function peerHasNews(socket: object): boolean {
  const fd = (socket as { fd?: unknown }).fd
  if (typeof fd !== 'number' || fd < 0) return false
  // libcFunction is null off Linux and off Bun.
  if (poll === undefined) poll = libcFunction<Poll>('poll', ['ptr', 'u64', 'i32'], 'i32')
  if (!poll) return false
  pollFd[0] = fd
  pollEvents[2] = POLLIN | POLLRDHUP
  pollEvents[3] = 0
  if (poll(pollFd, 1, 0) <= 0) return false
  return (pollEvents[3]! & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) !== 0
}
