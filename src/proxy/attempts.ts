/**
 * The one attempt loop, used by plain requests and upgrade tunnels alike: pick an address (never
 * awaiting DNS), run one attempt on it, and on failure try another address while that is safe,
 * within `retries` and the retry deadline (`retry_timeout`). A connect-level failure counts
 * against the address (ejection, an early re-resolve); a success clears its record. When nothing
 * healthy is left to try (the only address refused, or every address is ejected), the request
 * waits, within the deadline, for the rescue the failure set off: the re-resolve finishing with
 * a fresh set, or an address coming back; it never fails while an IP change is being picked up.
 * What one attempt does (acquire or dial, then exchange or tunnel) is the caller's; whether a
 * failure after the connect may be retried is the caller's too (RFC 9110 §9.2.2 for requests).
 */
import { RequestFailure } from './errors.ts'
import type { AddressState } from './upstream/address-state.ts'
import type { AddressSnapshot } from './upstream/address-source.ts'

const monotonicMs = () => performance.now()

/** What the loop needs of an upstream's pool. */
export interface AttemptTarget {
  readonly upstream: { readonly host: string; readonly retries: number; readonly retryTimeoutMs: number }
  readonly source: { snapshot(): AddressSnapshot; refreshNow(reason: string): void }
  pick(exclude?: ReadonlySet<string>): AddressState | undefined
  /** Whether `state` takes traffic now (not ejected, not failing its health checks). */
  takesTraffic(state: AddressState): boolean
  /** Waits (at most `timeoutMs`) for a re-resolve to finish or an ejection (outside `exclude`) to end; at once when none is coming. */
  waitForRescue?(timeoutMs: number, exclude?: ReadonlySet<string>): Promise<void>
  reportFailure(state: AddressState, err: RequestFailure): void
  reportSuccess(state: AddressState): void
}

export interface Attempt<T> {
  /**
   * One attempt on `state` (`index` 0 is the first): resolves with its result or rejects with a
   * RequestFailure. `fresh`: on a connection dialled for it, not an idle pooled one.
   */
  run(state: AddressState, index: number, fresh?: boolean): Promise<T>
  /** Whether a failure after the connect (something may have been sent) allows another attempt. */
  mayRetry(failure: RequestFailure): boolean
  /**
   * Whether `failure` says nothing of its address: a connection that closed before any answer
   * (a stale keep-alive connection, or an upstream going away: a new connection tells which).
   * Then the same address is tried once more, on a new connection, and that try does not count
   * against `retries` (nginx does not count a failed cached upstream connection either).
   */
  staleConnection?(failure: RequestFailure): boolean
}

export type AttemptOutcome<T> =
  | { ok: true; value: T; state: AddressState; retries: number }
  | { ok: false; failure: RequestFailure; state: AddressState | undefined; retries: number }

export function runAttempts<T>(target: AttemptTarget, attempt: Attempt<T>, nowMs: () => number = monotonicMs): Promise<AttemptOutcome<T>> {
  const deadline = nowMs() + target.upstream.retryTimeoutMs
  const first = pickFirst(target, attempt, deadline, nowMs)
  if (first instanceof Promise) return first
  let run: Promise<T>
  try {
    run = attempt.run(first, 0)
  } catch (err) {
    run = Promise.reject(err)
  }
  return run.then(
    (value) => firstSucceeded(target, first, value),
    (err: unknown) => firstFailed(target, attempt, first, err, deadline, nowMs),
  )
}

/*
 * The same loop in parts, for a caller that runs the first attempt itself, without a promise
 * (flight.ts: a request's first pick goes straight to its exchange): pickFirst picks, or hands
 * over to the loop when the pick is not one to try now; the first attempt's end goes to
 * firstSucceeded or firstFailed, which go on with the loop when that may be retried.
 */

/** The address of attempt 0; or, when the pick is not one to try now, the loop from attempt 0 (which waits for a rescue or fails). */
export function pickFirst<T>(target: AttemptTarget, attempt: Attempt<T>, deadline: number, nowMs: () => number = monotonicMs): AddressState | Promise<AttemptOutcome<T>> {
  const first = target.pick()
  if (first === undefined || !target.takesTraffic(first)) return attemptLoop(target, attempt, nowMs, deadline, 0, undefined, undefined, first)
  return first
}

/** A success, as AttemptOutcome gives it. */
export type AttemptSuccess<T> = Extract<AttemptOutcome<T>, { ok: true }>

/**
 * Attempt 0 on `state` gave `value`: the address's failure record is cleared. `into`, when given,
 * is filled and returned instead of a new outcome (for a caller that reads it at once).
 */
export function firstSucceeded<T>(target: AttemptTarget, state: AddressState, value: T, into?: AttemptSuccess<T>): AttemptOutcome<T> {
  target.reportSuccess(state)
  if (into === undefined) return { ok: true, value, state, retries: 0 }
  into.value = value
  into.state = state
  into.retries = 0
  return into
}

