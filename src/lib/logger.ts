/**
 * Operational log lines (not the access log): one line per event on stderr, as
 * `time level message key=value ...`. Never throws; never blocks the caller.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void

export function createLogger(write: (line: string) => void, minLevel: LogLevel = 'info'): LogFn {
  const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }
  const min = order[minLevel]
  return (level, msg, fields) => {
    if (order[level] < min) return
    let line = `${new Date().toISOString()} ${level.padEnd(5)} ${msg}`
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue
        const text = typeof v === 'string' ? v : JSON.stringify(v)
        line += ` ${k}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`
      }
    }
    try {
      write(`${line}\n`)
    } catch {
      // logging must never take the proxy down
    }
  }
}
