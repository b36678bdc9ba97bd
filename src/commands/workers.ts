/**
 * The worker supervisor for `serve --workers N`: starts N copies of this same command, each
 * accepting on the shared port (SO_REUSEPORT), restarts a worker that dies (with a backoff),
 * passes SIGHUP on to all, and on SIGTERM/SIGINT drains all and exits when they have.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { HostPort } from '../config/schema.ts'
import { availableParallelism } from 'node:os'
import { UsageError } from '../lib/errors.ts'
import { listenError, type ListenerRole } from '../lib/listen-error.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'
import { hostPort } from '../lib/net.ts'

/** Set in a worker's environment to its index; its absence marks the supervisor. */
export const WORKER_ENV = 'PROXY_WORKER'

export function parseWorkers(raw: unknown): number {
  if (raw === undefined) return 1
  if (raw === 'auto') return Math.max(1, availableParallelism())
  const n = typeof raw === 'number' ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new UsageError(`--workers: "${String(raw)}" is not a worker count; use a number from 1 to 256, or "auto"`)
  return n
}

/** The command line that re-runs this program: the compiled binary, or `bun src/main.ts`. */
function selfCommand(): string[] {
  const argv = process.argv
  // Compiled: argv[0] is the binary (argv[1] may repeat it); under `bun file.ts`: [bun, file].
  const script = argv[1]
  if (script && /\.(ts|js|mjs)$/.test(script) && !script.startsWith('/$bunfs/')) return [process.execPath, script, ...argv.slice(2)]
  return [process.execPath, ...argv.slice(2)]
}

/**
 * Binds host:port once, without SO_REUSEPORT, and lets go: fails with E_LISTEN when anything
 * listens there. Workers bind with SO_REUSEPORT, so without this check a second instance with
 * --workers on the same port would silently share it with the first (measured: both started).
 * Returns the port, a concrete one for port 0 ("any free port"), so every worker shares it.
 */
async function claimPort(role: ListenerRole, host: string, port: number, note?: string): Promise<number> {
  const srv = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen({ host, port }, () => resolve())
    })
  } catch (err) {
    throw listenError(role, host, port, err, note)
  }
  const p = (srv.address() as { port: number }).port
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return p
}

export async function runSupervisor(count: number, io: CliIo, listen: HostPort, admin: HostPort | undefined): Promise<number> {
  const log = createLogger(io.err)
  const [cmd, ...baseArgs] = selfCommand()
  // Flags override the config file, so a concrete --listen makes every worker share one port.
  const port = await claimPort('proxy', listen.host, listen.port)
  // Worker i serves its admin endpoints on the admin port + i: all must be free before any starts.
  if (admin && admin.port !== 0) {
    for (let i = 0; i < count; i++) await claimPort('admin', admin.host, admin.port + i, i > 0 ? `worker ${i} of ${count} uses admin port ${admin.port} + ${i}` : undefined)
  }
  const args = [...baseArgs, '--listen', hostPort(listen.host, port)]
  const workers = new Map<number, ChildProcess>()
  let stopping = false
  const restarts = new Map<number, number>()
  let fatal: ((code: number) => void) | undefined
  const fatalExit = new Promise<number>((resolve) => (fatal = resolve))

  const start = (index: number) => {
    const child = spawn(cmd!, args, { stdio: 'inherit', env: { ...process.env, [WORKER_ENV]: String(index) } })
    workers.set(index, child)
    child.once('exit', (code, signal) => {
      workers.delete(index)
      if (stopping) return
      // A worker that cannot start (bad config, port taken) would fail again: stop everything.
      if (code === ExitCode.USAGE || code === ExitCode.START_FAILED) {
        log('error', 'worker cannot start; stopping', { worker: index, code })
        fatal?.(code)
        return
      }
      const n = (restarts.get(index) ?? 0) + 1
      restarts.set(index, n)
      const delayMs = Math.min(10_000, 100 * 2 ** Math.min(n, 7))
      log('warn', 'worker died; restarting', { worker: index, code, signal, restart_in_ms: delayMs })
      setTimeout(() => {
        if (!stopping) start(index)
      }, delayMs)
    })
  }
  for (let i = 0; i < count; i++) start(i)
  log('info', 'supervisor started', { workers: count, pid: process.pid })

  const onHup = () => {
    log('info', 'reloading all workers')
    for (const w of workers.values()) w.kill('SIGHUP')
  }
  process.on('SIGHUP', onHup)
  const signal = await Promise.race([
    new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'))
      process.once('SIGINT', () => resolve('SIGINT'))
    }),
    fatalExit,
  ])
  stopping = true
  process.off('SIGHUP', onHup)
  log('info', 'stopping workers', { signal })
  await Promise.all(
    [...workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null) return resolve()
          w.once('exit', () => resolve())
          w.kill('SIGTERM')
        }),
    ),
  )
  log('info', 'all workers stopped')
  return typeof signal === 'number' ? signal : ExitCode.OK
}
