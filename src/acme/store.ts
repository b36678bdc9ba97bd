/**
 * The state directory: the ACME account key, each certificate and its key as PEM files, the
 * HTTP-01 answers in flight, and the lock that lets one process of several order while the
 * others wait and pick up the result. Layout, under one directory per ACME server (so staging
 * and production never mix):
 *   <state>/<ca>/account.key            0600
 *   <state>/<ca>/certs/<name>/key.pem   0600   written before cert.pem
 *   <state>/<ca>/certs/<name>/cert.pem  0644
 *   <state>/<ca>/challenges/<token>
 *   <state>/<ca>/order.lock             {"pid","host","run","atMs"}
 * Directories are 0700. Every write is write-to-temp then rename (link for the account key, so
 * the first of two racing processes wins), so a reader sees a whole file.
 */
import { createPrivateKey, randomBytes, randomUUID, X509Certificate, type KeyObject } from 'node:crypto'
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { AcmeError } from './errors.ts'
import { generateAccountKey } from './jws.ts'

export interface StoredCert {
  certPem: string
  keyPem: string
}

/** An order holds the lock for minutes at most (client.ts polls for 5); older locks are stale. */
const LOCK_STALE_MS = 15 * 60_000
/** How often an order in progress marks its lock as held (well inside LOCK_STALE_MS). */
export const LOCK_REFRESH_MS = 60_000
/**
 * This process's run, written into the lock: a lock with our pid and host but another run was
 * left by an earlier process that had our pid (PID 1 in a restarted container), so it is stale.
 */
const RUN_ID = randomUUID()

export class StateStore {
  readonly caDir: string

  constructor(
    readonly stateDir: string,
    directoryUrl: string,
  ) {
    this.caDir = join(stateDir, caDirName(directoryUrl))
    this.ensureDirs()
  }

  /**
   * Creates the CA's directory and its challenges/ and certs/ if missing: at start, and before each
   * order (tryLock), so that a state directory removed while the proxy runs (a cleanup, a volume
   * remounted) is made again rather than failing every renewal until a restart.
   */
  ensureDirs(): void {
    try {
      mkdirSync(this.caDir, { recursive: true, mode: 0o700 })
      mkdirSync(join(this.caDir, 'challenges'), { recursive: true, mode: 0o700 })
      mkdirSync(join(this.caDir, 'certs'), { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new AcmeError('E_ACME_STATE', `cannot create the state directory ${this.caDir}: ${(err as NodeJS.ErrnoException).code ?? err}; set --state-dir to a writable directory`, { cause: err })
    }
  }

  /**
   * Loads the account key, or creates it: written whole to a temp file, then linked into place,
   * so two processes racing both end up with the first one's key and a crash or a full disk
   * never leaves a part of one. An empty file (a write cut off that way by an earlier version)
   * holds no account: it is replaced.
   */
  accountKey(): KeyObject {
    const file = this.accountKeyFile
    let text: string | undefined
    try {
      text = readStateFile(file)
      if (text.trim() !== '') return createPrivateKey(text)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AcmeError('E_ACME_STATE', `cannot read the ACME account key ${file}: ${(err as Error).message}; fix its permissions, or delete it to register a new account`, { cause: err })
    }
    const key = generateAccountKey()
    const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string
    try {
      if (text !== undefined) {
        atomicWrite(file, pem, 0o600)
        return key
      }
      const tmp = writeTemp(file, pem, 0o600)
      try {
        linkSync(tmp, file) // fails with EEXIST, never replaces: the first process's key stays
      } finally {
        rmSync(tmp, { force: true })
      }
      return key
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return createPrivateKey(readStateFile(file))
      throw new AcmeError('E_ACME_STATE', `cannot write the ACME account key ${file}: ${(err as Error).message}`, { cause: err })
    }
  }

  get accountKeyFile(): string {
    return join(this.caDir, 'account.key')
  }

  certDir(name: string): string {
    return join(this.caDir, 'certs', name.replace(/[^a-z0-9.-]/gi, '_'))
  }

  /** The stored pair, or undefined when missing or when the key does not match the certificate. */
  loadCert(name: string): StoredCert | undefined {
    const read = this.readCert(name)
    return 'certPem' in read ? read : undefined
  }

  /** Why the stored pair for `name` is not used (loadCert gave none), for the log: undefined when there is none at all. */
  unusableBecause(name: string): string | undefined {
    const read = this.readCert(name)
    return 'certPem' in read ? undefined : read.problem
  }

  /** The stored pair for `name`, or why there is none usable (undefined: no files). */
  private readCert(name: string): StoredCert | { problem: string | undefined } {
    const dir = this.certDir(name)
    let certPem: string
    let keyPem: string
    try {
      certPem = readStateFile(join(dir, 'cert.pem'))
      keyPem = readStateFile(join(dir, 'key.pem'))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      return { problem: code === 'ENOENT' ? undefined : `cannot read ${dir}: ${code ?? err}` }
    }
    try {
      // A writer in another process may be between its two renames: a mismatch is "not yet".
      if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) return { problem: `${dir}/key.pem is not the key of cert.pem` }
    } catch (err) {
      return { problem: `${dir}: ${(err as Error).message}` }
    }
    return { certPem, keyPem }
  }

  saveCert(name: string, cert: StoredCert): void {
    const dir = this.certDir(name)
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      atomicWrite(join(dir, 'key.pem'), cert.keyPem, 0o600)
      atomicWrite(join(dir, 'cert.pem'), cert.certPem, 0o644)
    } catch (err) {
      throw this.unwritable('cannot save the certificate in', dir, err)
    }
  }