/** Attempt 0 on `state` failed with `err`: the outcome, or the loop from attempt 1 when another attempt is allowed. */
export function firstFailed<T>(target: AttemptTarget, attempt: Attempt<T>, state: AddressState, err: unknown, deadline: number, nowMs: () => number = monotonicMs): AttemptOutcome<T> | Promise<AttemptOutcome<T>> {
  const failure = failed(target, state, err)
  if (failure.phase !== 'connect' && !attempt.mayRetry(failure)) return { ok: false, failure, state, retries: 0 }
  return attemptLoop(target, attempt, nowMs, deadline, 1, state, failure)
}

/** The attempt loop from attempt `start` on, after `state` failed with `failure` (or from attempt 0, whose pick is `firstPick`). */
async function attemptLoop<T>(
  target: AttemptTarget,
  attempt: Attempt<T>,
  nowMs: () => number,
  deadline: number,
  start: number,
  state: AddressState | undefined,
  failure: RequestFailure | undefined,
  /** What runAttempts picked for attempt 0 (the loop does not pick it again). */
  firstPick?: AddressState,
): Promise<AttemptOutcome<T>> {
  const u = target.upstream
  // Addresses already tried; made on the first retry (most requests never need it).
  let tried: Set<string> | undefined
  let last = start > 0 ? start - 1 : 0
  // A connection that closed before any answer: the same address once more, on a new connection,
  // not counted (`free`). Were the address gone, that connect fails, counts against it (an early
  // re-resolve) and the loop waits for the rescue as after any connect failure.
  let again = failure !== undefined && attempt.staleConnection?.(failure) === true
  let free = again ? 1 : 0
  // The new connection of that once-more was cut before an answer too: the address may be going
  // (an origin killed as DNS moves away from it; one that accepts and closes every connection), so
  // it is counted against while another address takes traffic (its ejection then holds no request)
  // and a re-resolve is asked for in any case; with nothing else to try, the request waits for it
  // as after a connect failure. The only address is not counted: one URL whose handler kills its
  // connection ejected it, and every request was held for the ejection (seventeenth round).
  let dying = false
  for (let index = start; index <= u.retries + free; index++) {
    if (index > 0 && nowMs() > deadline) break
    if (state !== undefined && !again) (tried ??= new Set()).add(state.address)
    let next = index === 0 ? firstPick : again ? state : target.pick(tried)
    const fresh = again
    again = false
    // Nothing healthy to try: after a connect failure, or when every address is ejected at once (one
    // out only by its health checks is tried at once, as the picker tries one when all are out).
    if ((next === undefined || !target.takesTraffic(next)) && target.waitForRescue && (failure?.isAddressFailure || dying || (index === 0 && next !== undefined && next.activeHealthy))) {
      dying = false
      await target.waitForRescue(deadline - nowMs(), tried)
      next = target.pick(tried)
    }
    if (!next) break
    state = next
    last = index - free // retries: attempts on other addresses (the free one is not one)
    try {
      const value = await attempt.run(state, index, fresh)
      target.reportSuccess(state)
      return { ok: true, value, state, retries: last }
    } catch (err) {
      failure = failed(target, state, err)
      // A connect-phase failure sent nothing: another address is always safe.
      if (failure.phase !== 'connect' && !attempt.mayRetry(failure)) return { ok: false, failure, state, retries: last }
      const stale = attempt.staleConnection?.(failure) === true
      if (fresh && stale && !failure.isAddressFailure) {
        const other = target.pick(new Set([state.address]))
        if (other !== undefined && target.takesTraffic(other)) target.reportFailure(state, failure)
        else target.source.refreshNow(`a new connection to ${state.address} closed before an answer`)
        dying = true
      }
      if (free === 0 && stale) {
        again = true
        free = 1
      }
    }
  }
  if (failure) return { ok: false, failure, state, retries: last }
  return { ok: false, failure: noAddress(target), state, retries: 0 }
}

/** An attempt on `state` failed: the failure, counted against the address when it is the address's fault. */
function failed(target: AttemptTarget, state: AddressState, err: unknown): RequestFailure {
  const failure = asFailure(err, state.address)
  if (failure.isAddressFailure) target.reportFailure(state, failure)
  return failure
}

/** Why there was nothing to try: DNS has not answered yet, or every address is gone. */
function noAddress(target: AttemptTarget): RequestFailure {
  const snap = target.source.snapshot()
  if (snap.ready) {
    // Every address gone (stale_grace over): the request asks for the next lookup now (at most once a second), not at the failure back-off's next try.
    target.source.refreshNow('no address left')
    return new RequestFailure('NO_ADDRESS', 'connect', 'no upstream address available')
  }
  const why = snap.lastError ? ` (${snap.lastError.code})` : ''
  return new RequestFailure('NOT_RESOLVED', 'connect', `upstream ${target.upstream.host} has not resolved yet${why}`)
}

function asFailure(err: unknown, address: string): RequestFailure {
  if (err instanceof RequestFailure) return err
  return new RequestFailure('INTERNAL', 'request', `${address}: ${(err as Error)?.message ?? String(err)}`, { cause: err, address })
}
