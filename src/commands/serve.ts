/**
 * `proxy serve`: resolves the config once, wires resolver, pools, listener, admin, access log
 * and signals together, and returns an exit code after a graceful drain. SIGHUP re-reads the
 * config and swaps it in (a bad config is logged and the old one kept); SIGUSR1 and SIGHUP reopen
 * the access log file (after a rotation). With --workers N > 1
 * this process becomes a supervisor (workers.ts) and each worker runs this same code.
 */
import type { CAC } from 'cac'
import { adoptReadOnceConfigFromStdin, loadConfigFile, readOnceConfig, readOnceReloadNote } from '../config/load.ts'
import { resolveConfig } from '../config/resolve.ts'
import type { ResolvedConfig } from '../config/schema.ts'
import { errorMessage, ProxyError, UsageError } from '../lib/errors.ts'
import { listenError, ownPortClash } from '../lib/listen-error.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'
import { createAccessLog, renderAccessLogMetrics, type AccessLog, type AccessLogStats } from '../proxy/observe/access-log.ts'
import { AdminServer, exposedAdminWarning } from '../proxy/observe/admin.ts'
import { RequestMetrics } from '../proxy/observe/metrics.ts'
import { EdgeCache } from '../proxy/cache/cache.ts'
import { ProxyServer } from '../proxy/server.ts'
import { sourceForUpstream } from '../proxy/upstream/sources.ts'
import { addConfigFlags, flagLayer } from './flags.ts'
import { checkAccessLogPath, checkConfigPaths } from '../runtime/config-paths.ts'
import { AutomaticHttps } from '../acme/automatic-https.ts'
import { Http01Server } from '../acme/http01.ts'
import { PageTrimmer } from '../runtime/page-trim.ts'
import { probeListen } from '../runtime/listener.ts'
import { cacheOverLimitWarning, cgroupMemoryLimitBytes } from '../runtime/memory-limit.ts'
import { filesBudget, lowLimitWarning, openFilesLimit } from '../runtime/open-files.ts'
import { closeSignalInspector, prepareSignalInspector } from '../runtime/signal-inspector.ts'
import { CONFIG_ON_STDIN_ENV, onUsr2Ignored, parseWorkers, reportWorkerAdmin, reportWorkerListening, reportWorkerReloaded, runSupervisor, WORKER_ADMIN_LISTEN, WORKER_ENV } from './workers.ts'

/** Config sections a reload does not apply (the cache is built once; ACME runs from start-up). */
const START_ONLY = ['cache', 'acme'] as const
/** How the https redirect listener is named in its errors and logs. */
const REDIRECT_SETTING = { key: 'server.http_redirect_listen', flag: '--http-redirect-listen', what: 'the https redirect' }

export function registerServe(cli: CAC, io: CliIo): void {
  addConfigFlags(cli.command('serve', 'Run the reverse proxy in front of an upstream'))
    .option('--workers <n|auto>', 'Worker processes sharing the listen port (SO_REUSEPORT); "auto" is one per core (default: 1)')
    .example('proxy serve --upstream https://origin.example.com --listen 0.0.0.0:8080')
    .action((opts: Record<string, unknown>) => serveCommand(opts, io))
}

export function configFromOptions(opts: Record<string, unknown>): ResolvedConfig {
  // One file: two do not merge, and taking either would leave the other's settings out unsaid.
  if (Array.isArray(opts.config)) throw new UsageError(`--config given ${opts.config.length} times; give one config file (flags override what it sets)`)
  if (opts.config === '') throw new UsageError('--config: an empty path; give the path of a TOML file')
  const file = typeof opts.config === 'string' ? loadConfigFile(opts.config) : undefined
  return resolveConfig(file, flagLayer(opts))
}

