/**
 * Deno (2.9.2 and later) starts its inspector on 127.0.0.1:9229 when the process gets SIGUSR1,
 * as Node does, whatever handler the program has: a log rotation (SIGUSR1 is the access log's
 * reopen signal, nginx's convention) opened a debugger any local user could attach to and run
 * code in the proxy. On Deno, after a SIGUSR1, an inspector the process did not start with (not
 * one from --inspect) is closed as soon as it appears, or at once if Deno was quicker than the
 * handler. Bun opens none.
 */
import type { LogFn } from '../lib/logger.ts'
import { isDeno } from './detect.ts'

interface InspectorModule {
  url(): string | undefined
  close(): void
}

/** How long after the signal the inspector is looked for, and how often. */
const WATCH_MS = 1000
const STEP_MS = 5

let inspector: Promise<InspectorModule | undefined> | undefined
/** The process started with an inspector (--inspect): the operator's, never closed. */
let startedWithOne = false

/** Loads node:inspector on Deno, once, at start: whether an inspector is open then is --inspect's. */
export function prepareSignalInspector(): void {
  if (!isDeno || inspector) return
  inspector = import('node:inspector').then(
    (m) => {
      const mod = (m.default ?? m) as unknown as InspectorModule
      startedWithOne = mod.url() !== undefined
      return mod
    },
    () => undefined,
  )
}

/** Called from a SIGUSR1 handler: closes the inspector Deno starts for the signal, and logs that it did. */
export function closeSignalInspector(log: LogFn): void {
  if (!isDeno) return
  prepareSignalInspector()
  void inspector!.then((m) => {
    if (!m || startedWithOne) return // none, or --inspect's: the operator's
    const startedMs = performance.now()
    const look = () => {
      const url = m.url()
      if (url !== undefined) {
        m.close()
        return log('warn', 'Deno opened its inspector for SIGUSR1; closed it (on Deno, SIGHUP reopens the access log too)', { inspector: url })
      }
      if (performance.now() - startedMs < WATCH_MS) setTimeout(look, STEP_MS)
    }
    look()
  })
}
