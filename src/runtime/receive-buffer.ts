/**
 * Caps a socket's kernel receive buffer (SO_RCVBUF), which caps how many bytes one read can
 * return, and the policy of when reads are small or large (ReadSizer). Which sockets get one is
 * their owners' (socket.ts for upstream connections, proxy/downstream/client-connection.ts for
 * clients); the writes that tell it whether the peer keeps up are the body pumps'.
 *
 * Why: Bun reads a socket into a 512 KiB buffer (uSockets' LIBUS_RECV_BUFFER_LENGTH) and hands
 * each read to JavaScript as a fresh Buffer, so one read can be 512 KiB (measured: a 4 MiB body
 * from nginx on loopback came in 8 reads of 512 KiB). Pausing a socket stops the next read, not
 * the one already made, so a paused slow reader still holds one read in user space. Bun has no
 * API for the receive buffer or the read size; the socket's file descriptor (`socket.fd`) and
 * libc's setsockopt through bun:ffi do it. Linux only (the option's numbers are Linux's); where
 * it cannot be set, reads stay at up to 512 KiB and setReceiveBuffer returns false.
 *
 * Linux doubles the value given (socket(7)), and a set SO_RCVBUF turns off receive-buffer
 * autotuning for that socket: the TCP window it advertises stays near the value, which bounds
 * one connection's throughput to about window / RTT. The window is also held by the socket's
 * window clamp, set when the connection opened and raised since only by autotuning, which the
 * set SO_RCVBUF turned off: raising SO_RCVBUF later does not raise it (measured with `ss -i`:
 * rcv_ssthresh stayed at 126 KiB after the widening), so the widening raises TCP_WINDOW_CLAMP
 * too (tcp(7)).
 */
import { isBun } from './detect.ts'

/** The SO_RCVBUF value the proxy asks for; Linux keeps twice this, so one read is at most ~2x. */
export const RECEIVE_BUFFER_BYTES = 64 * 1024
/** Once the reader has shown it keeps up: large enough that reads are Bun's 512 KiB again. */
export const LARGE_RECEIVE_BUFFER_BYTES = 2 * 1024 * 1024
/**
 * Bytes the peer takes whole, in a row, before reads are made large. More than the kernel's send
 * buffer can take (tcp_wmem's maximum is 4 MiB by default), so a peer that reads slowly from the
 * start never gets there: measured, 500 such readers took ~1 MB each before they stalled.
 */
export const WIDEN_AFTER_BYTES = 8 * 1024 * 1024
/**
 * A connection whose measured round trip is this long or longer is far: its reads are left to the
 * kernel's receive-buffer autotuning from the start (no SO_RCVBUF), which opens the window as fast
 * as the reader takes bytes and no faster. Below it the small buffer's window (~93-126 KiB) still
 * carries about 50 MB/s or more, so the bound on reads costs nothing; above it the small window is
 * the limit (measured over a 100 ms link, scripts/far-link.ts: a fresh upstream connection moved
 * 4 MiB in 5.4 s where nginx took 0.4 s). Loopback and a LAN measure tens to hundreds of µs.
 */
export const FAR_RTT_US = 2000

// <asm-generic/socket.h>: the same on x86_64 and arm64.
const SOL_SOCKET = 1
const SO_RCVBUF = 8
const SO_RCVBUFFORCE = 33
// <netinet/tcp.h>, the same on every Linux architecture.
const IPPROTO_TCP = 6
const TCP_WINDOW_CLAMP = 10
const TCP_INFO = 11
/** Byte offsets of struct tcp_info's fields in <linux/tcp.h>: the window threshold advertised now. */
export const TCP_INFO_RCV_SSTHRESH = 64
/** ... and the smoothed round trip, µs. */
export const TCP_INFO_RTT = 68

type SetSockOpt = (fd: number, level: number, name: number, value: Int32Array, length: number) => number
type GetSockOpt = (fd: number, level: number, name: number, value: Uint8Array, length: Uint32Array) => number

/**
 * One function of the C library through bun:ffi (`args` as FFIType names), from the first libc
 * that loads (glibc, musl on x86_64 or arm64); null off Linux, off Bun, or when none has it.
 * Also used by the tests to read tcp_info.
 */
export function libcFunction<F>(symbol: string, args: string[], returns: string): F | null {
  if (!isBun || process.platform !== 'linux') return null
  try {
    const ffi = (import.meta as unknown as { require(id: string): typeof import('bun:ffi') }).require('bun:ffi')
    const types = ffi.FFIType as unknown as Record<string, import('bun:ffi').FFIType>
    for (const name of ['libc.so.6', 'libc.musl-x86_64.so.1', 'libc.musl-aarch64.so.1']) {
      try {
        const lib = ffi.dlopen(name, { [symbol]: { args: args.map((a) => types[a]!), returns: types[returns]! } })
        return lib.symbols[symbol] as unknown as F
      } catch {
        // not this libc
      }
    }
  } catch {
    // no FFI in this runtime
  }
  return null
}

let setsockopt: SetSockOpt | null | undefined

function load(): SetSockOpt | null {
  if (setsockopt === undefined) setsockopt = libcFunction<SetSockOpt>('setsockopt', ['i32', 'i32', 'i32', 'ptr', 'u32'], 'i32')
  return setsockopt
}

