/**
 * CertificateManager: keeps one certificate (all --acme names, as SANs) current for the TLS
 * listener. It serves what the state directory holds at start, orders when there is nothing
 * usable, renews on the schedule of schedule.ts (or the CA's ARI window), backs off after
 * failures while the old certificate keeps being served, and lets the process holding the
 * state directory's lock order while the others pick the result up from disk. The listener
 * reads current() per connection and hears of swaps through onChange(); the protocol is in
 * client.ts and order.ts, the files in store.ts.
 */
import type { KeyObject } from 'node:crypto'
import type { LogFn } from '../lib/logger.ts'
import { certInfo, type CertInfo } from './cert-info.ts'
import { AcmeClient } from './client.ts'
import { AcmeError } from './errors.ts'
import { FileChallengeStore } from './http01.ts'
import { issueCertificate, type ChallengeStore } from './order.ts'
import { daysLeft, MAX_RETRY_MS, MAX_TIMER_MS, renewalTimeMs, retryDelayMs, usableWindow, type Window } from './schedule.ts'
import { LOCK_REFRESH_MS, StateStore, type StoredCert } from './store.ts'

/** What the TLS listener presents. */
export interface ServedCert {
  cert: string
  key: string
}

export interface Clock {
  /** Wall-clock ms: for the certificate's dates and the renewal time drawn from them. */
  now(): number
  /** Monotonic ms, for the back-off after a failure (a wall-clock step must not stretch or skip it); a fake without it moves both as one. */
  monoNow?(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const REAL_CLOCK: Clock = { now: () => Date.now(), monoNow: () => performance.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) }

export interface CertificateManagerOptions {
  domains: readonly string[]
  directoryUrl: string
  email: string | undefined
  /** PEM bundle that verifies the ACME server's HTTPS. */
  caPem: string | undefined
  stateDir: string
  log: LogFn
  clock?: Clock
  random?: () => number
  fetch?: typeof fetch
  /** How often the state directory is re-read (to pick up another worker's certificate). */
  watchIntervalMs?: number
  /** Poll interval for orders when the CA gives no Retry-After. */
  pollIntervalMs?: number
  /** Injected for tests: where HTTP-01 answers go (default: memory + state directory). */
  challenges?: ChallengeStore
}

export interface CertificateStatus {
  names: readonly string[]
  notAfterMs: number | undefined
  daysLeft: number | undefined
  renewAtMs: number | undefined
  failures: number
  lastError: string | undefined
}

export class CertificateManager {
  readonly store: StateStore
  readonly challenges: FileChallengeStore
  private readonly clock: Clock
  private readonly random: () => number
  private readonly names: string[]
  private served: ServedCert | undefined
  private info: CertInfo | undefined
  private readonly listeners: ((c: ServedCert) => void)[] = []
  private timer: unknown
  private running = false
  private idleWaiters: (() => void)[] = []
  private holdsLock = false
  /** The timer that marks the order lock as held while an order runs (armLockRefresh). */
  private lockRefresh: unknown
  private closed = false
  private failures = 0
  /** No attempt before this (monotonic ms: mono()); 0 when no back-off stands. */
  private nextAttemptMonoMs = 0
  private lastError: string | undefined
  private client: AcmeClient | undefined
  private accountKey: KeyObject | undefined
  /** The CA's renewal window, and when to ask again (monotonic ms: mono()). */
  private ari: { window: Window | undefined; nextFetchMonoMs: number; forCertId: string } | undefined
  private renewAtMs: number | undefined
  /** An issued certificate the state directory refused: served from memory, its save tried again at each check. */
  private unsaved: StoredCert | undefined

  constructor(private readonly opts: CertificateManagerOptions) {
    if (opts.domains.length === 0) throw new AcmeError('E_ACME_STATE', 'no --acme domains given')
    this.names = opts.domains.map((d) => d.toLowerCase())
    this.clock = opts.clock ?? REAL_CLOCK
    this.random = opts.random ?? Math.random
    this.store = new StateStore(opts.stateDir, opts.directoryUrl)
    this.challenges = new FileChallengeStore(this.store)
  }

  /** The certificate to present now; undefined until the first one exists. */
  current(): ServedCert | undefined {
    return this.served
  }

  onChange(fn: (c: ServedCert) => void): void {
    this.listeners.push(fn)
  }

