/**
 * Why a listener could not open, said once for every place that binds a port: the proxy's
 * listener, the admin listener, and the worker supervisor's check before it starts workers.
 * Bun.listen, Bun.serve, node:net and Deno.serve all report the OS error differently (Bun.serve's
 * message is "Is port N in use?", Bun.listen's is "Failed to listen at HOST"); the code is what
 * they share, so the words come from the code. The errors are E_LISTEN (exit 3).
 */
import { ProxyError } from './errors.ts'
import { cidrContains, parseCidr } from './cidr.ts'
import { isIP } from 'node:net'
import { hostPort } from './net.ts'
import type { HostPort } from '../config/schema.ts'

const LINK_LOCAL = parseCidr('fe80::/10')!

/** Which listener failed: it decides the flag (and config key) the message tells the user to change. */
export type ListenerRole = 'proxy' | 'admin'

/** Deno names its errors instead of setting an errno code. */
const DENO_NAMES: Record<string, string> = { AddrInUse: 'EADDRINUSE', AddrNotAvailable: 'EADDRNOTAVAIL', PermissionDenied: 'EACCES' }

/** The OS error code of a failed listen (EADDRINUSE, ...), whichever runtime threw it. */
export function listenErrorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined
  const { code, name } = err as { code?: unknown; name?: unknown }
  if (typeof code === 'string' && code.startsWith('E')) return code
  return typeof name === 'string' ? DENO_NAMES[name] : undefined
}

/** The reason in plain words: "address in use", ... or the runtime's own message for anything else. */
export function listenFailureReason(err: unknown): string {
  switch (listenErrorCode(err)) {
    case 'EADDRINUSE':
      return 'address in use'
    case 'EADDRNOTAVAIL':
      return 'address not available (no network interface of this machine has that IP)'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
    default:
      return err instanceof Error ? err.message : String(err)
  }
}

/**
 * The E_LISTEN error for a listener that did not open, naming the flag and config key to change.
 * `note` adds context the caller has (e.g. which worker's admin port it was); `setAt`, where the
 * config file set the address (ResolvedConfig.fileKeys: "proxy.toml:3: server.listen").
 */
export function listenError(role: ListenerRole, host: string, port: number, err: unknown, note?: string, setAt?: string): ProxyError {
  const where = hostPort(host, port)
  const inUse = listenErrorCode(err) === 'EADDRINUSE'
  // Bun says only "Failed to listen at fe80::1" (EINVAL): a link-local address is on every link.
  const linkLocal = listenErrorCode(err) === 'EINVAL' && !host.includes('%') && cidrContains(LINK_LOCAL, host)
  // Bun says only "Failed to listen at NAME" for a name its resolver does not know.
  const unresolvedName = listenErrorCode(err) === undefined && isIP(host) === 0 && host !== 'localhost'
  const reason = (linkLocal ? `a link-local IPv6 address (fe80::/10) needs its interface, as in [${host}%eth0]:${port}` : listenFailureReason(err)) + (unresolvedName ? ` (does ${host} resolve? an IP address, such as 0.0.0.0 or 127.0.0.1, needs no lookup)` : '') + (note ? ` (${note})` : '')
  // A flag's value is named by the flag the message gives; a file's by its line.
  const key = (name: string) => (setAt !== undefined && !setAt.startsWith('(flags)') ? setAt : `${name} in the config file`)
  const message =
    role === 'admin'
      ? `cannot listen on admin address ${where}: ${reason}; ${inUse ? 'another process (another proxy on this machine?) has it, and each instance needs its own admin port: ' : ''}choose another with --admin 127.0.0.1:<port> (${key('admin.listen')}), or turn it off with --admin off`
      : `cannot listen on ${where}: ${reason}; ${inUse ? `stop what holds that port (ss -tanp 'sport = :${port}' shows it: a listener, a connection from that port, or one in TIME-WAIT, which lets go within 60 s), or ` : ''}choose another address with --listen <host:port> (${key('server.listen')})`
  return new ProxyError('E_LISTEN', message, { cause: err })
}

const UNSPECIFIED: ReadonlySet<string> = new Set(['0.0.0.0', '::'])

/** Whether a socket on `a` and one on `b` would take the same port (a wildcard host covers every other). */
function samePort(a: HostPort | undefined, b: HostPort | undefined): boolean {
  return a !== undefined && b !== undefined && a.port !== 0 && a.port === b.port && (a.host === b.host || UNSPECIFIED.has(a.host) || UNSPECIFIED.has(b.host))
}

/**
 * A reload that moves the listener onto the port the admin listener holds, or the admin onto the
 * listener's (the two swapped, or one moved onto the other's): a reload opens each new socket
 * before it closes the old one (nothing half-applied), so that port is still this process's own
 * and the bind would fail with "address in use", which reads as another process's doing. Said as
 * what it is instead; undefined when the reload moves neither onto the other.
 */
export function ownPortClash(now: { listen: HostPort; admin: HostPort | undefined }, next: { listen: HostPort; admin: HostPort | undefined }): string | undefined {
  const how = 'a reload opens a new socket before it closes the old one, so one listener cannot take the other\'s port: move it to a free port first and onto this one in a second reload, or restart the proxy'
  if (next.admin && !samePort(next.admin, now.admin) && samePort(next.admin, now.listen)) return `admin.listen moves to ${hostPort(next.admin.host, next.admin.port)}, the port this proxy's listener (${hostPort(now.listen.host, now.listen.port)}) holds until the reload is through; ${how}`
  if (!samePort(next.listen, now.listen) && samePort(next.listen, now.admin)) return `server.listen moves to ${hostPort(next.listen.host, next.listen.port)}, the port this proxy's admin listener (${hostPort(now.admin!.host, now.admin!.port)}) holds until the reload is through; ${how}`
  return undefined
}
