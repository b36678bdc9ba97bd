/**
 * The paths the config names that are not read as TLS files (tls-files.ts does those): the access
 * log file and the ACME state directory, checked for their kind before serve starts (and by
 * check, as serve would). serve opens the log for appending and creates the file, never its
 * directory; it creates the state directory and any missing parents. A directory where the log
 * file goes, or no directory for it, left serve running without its log (it only said so); a
 * file where the state directory goes failed only once ACME started. Nothing is created here.
 */
import { accessSync, constants, statSync, type Stats } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { ResolvedConfig } from '../config/schema.ts'
import { ProxyError } from '../lib/errors.ts'

/** access_log values that are the process's own streams, or none: no path to check. */
const NOT_A_PATH = new Set(['stdout', 'stderr', 'off', '/dev/stdout', '/dev/stderr'])

/** Throws E_LOG_FILE (access_log) or E_TLS_FILES (state_dir, as serve's ACME start does), naming where the key was set. */
/**
 * A path as an error shows it: a relative one with what it is read as, since it is read from the
 * working directory (systemd's is /), not the config file's: `"san.pem" (from the working
 * directory /: /san.pem)`. Until the eighteenth round of outside reviews a config that checked in
 * its own directory failed as a service with only `cannot read "san.pem": ENOENT`.
 */
export function shownPath(path: string): string {
  return isAbsolute(path) ? `"${path}"` : `"${path}" (from the working directory ${process.cwd()}: ${resolve(path)})`
}

export function checkConfigPaths(config: ResolvedConfig): void {
  checkAccessLogPath(config)
  if (config.acme.domains.length > 0) checkStateDir(config.acme.stateDir, config.fileKeys?.['acme.state_dir'] ?? 'acme.state_dir')
}

/** The access log's path alone (a reload reads no ACME settings); E_LOG_FILE. */
export function checkAccessLogPath(config: ResolvedConfig): void {
  if (!NOT_A_PATH.has(config.log.accessLog)) checkLogFile(config.log.accessLog, config.fileKeys?.['log.access_log'] ?? 'log.access_log')
}

/** The log file may not exist yet; then its directory must (an existing FIFO or device is written as a stream). */
function checkLogFile(path: string, name: string): void {
  const st = statOf(path)
  if (st === 'missing') {
    const parent = dirname(resolve(path))
    const up = statOf(parent)
    if (up === 'missing') throw new ProxyError('E_LOG_FILE', `${name}: cannot create ${shownPath(path)}: its directory "${parent}" does not exist (serve does not create it); create it, or give another path`)
    if (typeof up === 'string' || !up.isDirectory()) throw new ProxyError('E_LOG_FILE', `${name}: cannot create "${path}": ${notADirectory(parent, up)}; give a path in a directory`)
    const denied = deniedWrite(parent, constants.W_OK | constants.X_OK)
    if (denied) throw new ProxyError('E_LOG_FILE', `${name}: cannot create "${path}": ${denied} on its directory "${parent}"${asWho()}; let this user write there, or give another path`)
    return
  }
  if (typeof st === 'string') throw new ProxyError('E_LOG_FILE', `${name}: cannot open ${shownPath(path)}: ${st}; check the path and permissions`)
  if (st.isDirectory()) throw new ProxyError('E_LOG_FILE', `${name}: ${shownPath(path)} is a directory; give the path of a file, e.g. "${join(path, 'access.log')}"`)
  const denied = deniedWrite(path, constants.W_OK)
  if (denied) throw new ProxyError('E_LOG_FILE', `${name}: cannot write ${shownPath(path)}: ${denied}${asWho()}; let this user write it, or give another path`)
}

/**
 * Why the process may not write `path` (access(2): EACCES, EROFS), or undefined. Serve opens the
 * log only once it runs, and a log it could not open left it serving without one (it only said
 * so). Root passes access(2) on any mode; a file system that refuses root too is only seen then.
 */
function deniedWrite(path: string, mode: number): string | undefined {
  try {
    accessSync(path, mode)
    return undefined
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'a read-only file system' : undefined
  }
}

/** " (as uid N)": whose permissions were asked. */
function asWho(): string {
  return typeof process.getuid === 'function' ? ` (as uid ${process.getuid()})` : ''
}

/** The state directory, or else its nearest existing ancestor, must be a directory. */
function checkStateDir(path: string, name: string): void {
  let at = resolve(path)
  // Bounded by the path's depth: each step goes one directory up, and the root exists.
  for (;;) {
    const st = statOf(at)
    if (st !== 'missing') {
      if (typeof st !== 'string' && st.isDirectory()) return
      const onTheWay = at === resolve(path) ? '' : ` (on the way to "${path}")`
      throw new ProxyError('E_TLS_FILES', `${name}: ${typeof st === 'string' ? `cannot use "${at}": ${st}` : `"${at}" is not a directory`}${onTheWay}; give a directory (serve creates it if missing)`)
    }
    if (dirname(at) === at) return
    at = dirname(at)
  }
}

/** stat() of `path`: its Stats, "missing" (ENOENT, or a file on its way: ENOTDIR), or the error code. */
function statOf(path: string): Stats | 'missing' | string {
  try {
    return statSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : (code ?? String(err))
  }
}

function notADirectory(path: string, st: Stats | string): string {
  return typeof st === 'string' ? `"${path}" cannot be used: ${st}` : `"${path}" is not a directory`
}
