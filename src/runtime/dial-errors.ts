/**
 * Why a connect failed, in the proxy's vocabulary (DialError; proxy/errors.ts maps the codes to
 * statuses), and the one failure that is this process's, not the address's: no file descriptor
 * left for the socket. Connecting is socket.ts's.
 */
import { closeSync, openSync } from 'node:fs'

/** NO_FILE_DESCRIPTORS: the process (EMFILE) or the system (ENFILE) had none left for the socket; the address was not tried. */
export type DialErrorCode = 'CONNECT_REFUSED' | 'CONNECT_TIMEOUT' | 'CONNECT_FAILED' | 'TLS_FAILED' | 'NO_FILE_DESCRIPTORS'

/** A failed connect; the pool names the address (host:port) before the message. */
export class DialError extends Error {
  readonly code: DialErrorCode
  constructor(code: DialErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'DialError'
  }
}

/**
 * The DialError for a connect's error event (`otherwise` when it is neither a refusal nor a
 * lack of descriptors). Bun 1.4.5 reports a socket it could not create for lack of descriptors
 * as ECONNREFUSED (errno -111, syscall "connect", from Bun.connect and node:net alike, measured
 * under `ulimit -n 64`), the same as a port that refuses; so a refusal is checked against the
 * descriptor table (outOfDescriptors) before it is put on the address. node:net on Deno says
 * EMFILE or ENFILE itself.
 */
export function connectFailure(err: Error, otherwise: 'CONNECT_FAILED' | 'TLS_FAILED' = 'CONNECT_FAILED'): DialError {
  const code = (err as { code?: string }).code
  if (code === 'EMFILE' || code === 'ENFILE' || (code === 'ECONNREFUSED' && outOfDescriptors())) {
    return new DialError('NO_FILE_DESCRIPTORS', `no file descriptor left for the connection (the connect failed with ${code}): ${OUT_OF_DESCRIPTORS_HINT}`, { cause: err })
  }
  return new DialError(code === 'ECONNREFUSED' ? 'CONNECT_REFUSED' : otherwise, err.message, { cause: err })
}

/** What an operator does about it. */
export const OUT_OF_DESCRIPTORS_HINT = 'raise the limit on open files (LimitNOFILE= in the systemd unit, ulimit -n in the shell that starts the proxy) or lower server.max_connections'

/**
 * Whether this process cannot open a file descriptor now: opening /dev/null fails with EMFILE
 * (its table is full) or ENFILE (the system's is). Two system calls, made only after a refused
 * connect. A descriptor freed between the connect and this check makes it say false: the refusal
 * then counts against the address, as every refusal did before.
 */
export function outOfDescriptors(): boolean {
  let fd: number
  try {
    fd = openSync('/dev/null', 'r')
  } catch (err) {
    const code = (err as { code?: string }).code
    return code === 'EMFILE' || code === 'ENFILE'
  }
  closeSync(fd)
  return false
}
