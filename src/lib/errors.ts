/**
 * Typed errors with stable codes. Every error a user can cause carries a `code` that tests and
 * scripts match on, and a message that says what to do instead. Mapping errors to HTTP statuses
 * lives in proxy/status.ts; mapping them to exit codes lives in lib/exit-codes.ts.
 */

export type ErrorCode =
  | 'E_USAGE' // bad flag or argument
  | 'E_CONFIG' // config file unreadable, bad TOML, unknown key, bad value
  | 'E_LISTEN' // cannot bind a listener
  | 'E_TLS_FILES' // certificate or key file unreadable (or the ACME state directory unusable)
  | 'E_LOG_FILE' // the access log file cannot be opened: a directory, or no directory for it
  | 'E_SLO' // bench: service level objective broken
  | 'E_BENCH' // bench: the run itself failed (no successful request)
  | 'E_DNS' // resolver: no answer
  | 'E_INTERNAL'

export class ProxyError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A bad command line: unknown flag, missing argument, malformed value. */
export class UsageError extends ProxyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_USAGE', message, options)
  }
}

/** Where in a config a problem is: the file, the key path, and a line/column when known. */
export interface ConfigLocation {
  file?: string
  keyPath?: string
  line?: number
  column?: number
}

/** A config problem. The message names the file, the key path and the line where known. */
export class ConfigError extends ProxyError {
  readonly location: ConfigLocation
  constructor(location: ConfigLocation, problem: string, options?: { cause?: unknown }) {
    super('E_CONFIG', formatConfigMessage(location, problem), options)
    this.location = location
  }
}

function formatConfigMessage(loc: ConfigLocation, problem: string): string {
  return `${formatConfigLocation(loc)}: ${problem}`
}

/** "proxy.toml:3: server.tls_cert", "(flags): --tls-cert": how a config message names its place. */
export function formatConfigLocation(loc: ConfigLocation): string {
  let where = loc.file ?? '(flags)'
  if (loc.line !== undefined) where += `:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}`
  // One line, whatever a quoted TOML key holds: its control characters escaped as in the value.
  const keyPath = loc.keyPath?.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1))
  return keyPath ? `${where}: ${keyPath}` : where
}

export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code
  }
  return undefined
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