  /**
   * Throws saveCert's error now when the certificate's directory will not take a file: asked
   * before an order, so that a certificate the CA issues (and counts against its rate limits) is
   * not then thrown away for want of a place to keep it.
   */
  checkWritable(name: string): void {
    const dir = this.certDir(name)
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      rmSync(writeTemp(join(dir, 'probe'), '', 0o600))
    } catch (err) {
      throw this.unwritable('cannot save the certificate in', dir, err)
    }
  }

  /** The error for a write the state directory refused (EROFS, EACCES, ENOSPC ...): what, where, and what to do. */
  private unwritable(what: string, path: string, err: unknown): AcmeError {
    const reason = (err as Error).message?.split(',')[0] ?? String(err) // "EROFS: read-only file system"
    return new AcmeError('E_ACME_STATE', `${what} ${path}: ${reason}; make ${this.caDir} writable by this user (or set --state-dir to a writable directory)`, { cause: err })
  }

  challengeFile(token: string): string | undefined {
    // Tokens are base64url (RFC 8555 §8.3); anything else must not become a path.
    return /^[A-Za-z0-9_-]{1,256}$/.test(token) ? join(this.caDir, 'challenges', token) : undefined
  }

  /** Takes the order lock; false when a live process holds it. */
  tryLock(nowMs: number): boolean {
    this.ensureDirs()
    const file = join(this.caDir, 'order.lock')
    const body = JSON.stringify({ pid: process.pid, host: hostname(), run: RUN_ID, atMs: nowMs })
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o600)
        writeSync(fd, body)
        closeSync(fd)
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw this.unwritable('cannot create the order lock', file, err)
      }
      if (!lockIsStale(file, nowMs)) return false
      try {
        rmSync(file, { force: true })
      } catch (err) {
        throw this.unwritable('cannot remove the stale order lock', file, err)
      }
    }
    return false
  }

  /**
   * Marks the order lock as still held (its atMs now), if this process holds it: an order against a
   * CA slow at every step can outlast LOCK_STALE_MS, and another process would then take the lock
   * as left behind and order too. Rewritten in place: a reader that sees it half-written judges
   * it by its mtime, which is fresh.
   */
  refreshLock(nowMs: number): void {
    const file = join(this.caDir, 'order.lock')
    try {
      const held = JSON.parse(readStateFile(file)) as { pid?: number; run?: string }
      if (held.pid === process.pid && held.run === RUN_ID) writeFileSync(file, JSON.stringify({ ...held, atMs: nowMs }))
    } catch {
      // Gone or unreadable: the next tryLock decides.
    }
  }

  /** Removes the order lock if this process took it. */
  unlock(): void {
    const file = join(this.caDir, 'order.lock')
    try {
      const held = JSON.parse(readStateFile(file)) as { pid?: number; run?: string }
      if (held.pid === process.pid && held.run === RUN_ID) rmSync(file, { force: true })
    } catch {
      // already gone
    }
  }
}

/** "https://acme-v02.api.letsencrypt.org/directory" -> "acme-v02.api.letsencrypt.org-directory". */
export function caDirName(directoryUrl: string): string {
  const u = new URL(directoryUrl)
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/-+$/, '')
}

function lockIsStale(file: string, nowMs: number): boolean {
  try {
    const held = JSON.parse(readStateFile(file)) as { pid?: number; host?: string; run?: string; atMs?: number }
    if (typeof held.atMs !== 'number' || nowMs - held.atMs > LOCK_STALE_MS) return true
    // Our pid: this process holds it (another manager of ours; check() is single-flight) or an
    // earlier run with the same pid left it. kill(pid, 0) cannot tell, the run id can.
    if (held.host === hostname() && held.pid === process.pid) return held.run !== RUN_ID
    if (held.host === hostname() && typeof held.pid === 'number') {
      try {
        process.kill(held.pid, 0)
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ESRCH' // the holder died
      }
    }
    return false
  } catch {
    // Unreadable or half-written: judge by age alone.
    try {
      return nowMs - statSync(file).mtimeMs > LOCK_STALE_MS
    } catch {
      return true
    }
  }
}

/** Temp file, then rename: a reader, or the file after a crash, is the old file or the whole new one. */
function atomicWrite(file: string, text: string, mode: number): void {
  const tmp = writeTemp(file, text, mode)
  try {
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

/**
 * Writes `text` to a new temp file beside `file`, synced, and returns its path. The temp file is
 * new (O_CREAT|O_EXCL, which also refuses a symlink at its name) and unguessable, so nothing left
 * in the directory can redirect a key to another path.
 */
function writeTemp(file: string, text: string, mode: number): string {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(tmp, 'wx', mode)
  try {
    // writeFileSync on a descriptor writes until all is written or throws (a full disk: ENOSPC);
    // one writeSync may write part and return, which would then be linked into place cut short.
    writeFileSync(fd, text)
    fchmodSync(fd, mode) // the umask may have narrowed or (for 0644) left it; be exact
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(tmp, { force: true })
    throw err
  }
  closeSync(fd)
  return tmp
}

/**
 * A state file's text: a regular file of at most 1 MiB, looked at before it is opened (a FIFO put
 * among the state files blocked the start in open(); third review of the nineteenth round). Other
 * kinds throw an error with code ENOTREGULAR, which the callers report as they report EACCES.
 */
function readStateFile(file: string): string {
  const st = statSync(file)
  if (!st.isFile() || st.size > 1024 * 1024) throw Object.assign(new Error(`${file} is not a regular file of at most 1 MiB`), { code: 'ENOTREGULAR' })
  return readFileSync(file, 'utf8')
}
