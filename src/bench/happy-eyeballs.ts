/**
 * Connecting to one of a name's addresses as curl does (RFC 8305 Happy Eyeballs): the addresses
 * in turn, families interleaved (§4), the next one started once the one before has failed or has
 * not connected within ATTEMPT_DELAY_MS (§5), the first to connect wins and the others are
 * cancelled. Until the eighteenth round of outside reviews the bench waited out the whole timeout
 * on a first address whose SYNs were dropped, and never tried the name's other family that curl
 * reached in 20 ms. Generic over the attempt (dial.ts passes its TCP connect), so tested without
 * a network.
 */

/** RFC 8305 §5's recommended Connection Attempt Delay (curl's is 200 ms). */
export const ATTEMPT_DELAY_MS = 250

export interface Attempt<T> {
  done: Promise<T>
  /** Gives up the attempt (closes its socket); its promise then never settles. */
  cancel(): void
}

export interface Candidate {
  address: string
  family: 4 | 6
}

/**
 * The order to try `list` in (§4): the first address's family first, then alternating families,
 * each family in the order it came.
 */
export function interleaveFamilies<C extends Candidate>(list: readonly C[]): C[] {
  if (list.length < 2) return [...list]
  const first = list[0]!.family
  const same = list.filter((c) => c.family === first)
  const other = list.filter((c) => c.family !== first)
  const out: C[] = []
  for (let i = 0; i < Math.max(same.length, other.length); i++) {
    if (i < same.length) out.push(same[i]!)
    if (i < other.length) out.push(other[i]!)
  }
  return out
}

/**
 * The first of `candidates` to connect, with which one it was. A failure whose kind `moveOn`
 * accepts (a refusal, an unreachable network) starts the next address at once; any other ends
 * the race with it (the bench's own limits, such as no descriptor left); a timeout starts nothing
 * more (the time is spent). With every attempt failed, the last failure is the error.
 */
export function connectFirst<T, C extends Candidate>(candidates: readonly C[], attempt: (c: C) => Attempt<T>, moveOn: (err: unknown) => boolean, delayMs = ATTEMPT_DELAY_MS): Promise<{ value: T; candidate: C }> {
  return new Promise((resolve, reject) => {
    const pending = new Set<Attempt<T>>()
    let next = 0
    let over = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const end = () => {
      over = true
      clearTimeout(timer)
      for (const p of pending) p.cancel()
      pending.clear()
    }
    const start = (): void => {
      if (over || next >= candidates.length) return
      const candidate = candidates[next++]!
      const a = attempt(candidate)
      pending.add(a)
      clearTimeout(timer)
      if (next < candidates.length) timer = setTimeout(start, delayMs)
      a.done.then(
        (value) => {
          pending.delete(a)
          if (over) return
          end()
          resolve({ value, candidate })
        },
        (err: unknown) => {
          pending.delete(a)
          if (over) return
          if ((err as { kind?: string })?.kind === 'timeout') next = candidates.length
          else if (!moveOn(err)) {
            end()
            reject(err)
            return
          }
          if (next < candidates.length) start()
          else if (pending.size === 0) {
            end()
            reject(err)
          }
        },
      )
    }
    start()
  })
}
