/**
 * Loops through the proxy itself: an upstream address that is this proxy's own listener (DNS
 * answering with the proxy's address, or an upstream URL naming its listen port) would send each
 * request back into the proxy, which forwards it again: one request became ~1,470 hops and a 431
 * once Via had filled the head, or, with via = "off", every file descriptor (503 for every other
 * client). nginx, HAProxy and Envoy dial such an address; this proxy does not: a dial to its own
 * listener fails at once as UPSTREAM_LOOP (a 502, an address failure: the request goes to
 * another address, and this one is ejected as one that refuses). Checked per new connection, not
 * per request. An address that reaches the listener by another path (a NAT port mapping, another
 * host's hairpin) is not seen here.
 */
import { lookup } from 'node:dns'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { HostPort } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { hostPort } from '../../lib/net.ts'
import { dial as defaultDial, type Conn, type DialOptions } from '../../runtime/socket.ts'
import { RequestFailure } from '../errors.ts'

/** The machine's own addresses are read again at most this often (an address added to an interface is seen within it). */
const LOCAL_ADDRESSES_FOR_MS = 5_000
/** One log line per this long at most, per upstream. */
const LOG_EVERY_MS = 10_000

/** A listen host given as a name whose lookup failed is looked up again at a dial after this long. */
const LISTEN_NAME_RETRY_MS = 5_000

/**
 * One text per address: IPv6 as the URL parser writes it (lower case, zeros compressed, without
 * the brackets a listen host may have), and an IPv4-mapped one as its IPv4 address, in either
 * form ("::ffff:127.0.0.1", "::ffff:7f00:1": the resolver writes an AAAA of it the second way).
 */
function plain(address: string): string {
  let a = address.replace(/^\[|\]$/g, '').toLowerCase().split('%')[0]!
  if (isIP(a) !== 6) return a
  try {
    a = new URL(`http://[${a}]/`).hostname.slice(1, -1)
  } catch {
    return a
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a)
  if (!mapped) return a
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)]
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/**
 * The address a listen host given as a name was bound to: its first address as the system
 * resolves it (getaddrinfo, as the listener's bind did), looked up when a listener opens on it
 * (listenedAt: at the start, and at a reload that opens a new one), and kept until the next, as
 * the listener keeps its address (a name that later resolves elsewhere, or not at all, is still
 * bound where it was). Undefined until the answer; a failed lookup is tried again at a dial after
 * LISTEN_NAME_RETRY_MS.
 */
const named = new Map<string, { address: string | undefined; atMs: number; pending: boolean }>()
function boundAddressOf(host: string): string | undefined {
  if (host === '' || isIP(host)) return host
  let entry = named.get(host)
  if (!entry || (entry.address === undefined && !entry.pending && performance.now() - entry.atMs > LISTEN_NAME_RETRY_MS)) {
    const e = (entry ??= { address: undefined, atMs: 0, pending: false })
    named.set(host, e)
    e.pending = true
    lookup(host, (err, address) => void ((e.pending = false), (e.atMs = performance.now()), err || (e.address = plain(address))))
  }
  return entry.address
}

/** A listener opens on `server.listen` now: a name is looked up again (its last address forgotten: a moved name is not refused where it was). Returns `server`. */
export function listenedAt<T extends { listen: HostPort }>(server: T): T {
  const host = plain(server.listen.host)
  if (host !== '' && !isIP(host)) void (named.delete(host), boundAddressOf(host))
  return server
}

let local: { set: Set<string>; atMs: number } | undefined
function isLocalAddress(address: string): boolean {
  if (address.startsWith('127.') || address === '0.0.0.0' || address === '::' || address === '::1') return true
  const now = performance.now()
  if (!local || now - local.atMs > LOCAL_ADDRESSES_FOR_MS) {
    const set = new Set<string>()
    try {
      for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(plain(i.address))
    } catch {
      // Not allowed to read them (Deno without --allow-sys): loopback and the unspecified addresses only.
    }
    local = { set, atMs: now }
  }
  return local.set.has(address)
}

/**
 * Whether a connection to `address`:`port` would reach the listener at `listen` (its host as
 * configured, its port as bound): the same address, or any address of this machine where it
 * listens on every address ("0.0.0.0"; "::" takes IPv4 too).
 */
export function reachesListener(address: string, port: number, listen: HostPort): boolean {
  if (port !== listen.port || port === 0) return false
  // The unspecified address as a destination is this host: Linux connects 0.0.0.0 to 127.0.0.1 and :: to ::1.
  const a = (a0 => (a0 === '0.0.0.0' ? '127.0.0.1' : a0 === '::' ? '::1' : a0))(plain(address))
  const host = plain(listen.host)
  if (host === '0.0.0.0') return isIP(a) === 4 && isLocalAddress(a)
  if (host === '::' || host === '') return isLocalAddress(a)
  return a === boundAddressOf(host)
}

/**
 * A dial (`dial`, the runtime's by default) that refuses an address that is the proxy's own
 * listener (`listen()`: its host as configured, its port as bound, 0 while it does not listen)
 * with UPSTREAM_LOOP, said in the log once per LOG_EVERY_MS. A listen name's address is looked up
 * when the listener opens (listenedAt), not here.
 */
export function loopGuardedDial(listen: () => HostPort, upstream: string, log?: LogFn, dial: (opts: DialOptions) => Promise<Conn> = defaultDial): (opts: DialOptions) => Promise<Conn> {
  let loggedAtMs = -Infinity
  return (opts) => {
    const own = listen()
    if (!reachesListener(opts.address, opts.port, own)) return dial(opts)
    const target = hostPort(opts.address, opts.port)
    const listening = hostPort(own.host, own.port)
    const message = `${target} is this proxy's own listener (${listening}): a request sent there would come back to the proxy; point the upstream (or its DNS name) at the origin`
    const now = performance.now()
    if (now - loggedAtMs >= LOG_EVERY_MS) {
      loggedAtMs = now
      log?.('error', 'upstream address is this proxy itself: not dialled', { upstream, address: target, listen: listening })
    }
    return Promise.reject(new RequestFailure('UPSTREAM_LOOP', 'connect', message, { address: opts.address }))
  }
}
