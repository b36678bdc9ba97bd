/** A manual clock for resolver unit tests: timers fire only when advance() passes them. */
import type { Clock } from '../../src/proxy/upstream/resolver.ts'

export class FakeClock implements Clock {
  private t = 1_000_000
  private timers = new Map<number, { at: number; fn: () => void }>()
  private nextId = 1

  now(): number {
    return this.t
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