  status(): CertificateStatus {
    const now = this.clock.now()
    return {
      names: this.names,
      notAfterMs: this.info?.notAfterMs,
      daysLeft: this.info ? daysLeft(this.info.notAfterMs, now) : undefined,
      renewAtMs: this.renewAtMs,
      failures: this.failures,
      lastError: this.lastError,
    }
  }

  private mono(): number {
    return this.clock.monoNow?.() ?? this.clock.now()
  }

  /** Loads what the state directory has (serving it at once) and starts the renewal loop. */
  start(): this {
    this.pickUpFromDisk()
    const missing = this.missingNames()
    if (this.served && missing.length > 0) this.opts.log('info', 'acme: serving the stored certificate, which lacks some names; ordering one for all of them', { names: this.names.join(','), missing: missing.join(','), days_left: this.status().daysLeft?.toFixed(1) })
    else if (this.served) this.opts.log('info', 'acme: serving the stored certificate', { names: this.names.join(','), days_left: this.status().daysLeft?.toFixed(1) })
    else {
      const why = this.store.unusableBecause(this.names[0]!) // a pair that is there but cannot be served is said, then replaced
      this.opts.log(why ? 'warn' : 'info', 'acme: no usable certificate stored; ordering one (TLS handshakes fail until it arrives)', { names: this.names.join(','), ...(why ? { stored: why } : {}) })
    }
    this.arm(0)
    return this
  }

  /**
   * No check starts from now on (a drain has begun); an order under way goes on and lets go of the
   * order lock when it ends, so that a successor waits for its certificate instead of ordering too.
   */
  stop(): void {
    this.closed = true
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Whether an order of ours is under way (it holds the order lock); `idle()` resolves when no check is. */
  get ordering(): boolean {
    return this.holdsLock
  }

  idle(): Promise<void> {
    if (!this.running) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Stops the timers and releases the order lock if an order of ours holds it (shutdown mid-order). */
  close(): void {
    this.stop()
    this.releaseLock()
  }

  /** Runs one check now (tests; and start()). Single-flight: a check in progress is not doubled. */
  async check(): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    try {
      // Disk first: a newer certificate another process stored replaces ours, which is then not saved over it.
      const [hadOne, failuresBefore] = [this.served !== undefined, this.failures]
      if (this.pickUpFromDisk()) this.opts.log('info', hadOne ? 'acme: picked up a renewed certificate from the state directory' : 'acme: picked up the certificate another process ordered; TLS handshakes succeed now', { names: this.names.join(','), ...(failuresBefore > 0 ? { failures_before: failuresBefore } : {}) })
      this.saveUnsaved()
      const now = this.clock.now()
      const due = await this.dueAtMs(now)
      // stop() came while the CA's renewal information was asked for: no order begins after it.
      if (now >= due && this.mono() >= this.nextAttemptMonoMs && !this.closed) await this.renew(now)
    } catch (err) {
      // Whatever failed (the CA, the state directory) is one failed attempt, backed off.
      this.failed(err)
    } finally {
      this.running = false
      for (const wake of this.idleWaiters.splice(0)) wake()
      if (!this.closed) this.arm(this.nextWakeMs())
    }
  }

  private arm(delayMs: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      void this.check()
    }, Math.max(0, Math.min(delayMs, MAX_TIMER_MS)))
    ;(this.timer as { unref?: () => void } | undefined)?.unref?.()
  }

  private nextWakeMs(): number {
    const now = this.clock.now()
    const waitMs = Math.max(0, (this.renewAtMs ?? now) - now, this.nextAttemptMonoMs - this.mono())
    // With nothing to serve yet, look at the state directory every second: another worker's
    // first certificate should end this process's refused handshakes quickly.
    // With a certificate only in memory, every second too: other workers wait for it on disk.
    const watchMs = this.served && !this.unsaved ? (this.opts.watchIntervalMs ?? 30_000) : Math.min(1000, this.opts.watchIntervalMs ?? 1000)
    return Math.min(waitMs, watchMs)
  }

