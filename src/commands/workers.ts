/**
 * The worker supervisor for `serve --workers N`: starts N copies of this same command, each
 * accepting on the shared port (SO_REUSEPORT), restarts a worker that dies (with a backoff; one
 * that cannot start stops all at start-up only, and is retried once any worker has served),
 * passes SIGHUP and SIGUSR1 (reopen the access log) on to all, and on SIGTERM/SIGINT/SIGQUIT drains all
 * and exits when they have. It serves
 * the configured admin address for all workers (observe/workers-admin.ts); each worker's own
 * admin listens on a loopback port of its choosing, which it reports over the IPC channel.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readOnceConfig, readOnceReloadNote } from '../config/load.ts'
import type { HostPort, ResolvedAdmin } from '../config/schema.ts'
import { availableParallelism } from 'node:os'
import { UsageError } from '../lib/errors.ts'
import { listenError, type ListenerRole } from '../lib/listen-error.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'
import { hostPort } from '../lib/net.ts'
import { exposedAdminWarning } from '../proxy/observe/admin.ts'
import { WorkersAdmin, type WorkerSlot } from '../proxy/observe/workers-admin.ts'
import { isDeno } from '../runtime/detect.ts'
import { probeListen } from '../runtime/listener.ts'
import { PageTrimmer } from '../runtime/page-trim.ts'
import { AddressLocks, canSharePort } from '../runtime/shared-port.ts'
import { closeSignalInspector, prepareSignalInspector } from '../runtime/signal-inspector.ts'
import { WorkerLines } from './worker-lines.ts'

/** Set in a worker's environment to its index; its absence marks the supervisor. */
export const WORKER_ENV = 'PROXY_WORKER'
/** Set when the config is a pipe (config/load.ts readOnce): the worker reads it from its stdin, where the supervisor writes it. */
export const CONFIG_ON_STDIN_ENV = 'PROXY_CONFIG_ON_STDIN'

/** What a worker tells the supervisor over the IPC channel once its admin listener is up. */
export interface WorkerAdminMessage {
  type: 'admin'
  url: string
}

/** What a worker tells the supervisor once it serves (its listeners are open). */
export interface WorkerListeningMessage {
  type: 'listening'
}

/** What a worker tells the supervisor after a SIGHUP: whether it took the new config. */
export interface WorkerReloadedMessage {
  type: 'reloaded'
  ok: boolean
}

/** Where a worker's own admin listens: loopback, a port the kernel picks (it reports it). */
export const WORKER_ADMIN_LISTEN: HostPort = { host: '127.0.0.1', port: 0 }

/** A worker reports its admin URL to the supervisor (a no-op without an IPC channel). */
export function reportWorkerAdmin(url: string | undefined): void {
  if (url) tellSupervisor({ type: 'admin', url } satisfies WorkerAdminMessage)
}

/** A worker says it serves (a no-op without an IPC channel). */
export function reportWorkerListening(): void {
  tellSupervisor({ type: 'listening' } satisfies WorkerListeningMessage)
}

/** A worker says how its reload went (a no-op without an IPC channel). */
export function reportWorkerReloaded(ok: boolean): void {
  tellSupervisor({ type: 'reloaded', ok } satisfies WorkerReloadedMessage)
}

/** A message on the IPC channel; a channel gone (the supervisor gone: 'disconnect' handles that) is not a crash. */
function tellSupervisor(message: object): void {
  if (!process.send || process.connected === false) return
  try {
    process.send(message)
  } catch {
    // the channel closed under us: the worker's 'disconnect' handler drains it
  }
}

/** SIGUSR2: said and ignored (its default action would end the process, and its workers' or its requests with it). */
export const onUsr2Ignored = (log: (level: 'warn', msg: string) => void) => () => log('warn', 'SIGUSR2: ignored; SIGHUP reloads the config, SIGUSR1 reopens the access log, SIGTERM or SIGQUIT drains and stops')

/**
 * A signal to a worker by its pid: on Deno (2.9) ChildProcess.kill() also closes the IPC
 * channel, so every SIGHUP or SIGUSR1 passed on cut the workers off (they drained and exited,
 * or crashed on their next message: requests refused while they restarted).
 */
