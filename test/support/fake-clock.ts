/**
 * Manual clocks for resolver unit tests: the monotonic one moves only with advance(), and timers
 * fire only when it passes them; the wall clock moves with it, and stepWall() steps it alone, as
 * NTP, an operator or a resumed VM would.
 */
import type { Clock } from '../../src/proxy/upstream/resolver.ts'

export class FakeClock implements Clock {
  private t = 1_000_000
  /** The wall clock less the monotonic one: 2030-01-01T00:00:00Z at the start; stepWall changes it. */
  private wallOffsetMs = Date.UTC(2030, 0, 1) - 1_000_000
  private timers = new Map<number, { at: number; fn: () => void }>()
  private nextId = 1

  monoMs(): number {
    return this.t
  }
  wallMs(): number {
    return this.t + this.wallOffsetMs
  }
  /**
   * The wall clock under the name of the one-clock seam the resolver had before (now()): code that
   * still times durations on the wall clock then sees the steps, and fails the clock-step tests.
   */
  now(): number {
    return this.wallMs()
  }
  /** Steps the wall clock by `ms` (negative: back); the monotonic clock and the timers do not move. */
  stepWall(ms: number): void {
    this.wallOffsetMs += ms
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++
    this.timers.set(id, { at: this.t + ms, fn })
    return id
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }
  /** The time of the next pending timer, if any. */
  nextAt(): number | undefined {
    let min: number | undefined
    for (const t of this.timers.values()) if (min === undefined || t.at < min) min = t.at
    return min
  }
  /** Moves time forward, firing due timers in order; awaits microtasks between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms
    for (let guard = 0; guard < 10_000; guard++) {
      let due: [number, { at: number; fn: () => void }] | undefined
      for (const e of this.timers) if (e[1].at <= end && (!due || e[1].at < due[1].at)) due = e
      if (!due) break
      this.timers.delete(due[0])
      this.t = Math.max(this.t, due[1].at)
      due[1].fn()
      await flush()
    }
    this.t = end
    await flush()
  }
}

export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}
