/**
 * Active health checks for one upstream: every health_interval, a GET of health_path on each
 * address it is shown (DNS-discovered ones included), on a fresh connection with the upstream's
 * Host and TLS name. A failure or a status outside 2xx/3xx takes the address out of rotation
 * (AddressState.activeHealthy) until a check passes. An address DNS adds later is checked at
 * once and takes no traffic until that check passes (it took about half the traffic until the
 * next interval's check, failing or not); when every address is out, the picker still tries one.
 * It acts on address states only; passive ejection (connect failures) is address-state.ts's,
 * applied by the pool.
 */
import type { ResolvedUpstream } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { dial as defaultDial, type Conn, type DialOptions } from '../../runtime/socket.ts'
import type { AddressSource } from './address-source.ts'
import type { AddressState } from './address-state.ts'
import { upstreamAuthority } from '../headers.ts'
import { Http1Connection } from './connection.ts'

/** What the checker is shown: the current addresses, and how to reach one (the pool is one). */
export interface HealthTargets {
  readonly upstream: ResolvedUpstream
  readonly addresses: ReadonlyMap<string, AddressState>
  /** Where the addresses come from: one it adds is checked at once (the pool's states are made first: it subscribed first). */
  readonly source?: Pick<AddressSource, 'onChange'>
  dialOptions(state: AddressState): DialOptions
}

export class ActiveHealthChecker {
  private timer: ReturnType<typeof setInterval> | undefined
  private running = false
  private unsubscribe: (() => void) | undefined
  /** Address states that have had a check (a state made again for an address DNS dropped and re-added has not). */
  private readonly checked = new WeakSet<AddressState>()
  checks = 0

  constructor(
    private readonly targets: HealthTargets,
    private readonly opts: { dial?: (o: DialOptions) => Promise<Conn>; log?: LogFn } = {},
  ) {}

  start(): void {
    const u = this.targets.upstream
    if (!u.healthPath || this.timer) return
    this.timer = setInterval(() => void this.runOnce(), u.healthIntervalMs)
    ;(this.timer as { unref?: () => void }).unref?.()
    this.unsubscribe = this.targets.source?.onChange((change) => {
      for (const a of change.added) {
        const state = this.targets.addresses.get(a.address)
        if (!state || state.removed) continue
        if (!this.checked.has(state)) state.activeHealthy = false
        void this.check(state)
      }
    })
    void this.runOnce()
  }

  /** Checks every current address once (skipped if the previous round is still running). */
  async runOnce(): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await Promise.all([...this.targets.addresses.values()].filter((s) => !s.removed).map((s) => this.check(s)))
    } finally {
      this.running = false
    }
  }

  private async check(state: AddressState): Promise<void> {
    const u = this.targets.upstream
    this.checks++
    let healthy = false
    let why = ''
    let conn: Conn | undefined
    try {
      conn = await (this.opts.dial ?? defaultDial)({ ...this.targets.dialOptions(state), connectTimeoutMs: Math.min(u.connectTimeoutMs, u.healthTimeoutMs) })
      const c = new Http1Connection(conn, () => {})
      const res = await c.exchange(
        { method: 'GET', target: u.healthPath!, headers: [['host', u.hostHeader ?? upstreamAuthority(u)], ['user-agent', 'proxy-health-check'], ['connection', 'close']], body: null, bodyLength: undefined, maxBodyBytes: 0 },
        { headerTimeoutMs: u.healthTimeoutMs, idleTimeoutMs: u.healthTimeoutMs },
      )
      if (res.body instanceof ReadableStream) await res.body.cancel()
      healthy = res.head.status >= 200 && res.head.status < 400
      if (!healthy) why = `status ${res.head.status}`
    } catch (err) {
      why = (err as { code?: string }).code ?? (err as Error).message
    } finally {
      conn?.destroy()
    }
    // No socket for the check (the proxy is out of file descriptors, runtime/dial-errors.ts): the address was not tried; no verdict.
    if (why === 'NO_FILE_DESCRIPTORS') return
    // Said when it changes; an address's first check only when it fails (one DNS added is out until then).
    const first = !this.checked.has(state)
    if (healthy ? !state.activeHealthy && !first : state.activeHealthy || first) {
      this.opts.log?.(healthy ? 'info' : 'warn', healthy ? 'health check passes again' : 'health check failed; address out of rotation', { upstream: u.name, address: state.address, path: u.healthPath, reason: why || undefined })
    }
    state.activeHealthy = healthy
    this.checked.add(state)
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }
}
