/**
 * Waits on a peer that may never move, timed by one sweep for all of them that runs only while
 * some are watched: a client that takes no response bytes (send_timeout: reply-writer.ts, the
 * HTTP/2 body pump) and an upgrade tunnel silent both ways (idle_timeout: upgrade/tunnel.ts). No
 * timer per wait, and none at all when nothing waits.
 */
import { monoNow } from './clock.ts'

export interface StallWatch {
  /** monoNow() of the last progress; the owner moves it on progress, or `progressed` says so. */
  since: number
  /** How long without progress before `expire`. */
  limitMs: number
  /** Asked at each sweep, where progress is counted rather than timed: true moves `since` to now. */
  progressed?(): boolean
  /** The limit passed: called once, and the watch is dropped. */
  expire(): void
}

/** How often watches are checked: a stall is noticed up to this much late. */
export const STALL_SWEEP_MS = 250

const watched = new Set<StallWatch>()
let timer: ReturnType<typeof setInterval> | undefined

function sweep(): void {
  const now = monoNow()
  for (const w of watched) {
    if (w.progressed?.()) w.since = now
    else if (now - w.since >= w.limitMs) {
      watched.delete(w)
      w.expire()
    }
  }
  stopIfIdle()
}

function stopIfIdle(): void {
  if (watched.size > 0 || timer === undefined) return
  clearInterval(timer)
  timer = undefined
}

/** Watches `w` (again) from now on. */
export function watchStall(w: StallWatch): void {
  watched.add(w)
  if (timer !== undefined) return
  timer = setInterval(sweep, STALL_SWEEP_MS)
  // A sweep alone never keeps the process alive.
  ;(timer as { unref?: () => void }).unref?.()
}

/** Stops watching `w` (a no-op when it is not watched). */
export function unwatchStall(w: StallWatch): void {
  if (watched.delete(w)) stopIfIdle()
}