function signalWorker(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(child.pid, sig)
  } catch {
    // exited since: its 'exit' handler restarts it
  }
}

export function parseWorkers(raw: unknown): number {
  if (raw === undefined) return 1
  if (raw === 'auto') return Math.max(1, availableParallelism())
  const n = typeof raw === 'number' ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--workers: "${String(raw)}" is not a worker count; use a number from 1 to 256, or "auto"`)
  return n
}

/** The command line that re-runs this program: the compiled binary, `bun src/main.ts` or `deno run`. */
function selfCommand(): string[] {
  const argv = process.argv
  // Compiled: argv[0] is the binary (argv[1] may repeat it); under `bun file.ts`: [bun, file].
  const script = argv[1]
  if (script && /\.(ts|js|mjs)$/.test(script) && !script.startsWith('/$bunfs/')) {
    // Deno runs `deno script` as `deno run -A` with no --unstable-net, which Deno.serve's
    // reusePort needs: every worker died at its listen and was restarted for ever.
    if (isDeno) return [process.execPath, 'run', '-A', '--unstable-net', script, ...argv.slice(2)]
    return [process.execPath, script, ...argv.slice(2)]
  }
  return [process.execPath, ...argv.slice(2)]
}

/** The supervisor's address lock, kept while its workers listen (let go when they begin to drain, or the process ends). */
const supervisorLocks = new AddressLocks()

/**
 * Binds host:port once, without SO_REUSEPORT, and lets go: fails with E_LISTEN when anything
 * listens there. Workers bind with SO_REUSEPORT, so without this check a second instance with
 * --workers on the same port would silently share it with the first (measured: both started).
 * Returns the port, a concrete one for port 0 ("any free port"), so every worker shares it.
 */
async function claimPort(role: ListenerRole, host: string, port: number, setAt?: string): Promise<number> {
  // On Linux with Bun, as a single process claims its address (runtime/shared-port.ts): the lock among
  // proxies, held while the supervisor runs (supervisorLocks), then the port alone for a moment.
  if (canSharePort) {
    try {
      return supervisorLocks.claim(host, port)
    } catch (err) {
      throw listenError(role, host, port, err, undefined, setAt)
    }
  }
  try {
    return await probeListen(host, port)
  } catch (err) {
    throw listenError(role, host, port, err, undefined, setAt)
  }
}

export interface SupervisorOptions {
  listen: HostPort
  admin: ResolvedAdmin
  /** [server] trim_interval (runtime/page-trim.ts): the supervisor's own pages; a reload's is taken as the admin token is. */
  trimIntervalMs: number
  /** Where the config file set server.listen and admin.listen (ResolvedConfig.fileKeys), for the error when one cannot be bound. */
  setAt?: { listen?: string; admin?: string }
  /** Re-reads the config on SIGHUP (the admin's new token, trim_interval; a moved listener said to need a restart); throws when it is rejected. */
  reloadConfig?: () => { admin: ResolvedAdmin; server: { listen: HostPort; trimIntervalMs: number } }
  /** The config file's path: one that can be read only once (a pipe: config/load.ts) reaches each worker on its stdin. */
  configPath?: string
}

/** A worker that ran this long before it died is restarted after the shortest delay again. */
const STABLE_RUN_MS = 10_000

export async function runSupervisor(count: number, io: CliIo, opts: SupervisorOptions): Promise<number> {
  const log = createLogger(io.err)
  const [cmd, ...baseArgs] = selfCommand()
  const listen = opts.listen
  // Flags override the config file, so a concrete --listen makes every worker share one port.
  const port = await claimPort('proxy', listen.host, listen.port, opts.setAt?.listen)
  const slots: WorkerSlot[] = Array.from({ length: count }, (_, index) => ({ index, pid: undefined, adminUrl: undefined, restarts: 0 }))
  // Slots whose worker has served once: once there is one, a failed start is a restart, not the start-up's.
  const served = new Set<number>()
  let stopping = false
  /** What the supervisor takes of a SIGHUP's config (the admin settings, trim_interval), applied once a worker says it reloaded (ok). */
  let pending: ReturnType<NonNullable<SupervisorOptions['reloadConfig']>> | undefined
  /** Made once the supervisor has said it started (below). */
  let trimmer: PageTrimmer | undefined
  // The one admin endpoint for all workers, bound before any worker starts (E_LISTEN if taken).
  const admin = new WorkersAdmin(opts.admin, { workers: () => slots, draining: () => stopping, setAt: opts.setAt?.admin }).start()
  const args = [...baseArgs, '--listen', hostPort(listen.host, port)]
  const workers = new Map<number, ChildProcess>()
  // Their stdout (the access log's default) reaches the supervisor's a whole line at a time.
  const stdoutLines = new WorkerLines(process.stdout)
  const stdioClosed = new WeakSet<ChildProcess>()
  /** When each slot's worker started, on the monotonic clock: a wall-clock step must not make a crash loop look like a stable run. */
  const startedAtMs = new Map<number, number>()
  const deathsInARow = new Map<number, number>()
  let fatal: ((code: number) => void) | undefined
  const fatalExit = new Promise<number>((resolve) => (fatal = resolve))

  // A worker takes SIGHUP and SIGUSR1 once it said it listens (its handlers are in place: before,
  // the default action ended it); one still starting, or restarting, gets them then.
  const ready = new Set<ChildProcess>()
  const deferred = new Map<ChildProcess, Set<NodeJS.Signals>>()
  const signalAll = (sig: NodeJS.Signals) => {
    for (const w of workers.values()) ready.has(w) ? signalWorker(w, sig) : deferred.set(w, (deferred.get(w) ?? new Set()).add(sig))
  }
  // Before any worker starts: a USR1 must never find the default action (exit, orphaning them).
  prepareSignalInspector()
  const onUsr1 = () => {
    log('info', 'reopening the access log in all workers')
    signalAll('SIGUSR1')
    closeSignalInspector(log)
  }
  process.on('SIGUSR1', onUsr1)
  process.on('SIGUSR2', onUsr2Ignored(log))

  const start = (index: number) => {
    const once = opts.configPath === undefined ? undefined : readOnceConfig(opts.configPath)
    const env = { ...process.env, [WORKER_ENV]: String(index), ...(once ? { [CONFIG_ON_STDIN_ENV]: '1' } : {}) }
    const child = spawn(cmd!, args, { stdio: [once ? 'pipe' : 'inherit', 'pipe', 'inherit', 'ipc'], env })
    if (once) child.stdin?.on('error', () => {}).end(once) // a worker that died at once: its exit handler restarts it
    if (child.stdout) stdoutLines.add(child.stdout)
    child.once('close', () => stdioClosed.add(child))
    workers.set(index, child)
    startedAtMs.set(index, performance.now())
    const slot = slots[index]!
    slot.pid = child.pid
    slot.adminUrl = undefined
    child.on('message', (m: Partial<WorkerAdminMessage> | WorkerListeningMessage | WorkerReloadedMessage) => {
      // The admin token a reload brings is the supervisor's once a worker took that reload: a
      // config the workers refused (a bad certificate pair) must not change the token it asks them with.
      if (m?.type === 'reloaded' && m.ok && pending) {
        admin.setConfig(pending.admin)
        trimmer?.retime(pending.server.trimIntervalMs)
        // As at start, at every reload while it lasts: the address is the start's, the token the reload's.
        const exposed = exposedAdminWarning({ listen: opts.admin.listen, token: pending.admin.token })
        if (exposed) log('warn', exposed)
        pending = undefined
      }
      if (m?.type === 'listening') {
        served.add(index)
        ready.add(child)
        for (const sig of deferred.get(child) ?? []) signalWorker(child, sig)
        deferred.delete(child)
      }
      if (m?.type === 'admin' && typeof m.url === 'string' && slot.pid === child.pid) slot.adminUrl = m.url
    })
    child.once('exit', (code, signal) => {
      workers.delete(index)
      ready.delete(child)
      deferred.delete(child)
      if (child.pid !== undefined) admin.workerExited(index, child.pid)
      slot.pid = undefined
      slot.adminUrl = undefined
      if (stopping) return
      // At start-up, a worker that cannot start (bad config, port taken) would fail again: stop
      // everything. Once any worker has served, the proxy is up and the others still serve (with
      // the config they read): a config file edited into an error since must not take them down
      // with a crashed one, even one that crashed before it was listening itself.
      const cannotStart = code === ExitCode.USAGE || code === ExitCode.START_FAILED
      if (cannotStart && served.size === 0) {
        log('error', 'worker cannot start; stopping', { worker: index, code })
        fatal?.(code)
        return
      }
      // The back-off doubles for a worker that keeps dying, and starts again for one that had run a
      // while (its own count: slot.restarts is proxy_worker_restarts_total, which never goes down).
      slot.restarts++
      const n = performance.now() - (startedAtMs.get(index) ?? 0) >= STABLE_RUN_MS ? 1 : (deathsInARow.get(index) ?? 0) + 1
      deathsInARow.set(index, n)
      const delayMs = Math.min(10_000, 100 * 2 ** Math.min(n, 7))
      if (cannotStart) log('error', 'worker cannot start again (its error is above: the config file, or the port?); retrying while the other workers serve', { worker: index, code, restart_in_ms: delayMs })
      else log('warn', 'worker died; restarting', { worker: index, code, signal, restart_in_ms: delayMs })
      setTimeout(() => {
        if (!stopping) start(index)
      }, delayMs)
    })
  }
  const onHup = () => {
    if (stopping) return void log('warn', 'SIGHUP while the workers drain: ignored (SIGKILL stops at once)')
    if (opts.configPath !== undefined && readOnceConfig(opts.configPath)) log('warn', readOnceReloadNote(opts.configPath))
    try {
      const next = opts.reloadConfig?.()
      if (next) {
        pending = next
        if (JSON.stringify(next.admin.listen) !== JSON.stringify(opts.admin.listen)) log('warn', 'the admin address is read at start with --workers; restart to move it', { admin: admin.url ?? 'off' })
        // The workers listen where the supervisor claimed (its --listen overrides their file): a new one needs a restart.
        const moved = next.server.listen
        if (moved.host !== listen.host || (moved.port !== listen.port && moved.port !== port)) log('warn', 'server.listen is read at start with --workers; restart to move it (the workers keep listening where they were)', { listen: hostPort(listen.host, port), configured: hostPort(moved.host, moved.port) })
      }
    } catch {
      // The workers log why the config was rejected; they keep theirs and so does the supervisor
      // (not an earlier SIGHUP's either, should a worker say ok to this one: it read another file).
      pending = undefined
    }
    log('info', 'reloading all workers')
    signalAll('SIGHUP')
  }
  process.on('SIGHUP', onHup)
  // Handlers stay for the whole drain: a second SIGTERM or a SIGHUP without one would end the
  // supervisor at once (exit 143 or 129), leaving its workers to find it gone.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => () => (stopping ? log('warn', `${sig} while the workers drain: ignored (SIGKILL stops at once)`) : resolve(sig))
    process.on('SIGTERM', onSignal('SIGTERM'))
    process.on('SIGINT', onSignal('SIGINT'))
    process.on('SIGQUIT', onSignal('SIGQUIT'))
  })
  // Workers start, and the supervisor says it has, once every signal has its handler (serve.ts does the same).
  for (let i = 0; i < count; i++) start(i)
  const exposed = exposedAdminWarning(opts.admin)
  if (exposed) log('warn', exposed)
  log('info', 'supervisor started', { workers: count, pid: process.pid, admin: admin.url ?? 'off' })
  trimmer = new PageTrimmer(opts.trimIntervalMs)
  const signal = await Promise.race([stopSignal, fatalExit])
  trimmer.close()
  stopping = true
  log('info', 'stopping workers', { signal })
  // The workers stop listening as their drain begins: a successor may take the address meanwhile.
  supervisorLocks.close()
  // 'close': the worker has exited and the last of its stdout has been read.
  await Promise.all(
    [...workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (stdioClosed.has(w)) return resolve()
          w.once('close', () => resolve())
          signalWorker(w, 'SIGTERM')
        }),
    ),
  )
  stdoutLines.close()
  await admin.close()
  process.off('SIGUSR1', onUsr1)
  log('info', 'all workers stopped')
  return typeof signal === 'number' ? signal : ExitCode.OK
}
