/**
 * Automatic HTTPS as `proxy serve` runs it: one CertificateManager for the configured names,
 * the HTTP-01 / redirect listener, the certificate source the TLS listener reads per
 * connection, and the /metrics lines. serve.ts calls start() before the proxy listener opens
 * stopListening() as the drain begins and close() after it; nothing else here knows about the
 * proxy.
 */
import type { ResolvedAcme } from '../config/schema.ts'
import { ProxyError } from '../lib/errors.ts'
import type { LogFn } from '../lib/logger.ts'
import { AcmeError } from './errors.ts'
import { Http01Server } from './http01.ts'
import { CertificateManager, type CertificateManagerOptions } from './manager.ts'
import type { CertSource } from '../runtime/tls-per-connection.ts'
import { readCaBundle } from '../runtime/tls-files.ts'

export interface AutomaticHttpsOptions {
  /** The HTTPS port redirects point at (the proxy's listen port, read once it is bound). */
  httpsPort: () => number
  /** Several workers: the HTTP-01 port is shared (SO_REUSEPORT) like the proxy's. */
  reusePort: boolean
  log: LogFn
  /** How errors name acme.ca_file: where it was set (ResolvedConfig.fileKeys), or the bare key. */
  caFileName?: string
  /** Tests: clock, random, fetch, intervals. */
  manager?: Partial<CertificateManagerOptions>
}

export class AutomaticHttps {
  readonly manager: CertificateManager
  private http01: Http01Server | undefined

  constructor(
    private readonly cfg: ResolvedAcme,
    private readonly opts: AutomaticHttpsOptions,
  ) {
    const caPem = cfg.caFile ? readCaBundle(cfg.caFile, opts.caFileName ?? 'acme.ca_file') : undefined
    try {
      this.manager = new CertificateManager({ domains: cfg.domains, directoryUrl: cfg.directoryUrl, email: cfg.email, caPem, stateDir: cfg.stateDir, log: opts.log, ...opts.manager })
    } catch (err) {
      // The state directory holds the certificate and its key: not being able to create it is a
      // start failure like an unreadable TLS file (exit 3), not an internal error.
      if (err instanceof AcmeError && err.code === 'E_ACME_STATE') throw new ProxyError('E_TLS_FILES', err.message, { cause: err })
      throw err
    }
  }

  /** What the TLS listener presents: read on every accepted connection. */
  readonly certSource: CertSource = () => this.manager.current()

  /** Opens the HTTP-01 listener, then loads or orders the certificate. */
  start(): this {
    const { httpListen } = this.cfg
    if (httpListen) {
      const httpsPort = this.opts.httpsPort
      this.http01 = new Http01Server({
        listen: httpListen,
        get httpsPort() {
          return httpsPort()
        },
        challenges: this.manager.challenges,
        defaultHost: this.cfg.domains[0],
        reusePort: this.opts.reusePort,
        log: this.opts.log,
      }).start()
    }
    this.manager.start()
    return this
  }

  get httpPort(): number {
    return this.http01?.port ?? 0
  }

  /** For the admin's /status and /readyz (admin.ts AdminDeps.tls). */
  readonly admin = {
    status: (): Record<string, unknown> => {
      const st = this.manager.status()
      return { names: st.names, certificate: this.manager.current() !== undefined, not_after: st.notAfterMs === undefined ? undefined : new Date(st.notAfterMs).toISOString(), days_left: st.daysLeft === undefined ? undefined : Number(st.daysLeft.toFixed(2)), renew_at: st.renewAtMs === undefined ? undefined : new Date(st.renewAtMs).toISOString(), failures: st.failures, last_error: st.lastError }
    },
    /** Why no client can be served: no certificate yet, so every TLS handshake is refused. */
    notReady: (): string | undefined => {
      if (this.manager.current()) return undefined
      const st = this.manager.status()
      return `no TLS certificate yet for ${st.names.join(',')} (ACME ${st.lastError ? `failed ${st.failures} time(s): ${st.lastError}` : 'order in progress'})`
    },
  }

  /** Prometheus lines for /metrics: days left (negative once expired; absent before the first certificate) and failures. */
  metrics(out: string[]): void {
    const st = this.manager.status()
    const label = `names="${st.names.join(',')}"`
    out.push('# HELP proxy_acme_certificate_days_left Days until the served ACME certificate expires.', '# TYPE proxy_acme_certificate_days_left gauge')
    if (st.daysLeft !== undefined) out.push(`proxy_acme_certificate_days_left{${label}} ${Number(st.daysLeft.toFixed(6))}`)
    out.push('# HELP proxy_acme_renewal_failures Consecutive failed ACME orders (0 after a success).', '# TYPE proxy_acme_renewal_failures gauge')
    out.push(`proxy_acme_renewal_failures{${label}} ${st.failures}`)
  }

  /**
   * The drain begins: no check starts, and the HTTP-01 port closes, so a successor can listen
   * there; but an order under way keeps it, and the order lock, until it ends (orderEnd),
   * so that the CA's validation reaches it: closed under the order, the authorization failed, and
   * a successor would have ordered again. A successor started meanwhile exits E_LISTEN on it.
   */
  async stopListening(): Promise<void> {
    this.manager.stop()
    if (this.manager.ordering) void this.manager.idle().then(() => this.http01?.close())
    else await this.http01?.close()
  }

  /**
   * After the drain: an order still under way is waited for, up to `maxMs` (what is left of
   * drain_timeout), so that an idle proxy's SIGTERM does not cut it (a failed validation, or a
   * successor's second order, both counted by the CA). Says so when it waits.
   */
  async orderEnd(maxMs: number): Promise<void> {
    if (!this.manager.ordering || maxMs <= 0) return
    this.opts.log('info', 'acme: waiting for the order under way before exiting', { wait_at_most_ms: Math.round(maxMs) })
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([this.manager.idle(), new Promise<void>((r) => (timer = setTimeout(r, maxMs)))])
    clearTimeout(timer)
  }

  async close(): Promise<void> {
    this.manager.close()
    await this.http01?.close()
  }
}
