/**
 * The client-side listeners a reload replaced (a new certificate, address or HTTP/2 setting opens
 * a new socket) while they finish: idle connections get a grace, busy ones run until their
 * answers end. They are still the proxy's: their requests, tunnels and connections count toward
 * max_concurrent_requests, max_connections and /metrics beside the current listener's, and a
 * drain stops them with it (drain_timeout, then a cut). A reload used to forget them: a drain at
 * shutdown ended the process with their requests cut unanswered and unlogged, and the limits let
 * the old and new listeners take twice as much (an outside review, twenty-third session).
 */
import type { Listener } from '../runtime/listener.ts'

export class RetiredListeners {
  private readonly listeners = new Set<Listener>()

  /** `old` stops taking connections and keeps its idle ones `graceMs`; counted until it has closed all. */
  add(old: Listener | undefined, graceMs: number): void {
    if (old === undefined || this.listeners.has(old)) return
    this.listeners.add(old)
    void old.stop(false, graceMs).finally(() => this.listeners.delete(old))
  }

  get pendingRequests(): number {
    let n = 0
    for (const l of this.listeners) n += l.pendingRequests
    return n
  }

  get tunnels(): number {
    let n = 0
    for (const l of this.listeners) n += l.tunnels ?? 0
    return n
  }

  get connections(): number {
    let n = 0
    for (const l of this.listeners) n += l.connections ?? 0
    return n
  }

  /** A drain's stop (graceful: idle connections close now; forced: all now); resolves when every one has closed. */
  async stop(force: boolean): Promise<void> {
    await Promise.all([...this.listeners].map((l) => l.stop(force)))
  }
}
