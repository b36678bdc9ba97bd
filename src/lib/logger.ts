/**
 * Operational log lines (not the access log): one line per event on stderr, as
 * `time level message key=value ...`. Never throws; never blocks the caller.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void

/**
 * A value is quoted (JSON) when it holds whitespace, `"`, `=` or a control character; inside the
 * quotes DEL, the C1 controls (U+009B is CSI, the one-character ESC [ a terminal acts on) and the
 * line and paragraph separators, which JSON.stringify leaves raw, are written \u00XX as well: a
 * value taken from a client (an HTTP/2 field name in a refusal's reason) never reaches the
 * operator's terminal as a control, as the access log has it (observe/access-log.ts).
 */
const QUOTE = /[\s"=\x00-\x1f\x7f-\x9f\u2028\u2029]/
const RAW_IN_JSON = /[\x7f-\x9f\u2028\u2029]/g
const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

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
        line += ` ${k}=${QUOTE.test(text) ? JSON.stringify(text).replace(RAW_IN_JSON, unicodeEscape) : text}`
      }
    }
    try {
      write(`${line}\n`)
    } catch {
      // logging must never take the proxy down
    }
  }
}