export async function serveCommand(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  if (io.env[CONFIG_ON_STDIN_ENV] === '1' && typeof opts.config === 'string') adoptReadOnceConfigFromStdin(opts.config)
  const config = configFromOptions(opts)
  // Before the supervisor forks and before anything listens: a log that cannot be opened stops the start.
  checkConfigPaths(config)
  const workers = parseWorkers(opts.workers)
  const workerId = io.env[WORKER_ENV]
  // A cache the cgroup's memory limit cannot hold ends in an OOM kill under load: said at start (by the supervisor for all).
  const overLimit = workerId === undefined && config.cache.maxBytes > 0 ? cacheOverLimitWarning(config.cache.maxBytes, workers, cgroupMemoryLimitBytes()) : undefined
  if (overLimit) createLogger(io.err)('warn', overLimit)
  const lowFiles = workerId === undefined ? lowLimitWarning(filesBudget(openFilesLimit())) : undefined
  if (lowFiles) createLogger(io.err)('warn', lowFiles)
  if (workers > 1 && workerId === undefined) return runSupervisor(workers, io, { listen: config.server.listen, admin: config.admin, trimIntervalMs: config.server.trimIntervalMs, setAt: { listen: config.fileKeys?.['server.listen'], admin: config.fileKeys?.['admin.listen'] }, reloadConfig: () => configFromOptions(opts), configPath: typeof opts.config === 'string' ? opts.config : undefined })

  const log = createLogger(io.err, io.env.DEBUG === '1' ? 'debug' : 'info')
  const wlog: typeof log = workerId === undefined ? log : (level, msg, fields) => log(level, msg, { worker: workerId, ...fields })
  // The admin address first, a moment, before any port opens: a successor started while the process
  // before it drains (README > Restarting), which still holds that address, must fail before it
  // accepts connections (on the proxy's port, ACME's, the redirect's) that it would then reset.
  const adminAt = workerId === undefined ? config.admin.listen : undefined
  if (adminAt && adminAt.port !== 0) await probeListen(adminAt.host, adminAt.port).catch((err) => Promise.reject(listenError('admin', adminAt.host, adminAt.port, err, undefined, config.fileKeys?.['admin.listen'])))
  // Dropped lines are counted over every access log this process has (a reload makes a new one).
  const accessLogStats: AccessLogStats = { dropped: 0 }
  let accessLog: AccessLog = createAccessLog(config.log, wlog, { stats: accessLogStats })
  const metrics = new RequestMetrics()
  // In memory, per worker; its settings apply from start-up (a reload keeps the cache as it is).
  const c = config.cache
  const cache = c.maxBytes > 0 ? new EdgeCache({ maxBytes: c.maxBytes, maxObjectBytes: c.maxObjectBytes, staleIfErrorMs: c.staleIfErrorMs }) : undefined
  // Automatic HTTPS (issue 17): the HTTP-01 listener and the certificate come first; the TLS
  // listener reads the certificate per connection. ACME settings are read at start only.
  let proxyPort = config.server.listen.port
  const acme = config.acme.domains.length > 0 ? new AutomaticHttps(config.acme, { httpsPort: () => proxyPort, reusePort: workerId !== undefined, log: wlog, caFileName: config.fileKeys?.['acme.ca_file'] }).start() : undefined
  // The https redirect in front of a listener with its own certificate (nginx's port-80 server), read at start as ACME's.
  let redirect: Http01Server | undefined
  try {
    const at = config.server.httpRedirectListen
    redirect = at && new Http01Server({ listen: at, get httpsPort() { return proxyPort }, challenges: undefined, setting: REDIRECT_SETTING, reusePort: workerId !== undefined, log: wlog }).start()
  } catch (err) {
    await acme?.close()
    throw err
  }
  const proxy = new ProxyServer(config, {
    dynamicTls: acme?.certSource,
    sourceFor: (u) => sourceForUpstream(u, wlog),
    hooks: {
      onRecord: (r) => {
        metrics.observe(r)
        accessLog.write(r)
      },
      cache,
    },
    log: wlog,
    reusePort: workerId !== undefined,
  })
  // SIGUSR1 reopens the access log file (nginx's convention, what logrotate's postrotate sends);
  // installed before the listener opens, so that no USR1 finds the default action (exit).
  prepareSignalInspector()
  const onUsr1 = () => {
    accessLog.reopen()
    closeSignalInspector(wlog)
  }
  process.on('SIGUSR1', onUsr1)
  // SIGUSR2 (HAProxy's reload, nginx's binary upgrade) has no use here; its default action, exit, would cut every request.
  process.on('SIGUSR2', onUsr2Ignored(wlog))
  const startFailed = async () => {
    process.off('SIGUSR1', onUsr1)
    await acme?.close()
    await redirect?.close()
    await accessLog.close()
  }
  try {
    await proxy.startResolved()
  } catch (err) {
    await startFailed()
    throw err
  }
  proxyPort = proxy.port
  // A worker's own admin listens on a loopback port of its choosing and reports it: the
  // supervisor serves the configured address for all workers (workers-admin.ts).
  /** The admin settings this process listens with: a worker's on its own loopback port (below). */
  // A worker's stays as at start whatever a reload says (the supervisor reads the address at start): "off" closed it, and the supervisor saw every worker down.
  const workerAdmin = (a: ResolvedConfig['admin']) => (workerId !== undefined && config.admin.listen ? { ...a, listen: WORKER_ADMIN_LISTEN } : a)
  const adminFor = (c: ResolvedConfig) => {
    const a = new AdminServer(workerAdmin(c.admin), {
      proxy: () => proxy,
      metrics,
      startedAtMonoMs: performance.now(),
      worker: workerId,
      extraMetrics: (out) => {
        renderAccessLogMetrics(accessLogStats, out)
        acme?.metrics(out)
      },
      cache,
      tls: acme?.admin,
      setAt: workerId === undefined ? c.fileKeys?.['admin.listen'] : undefined,
    }).start()
    if (workerId !== undefined) reportWorkerAdmin(a.url)
    return a
  }
  let admin: AdminServer
  try {
    admin = adminFor(config)
  } catch (err) {
    proxy.close()
    await startFailed()
    throw err
  }
  const exposed = workerId === undefined ? exposedAdminWarning(config.admin) : undefined
  if (exposed) wlog('warn', exposed)
  warnOfConfig(config, wlog)
  // Made once the proxy has said it listens (below).
  let trimmer: PageTrimmer | undefined
  const reloadNow = async () => {
    if (stopping) return // a SIGHUP queued just before the drain began
    if (workerId === undefined && typeof opts.config === 'string' && readOnceConfig(opts.config)) wlog('warn', readOnceReloadNote(opts.config))
    let next: ResolvedConfig
    try {
      next = configFromOptions(opts)
      // A new log path that cannot be opened is a config refused; the one in use is reopened as ever.
      if (next.log.accessLog !== proxy.config.log.accessLog) checkAccessLogPath(next)
    } catch (err) {
      wlog('error', 'reload failed: config rejected; still serving the previous config', { error: errorMessage(err) })
      accessLog.reopen()
      if (workerId !== undefined) reportWorkerReloaded(false)
      return
    }
    // A reload reopens the log file at once too (a rotation script may send SIGHUP), unless the
    // log's settings change: then the new log replaces it once the reload is through.
    const logChanged = JSON.stringify(proxy.config.log) !== JSON.stringify(next.log)
    if (!logChanged) accessLog.reopen()
    try {
      // A new admin address is listened on before anything is applied, so that one the proxy
      // cannot have (in use, not local) fails the reload whole: nothing half-applied, the old
      // admin listener kept. The same address with another token keeps its socket.
      // Nor onto the port of the other listener (with --workers the supervisor holds the admin's, and says a moved listen needs a restart).
      const clash = workerId === undefined ? ownPortClash({ listen: proxy.config.server.listen, admin: proxy.config.admin.listen }, { listen: next.server.listen, admin: next.admin.listen }) : undefined
      if (clash) throw new ProxyError('E_LISTEN', clash)
      const movedAdmin = admin.listensAs(workerAdmin(next.admin)) ? undefined : adminFor(next)
      try {
        await proxy.reload(next)
      } catch (err) {
        await movedAdmin?.close()
        throw err
      }
      proxyPort = proxy.port // port 80's redirects point at the listener a reload moved
      metrics.retain(Object.keys(next.upstreams))
      if (movedAdmin) {
        await admin.close()
        admin = movedAdmin
      } else admin.retoken(workerAdmin(next.admin))
      if (logChanged) {
        const old = accessLog
        accessLog = createAccessLog(next.log, wlog, { stats: accessLogStats })
        void old.close()
      }
      trimmer?.retime(next.server.trimIntervalMs)
      wlog('info', 'reloaded', { url: proxy.url, upstreams: Object.values(next.upstreams).map((u) => u.url).join(',') })
      if (workerId !== undefined) reportWorkerReloaded(true)
      warnOfConfig(next, wlog)
      // As at start, at every reload while it lasts (a token taken out, the admin moved beyond loopback); with --workers the supervisor's.
      const exposedNow = workerId === undefined ? exposedAdminWarning(next.admin) : undefined
      if (exposedNow) wlog('warn', exposedNow)
      // Read at start only: a difference from what runs (the start-up config's) is said to be kept
      // out, at every reload while it lasts, not taken as applied with the rest.
      for (const section of START_ONLY) {
        if (JSON.stringify(config[section]) !== JSON.stringify(next[section])) wlog('warn', `reload: [${section}] changed, but it is read at start only; restart the proxy to apply it`, { file: next.file ?? 'flags', section })
      }
      if (JSON.stringify(config.server.httpRedirectListen) !== JSON.stringify(next.server.httpRedirectListen)) wlog('warn', 'reload: server.http_redirect_listen changed, but it is read at start only; restart the proxy to apply it', { file: next.file ?? 'flags' })
    } catch (err) {
      wlog('error', 'reload failed; still serving the previous config', { error: errorMessage(err) })
      if (logChanged) accessLog.reopen()
      if (workerId !== undefined) reportWorkerReloaded(false)
    }
  }
  // One reload at a time: a SIGHUP during another (whose listener may be waiting for its port) runs after it.
  let reloading = Promise.resolve()
  // Once a drain has begun, a signal is said and ignored: one without a handler would take the
  // runtime's default action and end the process mid-drain, cutting what it drains (a SIGHUP from
  // a reload hook overlapping a stop exited 129; systemd's SIGTERM to the whole control group
  // reaches a worker beside the one its supervisor forwards, and the second exited 143).
  let stopping: string | undefined
  const ignoredWhileDraining = (sig: string) => wlog('warn', `${sig} during the drain: ignored; the drain ends when its requests do or at drain_timeout (SIGKILL stops at once)`, { draining_since: stopping })
  const onHup = () => {
    if (stopping) return ignoredWhileDraining('SIGHUP')
    reloading = reloading.then(reloadNow, reloadNow)
  }
  process.on('SIGHUP', onHup)

  const stopped = new Promise<string>((resolve) => {
    const onSignal = (sig: string) => () => {
      if (stopping) return ignoredWhileDraining(sig)
      stopping = sig
      resolve(sig)
    }
    process.on('SIGTERM', onSignal('SIGTERM'))
    process.on('SIGINT', onSignal('SIGINT'))
    // nginx's graceful stop (nginx -s quit, Debian's --retry QUIT/5): its default action ended the process at once.
    process.on('SIGQUIT', onSignal('SIGQUIT'))
    // A worker whose supervisor is gone (kill -9, OOM) would go on holding the shared port, and a
    // new supervisor could not claim it: the IPC channel closing says so, and it drains as on SIGTERM.
    if (workerId !== undefined && process.connected) {
      process.once('disconnect', () => {
        if (stopping) return
        wlog('warn', 'the supervisor is gone (its IPC channel closed); draining and exiting so that the port is free')
        stopping = 'supervisor gone'
        resolve(stopping)
      })
    }
  })
  // Said last, once every signal has its handler: the line is what says the proxy is ready (a
  // supervisor, a test, a script that sends SIGHUP at once), and a SIGHUP that beat the handler
  // took Bun's default action and ended the process (seen in 2-4 of 12 starts on a busy machine).
  wlog('info', 'proxy listening', { url: proxy.url, admin: admin.url ?? 'off', ...(acme ? { acme: config.acme.domains.join(','), acme_http: acme.httpPort } : {}), ...(redirect ? { http_redirect: redirect.port } : {}), upstreams: Object.values(config.upstreams).map((u) => u.url).join(',') })
  if (workerId !== undefined) reportWorkerListening()
  // What start-up mapped and serving does not use leaves RSS now, and what serving stops using later.
  trimmer = new PageTrimmer(config.server.trimIntervalMs)
  const signal = await stopped
  trimmer.close()
  wlog('info', 'draining', { signal, drain_timeout_ms: proxy.config.server.drainTimeoutMs })
  // A redirect is answered at once: its port closes as the drain begins, as the proxy's does; so
  // does ACME's (an order under way keeps its lock until it ends), so a successor can start now.
  await redirect?.close()
  await acme?.stopListening()
  const drainFromMs = performance.now()
  await proxy.drain(proxy.config.server.drainTimeoutMs)
  await acme?.orderEnd(proxy.config.server.drainTimeoutMs - (performance.now() - drainFromMs))
  await admin.close()
  await acme?.close()
  await accessLog.close()
  process.off('SIGUSR1', onUsr1)
  cache?.close()
  wlog('info', 'stopped')
  return ExitCode.OK
}

/**
 * What a config is warned of at start and at every reload while it lasts: keys set to no effect
 * (config/ineffective.ts), and an https upstream with insecure = true, as the one way around
 * certificate checks should be: its certificate is not verified, so anyone on the path to it can
 * read and change the traffic.
 */
function warnOfConfig(config: ResolvedConfig, log: ReturnType<typeof createLogger>): void {
  for (const line of config.ineffective ?? []) log('warn', line)
  const names = Object.values(config.upstreams).filter((u) => u.scheme === 'https' && u.insecure).map((u) => u.name)
  if (names.length === 0) return
  log('warn', "upstream TLS certificates are NOT verified (insecure = true): anyone on the path can read and change that traffic; for testing only (a private CA goes in ca_file)", { upstreams: names.join(',') })
}