  /** When the served certificate should be replaced: now if there is none, or it lacks a name. */
  private async dueAtMs(now: number): Promise<number> {
    if (!this.info || this.missingNames().length > 0) return (this.renewAtMs = now)
    const id = this.info.certId
    if (id && (!this.ari || this.ari.forCertId !== id || this.mono() >= this.ari.nextFetchMonoMs)) await this.fetchAri(id)
    if (this.renewAtMs === undefined) this.renewAtMs = renewalTimeMs(this.info, this.random, this.ari?.window)
    return this.renewAtMs
  }

  /** RFC 9773: ask the CA for its window; failures are quiet (the two-thirds rule still applies). */
  private async fetchAri(certId: string): Promise<void> {
    const now = this.mono()
    let window: Window | undefined = this.ari?.forCertId === certId ? this.ari.window : undefined
    let nextFetchMonoMs = now + 3600_000
    try {
      const info = await this.acme().renewalInfo(certId)
      if (info) {
        // §4.3: ask again after Retry-After; bounded so a bad header neither hammers nor forgets.
        nextFetchMonoMs = now + Math.min(Math.max(info.retryAfterMs ?? 6 * 3600_000, 60_000), 24 * 3600_000)
        if (window?.startMs !== info.startMs || window?.endMs !== info.endMs) {
          this.renewAtMs = undefined
          if (this.info && !usableWindow(this.info, info)) {
            this.opts.log('warn', "acme: the CA's renewal window lies outside the certificate's validity; renewing at two thirds of its lifetime instead", { window_start: new Date(info.startMs).toISOString(), window_end: new Date(info.endMs).toISOString(), not_after: new Date(this.info.notAfterMs).toISOString() })
          }
        }
        window = { startMs: info.startMs, endMs: info.endMs }
      } else {
        nextFetchMonoMs = now + 24 * 3600_000 // the CA does not offer ARI
      }
    } catch (err) {
      this.opts.log('debug', 'acme: renewal information not available', { error: (err as Error).message })
    }
    this.ari = { window, nextFetchMonoMs, forCertId: certId }
  }

  /** One order, under the state directory's lock; throws what failed (check() counts it). */
  private async renew(now: number): Promise<void> {
    try {
      this.holdsLock = this.store.tryLock(now)
      if (!this.holdsLock) {
        // Look again in a second: by then the other process's certificate may be on disk, or its
        // lock stale (it died).
        this.nextAttemptMonoMs = this.mono() + 1000
        this.opts.log('debug', 'acme: another process is ordering; waiting for its certificate')
        return
      }
      this.armLockRefresh()
      // Asked before the order, not after: a certificate the CA issued (and counted against its
      // rate limits) that cannot be kept would be ordered again at every retry.
      this.store.checkWritable(this.names[0]!)
      const client = this.acme()
      this.accountKey ??= this.store.accountKey()
      if (!client.accountUrl) await client.account(this.opts.email)
      const issued = await issueCertificate({ client, accountKey: this.accountKey, names: this.names, challenges: this.opts.challenges ?? this.challenges, log: this.opts.log, replaces: this.missingNames().length === 0 ? this.info?.certId : undefined, nowMs: () => this.clock.now() })
      this.nothingOwed()
      // Served first: a save that fails now costs a restart the certificate, not the CA another order.
      this.use(issued)
      this.unsaved = issued
      this.saveUnsaved()
    } finally {
      this.releaseLock()
    }
  }

  /** Saves the certificate the state directory refused before; says so while it still cannot. */
  private saveUnsaved(): void {
    const cert = this.unsaved
    if (!cert) return
    if (cert.certPem !== this.served?.cert) {
      this.unsaved = undefined // replaced by a newer one since
      return
    }
    try {
      this.store.saveCert(this.names[0]!, cert)
      this.unsaved = undefined
      this.lastError = undefined
    } catch (err) {
      this.lastError = (err as Error).message
      this.opts.log('error', 'acme: serving the new certificate from memory, but it could not be saved (a restart would order another); saving it again at the next check', { names: this.names.join(','), error: this.lastError })
    }
  }

  private releaseLock(): void {
    if (this.lockRefresh !== undefined) this.clock.clearTimeout(this.lockRefresh)
    this.lockRefresh = undefined
    if (this.holdsLock) this.store.unlock()
    this.holdsLock = false
  }

