/**
 * The worker supervisor for `serve --workers N`: starts N copies of this same command, each
 * accepting on the shared port (SO_REUSEPORT), restarts a worker that dies (with a backoff),
 * passes SIGHUP on to all, and on SIGTERM/SIGINT drains all and exits when they have.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { UsageError } from '../lib/errors.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'

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

export async function runSupervisor(count: number, io: CliIo): Promise<number> {
  const log = createLogger(io.err)
  const [cmd, ...args] = selfCommand()
  const workers = new Map<number, ChildProcess>()
  let stopping = false
  const restarts = new Map<number, number>()

  const start = (index: number) => {
    const child = spawn(cmd!, args, { stdio: 'inherit', env: { ...process.env, [WORKER_ENV]: String(index) } })
    workers.set(index, child)
    child.once('exit', (code, signal) => {
      workers.delete(index)
      if (stopping) return
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
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
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
  return ExitCode.OK
}
