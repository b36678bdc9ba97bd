/**
 * The process's open-files limit, and how many sockets the client listener lets the proxy hold
 * under it. Out of descriptors, Bun's accept loop retries the listening socket at once, forever
 * (a whole core, and no word: an outside review, twenty-second round); so the own listener
 * answers new clients 503 before the table is full, while a reserve is left for what it does not
 * count (the listeners, the resolver's and the health checks' sockets, log files, the admin port,
 * TLS clients waiting for their refusal) and accepting still succeeds. HAProxy derives its maxconn
 * from the same limit.
 */
import { readFileSync } from 'node:fs'

/** The soft RLIMIT_NOFILE as Linux reports it (Bun raises it to the hard limit as it starts); undefined elsewhere or unlimited. */
export function openFilesLimit(limitsText?: string): number | undefined {
  let text = limitsText
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8')
    } catch {
      return undefined
    }
  }
  const m = /^Max open files\s+(\d+)\s/m.exec(text)
  return m ? Number(m[1]) : undefined
}

/**
 * Descriptors kept out of the budget: a quarter of the limit, at most 512; at least 96 where the
 * limit allows (64 TLS clients may wait for their refusal beside the process's own dozen), else half.
 */
export function reservedFiles(limit: number): number {
  return Math.min(512, Math.max(Math.floor(limit / 4), Math.min(96, Math.floor(limit / 2))))
}

/** What the listener keeps to under an open-files limit (see budget and trimAt). */
export interface FilesBudget {
  limit: number
  /**
   * Client and upstream connections the proxy may hold before new clients are refused. The
   * listener counts each client as one upstream connection too, or the upstream connections open
   * where there are more (an idle pool, HTTP/2 streams): counted as they stand, a burst of clients
   * accepted under it dialled past it for their requests, their connections then idle in the pool,
   * and the table stayed full (measured: 122 clients and 122 upstream connections in a table of
   * 256, the accept loop spinning again). HAProxy too counts two descriptors a client.
   */
  budget: number
  /**
   * Client and upstream connections past which the listener's sweep closes idle pooled ones on its
   * own (halfway into the reserve: the table is close to full, where no accept would come to ask).
   */
  trimAt: number
}

/** The budget under `limit` (openFilesLimit()'s, read once by the caller); undefined: no limit known. */
export function filesBudget(limit: number | undefined): FilesBudget | undefined {
  if (limit === undefined) return undefined
  const budget = Math.max(2, limit - reservedFiles(limit))
  return { limit, budget, trimAt: budget + Math.floor((limit - budget) / 2) }
}

/** Fewer client connections than this under the budget is said at start (a limit left low, as a container's or a shell's). */
const LOW_CLIENTS = 4096

/** The start-up warning for a low limit, or undefined. */
export function lowLimitWarning(files: FilesBudget | undefined): string | undefined {
  if (files === undefined || files.budget / 2 >= LOW_CLIENTS) return undefined
  return `the open-files limit is ${files.limit}: the proxy takes about ${Math.floor(files.budget / 2)} client connections at once (each counted with an upstream one), then answers 503; raise LimitNOFILE= in the systemd unit or ulimit -n`
}
