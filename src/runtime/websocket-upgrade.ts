/**
 * The runtime's server-side WebSocket upgrade where the listener gives no raw connection (Deno:
 * Deno.upgradeWebSocket). Only the call and its type live here; the relay to the upstream is
 * proxy/downstream/runtime-websocket.ts. undefined where the runtime has no such call (Bun: its
 * own listener tunnels bytes instead).
 */
import { isDeno } from './detect.ts'

interface DenoUpgradeNs {
  upgradeWebSocket(req: Request, options?: { protocol?: string; idleTimeout?: number }): { socket: WebSocket; response: Response }
}

export function upgradeWebSocket(req: Request, protocol: string | undefined): { socket: WebSocket; response: Response } | undefined {
  if (!isDeno) return undefined
  const Deno = (globalThis as unknown as { Deno: DenoUpgradeNs }).Deno
  // idleTimeout 0: no server pings of Deno's own; the upstream's pings are relayed as the peer's.
  return Deno.upgradeWebSocket(req, protocol ? { protocol, idleTimeout: 0 } : { idleTimeout: 0 })
}
