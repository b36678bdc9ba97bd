/**
 * A listening port the proxy shares with its own next listener on it (SO_REUSEPORT, Linux), so
 * that a reload needing a new listening socket (a new certificate: Bun.listen's TLS is fixed at
 * creation; HTTP/2 turned on or off) opens it before the old one closes. Without it the old
 * socket had to let go of the port first, and a connection arriving in between was refused.
 *
 * Sharing a port must not let a second proxy started on it by mistake split the traffic in
 * silence, as SO_REUSEPORT would allow (for one user's processes): the address is claimed once
 * without it (claimPort), so that start still fails with "address in use".
 *
 * The port is then open to any process of this user that sets SO_REUSEPORT too (as with
 * --workers before): such a process would take a share of the connections. Other proxies are
 * kept out by a lock (lockAddress); a different program run by the same user is not.
 *
 * Connections already in the old socket's accept queue when it closes are reset by the kernel,
 * unless net.ipv4.tcp_migrate_req is 1 (Linux 5.14+), which moves them to the new socket.
 * Measured here: 3,000 connections in a burst at two listeners of one port, the first closed
 * half-way: 513 lost with the setting at 0, none at 1.
 */
import { readFileSync } from 'node:fs'
import { isBun } from './detect.ts'

/** Where a reload can open its new listener beside the old one: the own listener (Bun) on Linux. */
export const canSharePort: boolean = isBun && process.platform === 'linux'

/**
 * Listens on hostname:port alone for a moment and lets go: throws what the runtime throws when
 * the address is taken (or not this machine's), else returns the port (for port 0, the one the
 * kernel chose, which the shared listener then takes).
 */
export function claimPort(hostname: string, port: number): number {
  const probe = Bun.listen({ hostname, port, socket: { data() {} } })
  const chosen = probe.port
  probe.stop(true)
  return chosen
}

/** Whether Linux moves a closing listener's queued connections to another of its port (net.ipv4.tcp_migrate_req); undefined where it cannot be read. */
export function migratesQueuedConnections(): boolean | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() !== '0'
  } catch {
    return undefined
  }
}

/**
 * A lock on a listening address among this machine's proxy processes, held while this one
 * listens there: an abstract Unix socket named after it (Linux; no file, let go when the process
 * ends, however it ends). With it, two proxies started at the same moment cannot both pass the
 * claim: each took the port alone for a moment, let go, then listened with SO_REUSEPORT, and in
 * 1 of 80 tries in review both listened and split the traffic without a word. Returns how to
 * let go; throws (the runtime's "Failed to listen") when another process holds it.
 */
export function lockAddress(hostname: string, port: number): () => void {
  const lock = Bun.listen({ unix: `\0proxy-listen:${hostname}:${port}`, socket: { data() {} } })
  lock.unref() // it does not keep the process alive: a supervisor's exit, a test's end
  return () => lock.stop(true)
}

/**
 * The address locks of one process's listener (ProxyServer): claim() takes the lock and the port
 * for an address (a start, a reload that moves the listener), settle() lets go of every lock but
 * the address listened on now (after a reload, done or failed), close() of all.
 */
export class AddressLocks {
  private readonly held = new Map<string, () => void>()

  /** The lock, then the port alone for a moment (claimPort); returns the port. Port 0: the kernel's choice, locked once chosen. */
  claim(hostname: string, port: number): number {
    if (port === 0) {
      const chosen = claimPort(hostname, 0)
      this.hold(hostname, chosen)
      return chosen
    }
    // This process listens on the port already (a reload from 127.0.0.1:P to 0.0.0.0:P, [::1]:P to [::]:P): the probe would
    // meet its own socket ("address in use"; nginx fails these reloads too); the new one opens beside it, as on the same address.
    const ownPort = [...this.held.keys()].some((k) => k.endsWith(`:${port}`))
    const release = this.hold(hostname, port)
    if (ownPort) return port
    try {
      return claimPort(hostname, port)
    } catch (err) {
      release()
      throw err
    }
  }

  settle(hostname: string, port: number): void {
    for (const [key, release] of this.held) if (key !== `${hostname}:${port}`) void (release(), this.held.delete(key))
  }

  close(): void {
    for (const release of this.held.values()) release()
    this.held.clear()
  }

  private hold(hostname: string, port: number): () => void {
    const key = `${hostname}:${port}`
    const existing = this.held.get(key)
    if (existing) return () => {}
    let release: () => void
    try {
      release = lockAddress(hostname, port)
    } catch (err) {
      // Only "in use" is another proxy; where abstract sockets are not allowed (a sandbox), the claim goes on without the lock.
      if ((err as { code?: unknown }).code !== 'EADDRINUSE') return () => {}
      throw Object.assign(new Error(`another proxy process listens on ${key} (or is starting there)`), { code: 'EADDRINUSE', cause: err })
    }
    this.held.set(key, release)
    return () => void (release(), this.held.delete(key))
  }
}