const value = new Int32Array(1)

/**
 * Sets an integer socket option through libc's setsockopt on a Bun socket's file descriptor
 * (`fd`, which Bun's types omit); false when it could not be set. Also used by send-backlog.ts.
 */
export function setSocketOption(socket: object, level: number, name: number, optionValue: number): boolean {
  const fd = (socket as { fd?: unknown }).fd
  if (typeof fd !== 'number' || fd < 0) return false
  const fn = load()
  if (!fn) return false
  value[0] = optionValue
  return fn(fd, level, name, value, 4) === 0
}

let getsockopt: GetSockOpt | null | undefined
const tcpInfo = new Uint8Array(232)
const tcpInfoView = new DataView(tcpInfo.buffer)
const tcpInfoLength = new Uint32Array(1)

/**
 * One 32-bit field of a connected Bun socket's struct tcp_info (TCP_INFO_*: an offset); undefined
 * where it cannot be read (off Linux, off Bun, a closed socket).
 */
export function tcpInfoField(socket: object, offset: number): number | undefined {
  const fd = (socket as { fd?: unknown }).fd
  if (typeof fd !== 'number' || fd < 0) return undefined
  if (getsockopt === undefined) getsockopt = libcFunction<GetSockOpt>('getsockopt', ['i32', 'i32', 'i32', 'ptr', 'ptr'], 'i32')
  if (!getsockopt) return undefined
  tcpInfoLength[0] = tcpInfo.byteLength
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, tcpInfo, tcpInfoLength) !== 0 || tcpInfoLength[0]! < offset + 4) return undefined
  return tcpInfoView.getUint32(offset, true)
}

/**
 * Sets SO_RCVBUF on a Bun socket to `bytes`; false when it could not be set (the socket still
 * works, with reads of up to 512 KiB).
 */
export function setReceiveBuffer(socket: object, bytes: number = RECEIVE_BUFFER_BYTES): boolean {
  return setSocketOption(socket, SOL_SOCKET, SO_RCVBUF, bytes)
}

/**
 * The round trip the kernel measured on a connected Bun socket (from the handshake on a new
 * connection), ms, when it is FAR_RTT_US or longer; 0 for a near one, or where it is unknown.
 */
export function farRoundTripMs(socket: object): number {
  const rttUs = tcpInfoField(socket, TCP_INFO_RTT)
  return rttUs !== undefined && rttUs >= FAR_RTT_US ? rttUs / 1000 : 0
}

/**
 * The read size of one socket whose bytes are forwarded to a peer: small from the start, large
 * for good once the peer has taken WIDEN_AFTER_BYTES whole in a row (over several responses of a
 * kept-alive connection too). Small reads bound what a slow peer leaves in user space; they cost
 * CPU on a fast path (bench-peers, c=16 1 MiB: 1026 against 643 µs per request with reads small
 * throughout). It never shrinks again: a receive buffer made smaller than the window already
 * advertised makes the kernel drop arriving segments (measured: c=1 100 MiB fell to ~200 MiB/s
 * when it toggled), and a peer that stalls after it was fast leaves one read in user space either
 * way, then at most 512 KiB.
 *
 * A far connection (round trip >= FAR_RTT_US when the sizer is made) is left to the kernel's
 * autotuning instead: the window a far origin needs (rate x round trip) opens as the bytes are
 * taken, as nginx's upstream sockets do, and it stays small while a slow peer holds the reads
 * back. What a peer that stalls leaves in user space there is one read, at most 512 KiB, as after
 * the widening here.
 */
export class ReadSizer {
  private large = false
  private wholeBytesInARow = 0

  constructor(
    private readonly socket: object,
    /**
     * The peers the bytes go to bound their sockets' unsent backlog (send-backlog.ts): a write
     * taken only in part then says the peer is that bound behind, not that it is slow, and does
     * not start the count again. A peer cannot take much more than it reads plus that bound.
     */
    private readonly peerBacklogBounded = false,
  ) {
    if (farRoundTripMs(socket) > 0) this.large = true
    else setReceiveBuffer(socket)
  }

  /** The peer was given `bytes` read here: `whole` when its socket took them all at once. */
  wrote(whole: boolean, bytes: number): void {
    if (this.large) return
    if (!whole && !this.peerBacklogBounded) {
      this.wholeBytesInARow = 0
      return
    }
    if ((this.wholeBytesInARow += bytes) < WIDEN_AFTER_BYTES) return
    this.large = true
    // SO_RCVBUF is capped at net.core.rmem_max (208 KiB on a stock kernel: a window of ~346 KiB);
    // a proxy with CAP_NET_ADMIN (root) gets the whole size, others keep the cap (README).
    if (!setSocketOption(this.socket, SOL_SOCKET, SO_RCVBUFFORCE, LARGE_RECEIVE_BUFFER_BYTES)) setReceiveBuffer(this.socket, LARGE_RECEIVE_BUFFER_BYTES)
    // The clamp from when the connection opened would hold the window at ~126 KiB (see above); the
    // kernel still bounds the window by the buffer's free space.
    setSocketOption(this.socket, IPPROTO_TCP, TCP_WINDOW_CLAMP, 2 * LARGE_RECEIVE_BUFFER_BYTES)
  }
}
