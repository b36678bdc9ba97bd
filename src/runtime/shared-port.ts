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