  /** While an order holds the lock, it says so every LOCK_REFRESH_MS, so no other process takes it as left behind. */
  private armLockRefresh(): void {
    this.lockRefresh = this.clock.setTimeout(() => {
      if (!this.holdsLock) return
      this.store.refreshLock(this.clock.now())
      this.armLockRefresh()
    }, LOCK_REFRESH_MS)
    ;(this.lockRefresh as { unref?: () => void } | undefined)?.unref?.()
  }

  /** Counts a failed attempt, sets the back-off, and logs it once. */
  private failed(err: unknown): void {
    this.failures++
    const retryAfter = err instanceof AcmeError ? err.retryAfterMs : undefined
    this.nextAttemptMonoMs = this.mono() + retryDelayMs(this.failures, this.random, retryAfter)
    this.lastError = err instanceof Error ? err.message : String(err)
    // The next attempt starts from the state directory and the CA anew: an account the CA no
    // longer knows (accountDoesNotExist) or refuses, or an account key the operator removed as the
    // advice says, would otherwise fail every attempt until a restart.
    this.client = undefined
    this.accountKey = undefined
    if (retryAfter !== undefined && retryAfter > MAX_RETRY_MS) {
      this.opts.log('warn', "acme: the CA's Retry-After is longer than the longest back-off; capped", { retry_after_s: Math.ceil(retryAfter / 1000), capped_to_s: MAX_RETRY_MS / 1000 })
    }
    const left = this.info ? daysLeft(this.info.notAfterMs, this.clock.now()) : undefined
    this.opts.log(this.served ? 'warn' : 'error', this.served ? 'acme: renewal failed; still serving the current certificate' : 'acme: could not obtain a certificate; TLS handshakes fail until it succeeds', {
      names: this.names.join(','),
      error: this.lastError,
      failures: this.failures,
      retry_in_s: Math.round((this.nextAttemptMonoMs - this.mono()) / 1000),
      days_left: left?.toFixed(1),
    })
  }

  private acme(): AcmeClient {
    this.accountKey ??= this.store.accountKey()
    this.client ??= new AcmeClient({ directoryUrl: this.opts.directoryUrl, accountKey: this.accountKey, accountKeyFile: this.store.accountKeyFile, caPem: this.opts.caPem, fetch: this.opts.fetch, log: this.opts.log, pollIntervalMs: this.opts.pollIntervalMs })
    return this.client
  }

  /** Configured names the served certificate (or `info`) does not cover; all of them when there is none. */
  private missingNames(info = this.info): string[] {
    return this.names.filter((n) => !info?.names.includes(n))
  }

  /**
   * Serves the state directory's certificate when it is better than ours: one that covers every
   * name beats one that does not (a restart with one more --acme name keeps serving the old
   * certificate for the names it has until the new one arrives), then the later expiry wins.
   */
  private pickUpFromDisk(): boolean {
    const stored = this.store.loadCert(this.names[0]!)
    if (!stored || stored.certPem === this.served?.cert) return false
    let info: CertInfo
    try {
      info = certInfo(stored.certPem)
    } catch {
      return false
    }
    const missing = this.missingNames(info).length
    if (missing === this.names.length || info.notAfterMs <= this.clock.now()) return false
    if (this.info) {
      const servedMissing = this.missingNames().length
      if (missing > 0 && servedMissing === 0) return false // never trade all names for some
      if ((missing > 0) === (servedMissing > 0) && info.notAfterMs <= this.info.notAfterMs) return false // never go back to an older one
    }
    this.use(stored)
    // Another process's order succeeded where ours failed: the failure gauge must not go on firing alerts until the next renewal.
    if (missing === 0) this.nothingOwed()
    return true
  }

  /** A certificate for every name is here (ordered, or picked up): no failure, back-off or error stands. */
  private nothingOwed(): void {
    this.failures = 0
    this.nextAttemptMonoMs = 0
    this.lastError = undefined
  }

  private use(stored: StoredCert): void {
    this.info = certInfo(stored.certPem)
    // The two-thirds rule until the CA's ARI window (if any) is known; dueAtMs() asks for it.
    this.renewAtMs = renewalTimeMs(this.info, this.random)
    this.ari = undefined
    this.served = { cert: stored.certPem, key: stored.keyPem }
    for (const fn of this.listeners) {
      try {
        fn(this.served)
      } catch (err) {
        this.opts.log('error', 'acme: certificate change listener failed', { error: (err as Error).message })
      }
    }
  }
}
