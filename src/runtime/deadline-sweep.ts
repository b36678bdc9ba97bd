/**
 * Deadlines of many short-lived objects on one interval timer, instead of a timer made and
 * cleared per object: the upstream exchanges' response-head deadline (proxy/upstream/exchange.ts)
 * is armed for every proxied request and almost never fires. A deadline fires up to one tick
 * late. The timer runs only while something is registered and does not keep the process alive.
 * What a deadline means, and what expiring does, is the registrant's.
 */

export interface Expiring {
  /** performance.now() at or after which expire() is called. */
  readonly deadlineAt: number
  /** Called once, from the sweep, after which the object is no longer registered. */
  expire(): void
}

export class DeadlineSweep {
  private readonly entries = new Set<Expiring>()
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(readonly tickMs: number) {}

  /** Watches `e` until it expires or is deleted. */
  add(e: Expiring): void {
    this.entries.add(e)
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.sweep(), this.tickMs)
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  delete(e: Expiring): void {
    this.entries.delete(e)
  }

  get size(): number {
    return this.entries.size
  }

  /** Expires what is due; stops the timer when nothing is left to watch. */
  sweep(now: number = performance.now()): void {
    for (const e of this.entries) {
      if (now < e.deadlineAt) continue
      this.entries.delete(e)
      e.expire()
    }
    if (this.entries.size === 0) this.stop()
  }

  close(): void {
    this.entries.clear()
    this.stop()
  }

  private stop(): void {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
  }
}
