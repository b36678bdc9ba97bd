/**
 * Active health checks for one upstream: every health_interval, a GET of health_path on each
 * address it is shown (DNS-discovered ones included), on a fresh connection with the upstream's
 * Host and TLS name. A failure or a status outside 2xx/3xx takes the address out of rotation
 * (AddressState.activeHealthy) until a check passes. It acts on address states only; passive
 * ejection (connect failures) is address-state.ts's, applied by the pool.
 */
import type { ResolvedUpstream } from '../../config/schema.ts'
import type { LogFn } from '../../lib/logger.ts'
import { dial as defaultDial, type Conn, type DialOptions } from '../../runtime/socket.ts'
import type { AddressState } from './address-state.ts'
import { upstreamAuthority } from '../headers.ts'
import { Http1Connection } from './connection.ts'

/** What the checker is shown: the current addresses, and how to reach one (the pool is one). */
export interface HealthTargets {
  readonly upstream: ResolvedUpstream
  readonly addresses: ReadonlyMap<string, AddressState>
  dialOptions(state: AddressState): DialOptions
}

export class ActiveHealthChecker {
  private timer: ReturnType<typeof setInterval> | undefined
  private running = false
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
    if (healthy !== state.activeHealthy) {
      this.opts.log?.(healthy ? 'info' : 'warn', healthy ? 'health check passes again' : 'health check failed; address out of rotation', { upstream: u.name, address: state.address, path: u.healthPath, reason: why || undefined })
    }
    state.activeHealthy = healthy
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
