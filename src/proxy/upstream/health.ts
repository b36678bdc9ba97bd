/**
 * Active health checks for one upstream: every health_interval, a GET of health_path on each
 * address the pool knows (DNS-discovered ones included), on a fresh connection with the
 * upstream's Host and TLS name. A failure or a status outside 2xx/3xx takes the address out of
 * rotation until a check passes. Passive ejection (connect failures) is in pool.ts.
 */
import { dial as defaultDial, type Conn, type DialOptions } from '../../runtime/socket.ts'
import type { LogFn } from '../../lib/logger.ts'
import type { AddressState, UpstreamPool } from './pool.ts'
import { Http1Connection } from './connection.ts'

export class ActiveHealthChecker {
  private timer: ReturnType<typeof setInterval> | undefined
  private running = false
  checks = 0

  constructor(
    private readonly pool: UpstreamPool,
    private readonly opts: { dial?: (o: DialOptions) => Promise<Conn>; log?: LogFn } = {},
  ) {}

  start(): void {
    const u = this.pool.upstream
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
      await Promise.all([...this.pool.addresses.values()].filter((s) => !s.removed).map((s) => this.check(s)))
    } finally {
      this.running = false
    }
  }

  private async check(state: AddressState): Promise<void> {
    const u = this.pool.upstream
    this.checks++
    let healthy = false
    let why = ''
    let conn: Conn | undefined
    try {
      conn = await (this.opts.dial ?? defaultDial)({ ...this.pool.dialOptions(state), connectTimeoutMs: Math.min(u.connectTimeoutMs, u.healthTimeoutMs) })
      const c = new Http1Connection(conn, () => {})
      const res = await c.exchange(
        { method: 'GET', target: u.healthPath!, headers: [['host', u.hostHeader ?? u.host], ['user-agent', 'proxy-health-check'], ['connection', 'close']], body: null, bodyLength: undefined, maxBodyBytes: 0 },
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
