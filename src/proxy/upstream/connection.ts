/**
 * An HTTP/1.1 client connection to one upstream address: one exchange at a time (exchange.ts:
 * write a request, read the response head, stream the body with backpressure), then it reports
 * once, through `onRelease`, whether it can be reused. Pooling is in pool.ts; the socket itself
 * in runtime/socket.ts.
 */
import { HeadReader } from '../../http1/head-reader.ts'
import type { Conn, ConnHandlers } from '../../runtime/socket.ts'
import { Exchange, type ExchangeOptions, type ExchangeSink, type IncomingResponse, type OutgoingRequest } from './exchange.ts'

export type { ExchangeEnd, ExchangeOptions, ExchangeSink, IncomingResponse, OutgoingRequest } from './exchange.ts'

export type ReleaseFn = (connection: Http1Connection, reusable: boolean) => void

let nextConnectionId = 1

/**
 * An idle connection whose upstream said how long it keeps one (Keep-Alive: timeout=N) is given
 * up this long before that, so that no request is sent as the upstream closes it (a POST lost so
 * cannot be retried); undici does the same. Node.js servers say timeout=5 (and close at 5 s).
 * For a shorter time the margin is half of it: timeout=1 (a Node server's keepAliveTimeout of 1 to
 * 1.999 s) keeps a connection for 0.5 s, where a whole second's margin kept none, and every request
 * dialled anew (an outside review measured a quarter to half nginx's req/s there). timeout=0: none.
 */
export const KEEP_ALIVE_MARGIN_MS = 1000

/**
 * Open connections, whose exchanges' deadlines (header_timeout, idle_timeout) one sweep timer
 * checks for all of them, instead of a timer made and cleared per request. A deadline fires up to
 * SWEEP_MS late. The set changes when a connection opens or closes, not per request.
 */
const open = new Set<Http1Connection>()
const SWEEP_MS = 100
let sweeper: ReturnType<typeof setInterval> | undefined

function sweep(): void {
  const now = performance.now()
  for (const c of open) c.checkDeadlines(now)
}

function track(c: Http1Connection): void {
  open.add(c)
  if (sweeper === undefined) {
    sweeper = setInterval(sweep, SWEEP_MS)
    // A sweep alone never keeps the process alive.
    ;(sweeper as { unref?: () => void }).unref?.()
  }
}

function untrack(c: Http1Connection): void {
  if (!open.delete(c) || open.size > 0 || sweeper === undefined) return
  clearInterval(sweeper)
  sweeper = undefined
}

export class Http1Connection implements ConnHandlers {
  readonly id = nextConnectionId++
  readonly headReader = new HeadReader()
  /** Completed exchanges on this connection; > 0 means the next one reuses it. */
  requestCount = 0
  /** Monotonic ms when it went back to the pool idle (the pool's sweep measures from it). */
  idleSinceMonoMs = 0
  /** The Keep-Alive timeout its upstream sent with the last response, ms (undefined: none said). */
  keepAliveTimeoutMs: number | undefined = undefined
  private ex: Exchange | undefined
  /** Who the exchange in progress is for (abortExchange acts only on that one's). */
  private exOwner: unknown
  /** Set once the owner has been told this connection is gone; guards double reports. */
  private discarded = false

  constructor(
    readonly conn: Conn,
    private readonly onRelease: ReleaseFn,
  ) {
    conn.handlers = this
    if (!conn.closed) track(this)
  }

  get closed(): boolean {
    return this.conn.closed
  }

  /** How long it may stay idle and be reused: pool_idle_timeout, or less where its upstream said less (0 or under: not at all). */
  idleLimitMs(poolIdleTimeoutMs: number): number {
    const said = this.keepAliveTimeoutMs
    return said === undefined ? poolIdleTimeoutMs : Math.min(poolIdleTimeoutMs, said - Math.min(KEEP_ALIVE_MARGIN_MS, said / 2))
  }

  get busy(): boolean {
    return this.ex !== undefined
  }

  /** Sends one request; `sink` hears of the response head (the body streams after) or the failure. */
  send(req: OutgoingRequest, sink: ExchangeSink, owner: unknown = sink): void {
    if (this.ex) throw new Error('Http1Connection: exchange already in progress')
    this.headReader.clear() // what a failed exchange left (its connection is not reused anyway)
    const ex = new Exchange(this, req, sink)
    this.ex = ex
    this.exOwner = owner
    ex.start()
  }

  /** The same, as a promise of the response head (health checks, the attempt loop after a failure). */
  exchange(req: OutgoingRequest, opts: ExchangeOptions): Promise<IncomingResponse> {
    return new Promise((resolve, reject) =>
      this.send(req, {
        headerTimeoutMs: opts.headerTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        onEnd: opts.onEnd && ((end) => opts.onEnd!(end)),
        onInterim: opts.onInterim && ((head) => opts.onInterim!(head)),
        onResponse: resolve,
        onFailure: reject,
      }, opts),
    )
  }

  /** Fails the exchange in progress if one of its deadlines has passed (the sweep above). */
  checkDeadlines(nowMs: number): void {
    this.ex?.checkDeadlines(nowMs)
  }

  /**
   * Fails the exchange in progress now, if it is `owner`'s (its client left before any answer;
   * the connection may since run another's): the connection is not reused.
   */
  abortExchange(owner: unknown, code: 'CLIENT_GONE', message: string): void {
    if (this.ex !== undefined && this.exOwner === owner) this.ex.abort(code, message)
  }

  /** An acquired connection given back without an exchange (its request's client left first). */
  releaseUnused(): void {
    if (this.ex === undefined) this.onRelease(this, !this.conn.closed)
  }

  /** Called by the exchange exactly once. */
  finished(ex: Exchange, reusable: boolean): void {
    if (this.ex !== ex) return
    this.ex = undefined
    this.exOwner = undefined
    this.requestCount++
    this.keepAliveTimeoutMs = ex.head?.keepAliveTimeoutMs
    const keep = reusable && !this.conn.closed
    if (!keep) {
      this.discarded = true
      this.conn.destroy()
    }
    this.onRelease(this, keep)
  }

  /** Closes the socket at once. */
  destroy(): void {
    this.discarded = true
    untrack(this)
    this.conn.destroy()
  }

  // ConnHandlers
  data(chunk: Uint8Array): void {
    if (this.ex) this.ex.onData(chunk as Buffer)
    else this.conn.destroy() // bytes on an idle connection: the stream is out of sync
  }
  drain(): void {
    this.ex?.onDrain()
  }
  close(err: Error | undefined): void {
    untrack(this)
    if (this.ex) this.ex.onClose(err)
    else if (!this.discarded) {
      // The upstream closed a connection that was idle in the pool.
      this.discarded = true
      this.onRelease(this, false)
    }
  }
}
