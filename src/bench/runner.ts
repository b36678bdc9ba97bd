/**
 * The request engine: runs one request, N requests, or a duration, at a concurrency or a
 * constant arrival rate, against one target or two interleaved (A/B). Over HTTP/1.1 each of the
 * `-c` loops keeps its own connection per target; over HTTP/2 each of the `-c` connections
 * carries `-m` concurrent streams (as h2load). Connections are reused unless --no-keepalive.
 * Produces samples and per-connection counts; statistics and rendering are elsewhere.
 */
import type { TLSSocket } from 'node:tls'
import { asBenchError, dial, type BenchConnection, type ClientOptions, type RequestSpec, type Target } from './dial.ts'
import { H2Connection } from './h2-client.ts'
import { TimingConnection } from './timing-client.ts'
import { cameLateMs, phasesOf, type Marks, type Phases } from './timings.ts'
import { warmUp } from './warm-up.ts'

export interface Sample {
  seq: number
  side: 'a' | 'b'
  /** Epoch ms when the request started. */
  ts: number
  /** Sent on a connection that was open before the request started. */
  reused: boolean
  /** The connection's TLS handshake resumed an earlier session; undefined without TLS. */
  tlsResumed?: boolean
  /** Which connection carried it (run-wide sequence number). */
  conn?: number
  phases: Phases
  /** --rate: total measured from the intended send time (coordinated omission corrected). */
  correctedTotal?: number
  status?: number
  bytes: number
  error?: string
  errorMessage?: string
  remoteAddress?: string
  family?: 4 | 6
  tlsVersion?: string
  alpn?: string
  cipher?: string
}

export interface ConnectionRecord {
  id: number
  side: 'a' | 'b'
  alpn?: string
  tlsResumed?: boolean
  requests: number
  peakInFlight: number
}

export interface RunPlan {
  /** One target, or two for --vs (A then B, interleaved). */
  targets: Target[]
  spec: RequestSpec
  client: ClientOptions
  /** Requests per target; undefined with a duration. */
  requests: number | undefined
  durationMs: number | undefined
  concurrency: number
  /** HTTP/2: concurrent streams per connection (h2load's -m); default 1. */
  streams?: number
  ratePerS: number | undefined
  keepAlive: boolean
  onSample?: (s: Sample) => void
  /** Aborted (Ctrl-C): no new request starts, and the run ends at once with what has finished. */
  signal?: AbortSignal
}

export interface RunResult {
  samples: Sample[]
  connections: ConnectionRecord[]
  /** Requests the server did not process (HTTP/2 GOAWAY or REFUSED_STREAM), sent again on a new connection. */
  retriedUnprocessed: Record<'a' | 'b', number>
  elapsedMs: number
  /** The signal ended the run early; requests still in flight then are not in the samples. */
  interrupted: boolean
}

/** The longest one setTimeout waits (a longer one fires at once, with a warning). */
const MAX_TIMER_STEP_MS = 2 ** 31 - 1

/** Waits `ms`, or until `signal` aborts (Ctrl-C: no timer is left behind). */
function sleepMs(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** How often one request is sent again after the server said it did not process it. */
const MAX_UNPROCESSED_RETRIES = 3

/** Where one loop (HTTP/1.1) or one connection's streams (HTTP/2) keep their connection. */
interface Holder {
  conn?: BenchConnection
  /** A dial in progress: other streams of the same connection wait for it before they start. */
  opening?: Promise<unknown>
  /**
   * Shared by the streams of one HTTP/2 connection: settled at each of the lead's dials until one
   * succeeded (`done`), or the lead ended. A failed first dial says nothing of the protocol: the
   * other streams wait for the next, rather than share a connection that may be HTTP/1.1.
   */
  firstDial?: FirstDial
}

interface FirstDial {
  promise: Promise<void>
  settle: () => void
  done: boolean
}

function armed(): FirstDial {
  let settle = () => {}
  const promise = new Promise<void>((r) => (settle = r))
  return { promise, settle, done: false }
}

function sharedHolder(): Holder {
  return { firstDial: armed() }
}

/** The first dial of a shared holder ended: `opened` says whether it gave a connection. */
function dialEnded(holder: Holder, opened: boolean): void {
  const was = holder.firstDial
  if (!was || was.done) return
  if (opened) was.done = true
  else holder.firstDial = armed()
  was.settle()
}

/** A connection that can carry more than one request at a time. */
function multiplexes(c: BenchConnection | undefined): boolean {
  return c instanceof H2Connection
}

async function openConnection(target: Target, client: ClientOptions, marks: Marks, id: number): Promise<BenchConnection> {
  const alpn = target.http2 ? ['h2', 'http/1.1'] : ['http/1.1']
  const { socket, info } = await dial(target, client, marks, alpn)
  if (info.alpn === 'h2') return new H2Connection(socket as TLSSocket, target, info, id)
  return new TimingConnection(socket, info, id)
}

export async function runBench(plan: RunPlan): Promise<RunResult> {
  const samples: Sample[] = []
  const connections: ConnectionRecord[] = []
  const records = new Map<number, ConnectionRecord>()
  const sides: ('a' | 'b')[] = plan.targets.length === 2 ? ['a', 'b'] : ['a']
  await warmUp(plan.client, plan.targets.some((t) => t.scheme === 'https'))
  const t0 = performance.now()
  const deadline = plan.durationMs !== undefined ? t0 + plan.durationMs : Number.POSITIVE_INFINITY
  // With -n: N requests per target. Neither -n nor -d: one.
  const total = plan.requests !== undefined ? plan.requests * sides.length : plan.durationMs !== undefined ? Number.POSITIVE_INFINITY : sides.length
  let issued = 0
  let stopped = false
  let seq = 0
  let connSeq = 0
  const retriedUnprocessed = { a: 0, b: 0 }

  const release = (holder: Holder) => {
    holder.conn?.close()
    holder.conn = undefined
  }

  /**
   * One timed request on the holder's connection, or on a new one. 'retry': the server did not
   * process it (RFC 9113 §8.7: safe to send again), so it is not a sample.
   */
  const timedRequest = async (target: Target, holder: Holder, side: 'a' | 'b', intendedAt: number | undefined, mayRetry: boolean): Promise<Sample | 'retry'> => {
    if (holder.opening) await holder.opening.catch(() => {})
    const marks: Marks = { start: performance.now() }
    const sample: Sample = { seq: 0, side, ts: Date.now(), reused: false, phases: {}, bytes: 0 }
    const reusable = plan.keepAlive && holder.conn !== undefined && holder.conn.usable
    if (!reusable) release(holder)
    let used: BenchConnection | undefined
    try {
      let conn = reusable ? holder.conn! : undefined
      if (!conn) {
        const opening = openConnection(target, plan.client, marks, ++connSeq)
        holder.opening = opening
        try {
          conn = await opening
        } finally {
          holder.opening = undefined
          dialEnded(holder, conn !== undefined)
        }
        holder.conn = conn
        const rec: ConnectionRecord = { id: conn.id, side, alpn: conn.info.alpn, tlsResumed: conn.info.tlsResumed, requests: 0, peakInFlight: 0 }
        connections.push(rec)
        records.set(conn.id, rec)
      } else sample.reused = true
      Object.assign(sample, conn.info)
      sample.conn = conn.id
      used = conn
      const res = await conn.request(target, plan.spec, plan.client, marks)
      sample.status = res.status
      sample.bytes = res.bytes
      if ((!plan.keepAlive || !res.keepAlive) && holder.conn === conn) release(holder)
    } catch (err) {
      const e = asBenchError(err)
      if (holder.conn && !holder.conn.usable) release(holder)
      if (e.unprocessed && mayRetry) return 'retry'
      sample.error = e.kind
      sample.errorMessage = e.message
    } finally {
      // Ended after an interruption: its connection (perhaps dialled since) is let go too.
      if (stopped) release(holder)
      const record = used && records.get(used.id)
      if (record) {
        record.requests = used!.requests
        record.peakInFlight = used!.peakInFlight
      }
    }
    // An answer that came after --timeout, because the bench itself was too busy for its timer to
    // fire in time (thousands of connections on one event loop), is a timeout all the same.
    const lateMs = sample.error ? undefined : cameLateMs(marks, plan.client.timeoutMs)
    if (lateMs !== undefined) {
      sample.error = 'timeout'
      sample.errorMessage = `no complete response within ${plan.client.timeoutMs}ms (it came after ${Math.round(lateMs)}ms; with this many connections the bench itself may be the bottleneck: lower -c)`
    }
    sample.phases = phasesOf(marks)
    if (sample.error) delete sample.phases.total
    // A timer may wake a little early: never count from after the real start.
    if (intendedAt !== undefined && marks.end !== undefined && !sample.error) sample.correctedTotal = marks.end - Math.min(intendedAt, marks.start)
    return sample
  }

  /**
   * One request loop; `holders` is per side, shared by the streams of one HTTP/2 connection. The
   * lead stream opens the connection alone; the others start once it is open, and stop when the
   * server did not negotiate h2 (HTTP/1.1 carries one request at a time).
   */
  const loop = async (holders: Holder[], lead: boolean) => {
    for (;;) {
      if (!lead) {
        for (const h of holders) {
          // Bounded by the lead's dials: each settles the promise waited on, and the lead's end sets done.
          while (h.firstDial && !h.firstDial.done) await h.firstDial.promise
          if (h.opening) await h.opening.catch(() => {})
          if (h.conn && !multiplexes(h.conn)) return
        }
      }
      if (issued >= total || performance.now() >= deadline || stopped) break
      const k = issued++
      // A B B A A B B A …: equal counts, and neither target always goes first.
      const sideIndex = sides.length === 2 ? (k + Math.floor(k / 2)) % 2 : 0
      let intendedAt: number | undefined
      if (plan.ratePerS !== undefined) {
        intendedAt = t0 + (k / plan.ratePerS) * 1000
        // Due at or past the end of a -d run: not sent (the loop must not sleep past the end).
        if (intendedAt >= deadline) break
        // In steps a timer can wait (2^31-1 ms): the k-th of many loops at a low rate waits k intervals.
        for (let wait = intendedAt - performance.now(); wait > 0 && !stopped && !plan.signal?.aborted; wait = intendedAt - performance.now()) await sleepMs(Math.min(wait, MAX_TIMER_STEP_MS), plan.signal)
        if (performance.now() >= deadline || stopped) break
      }
      let s: Sample | 'retry'
      for (let attempt = 0; ; attempt++) {
        s = await timedRequest(plan.targets[sideIndex]!, holders[sideIndex]!, sides[sideIndex]!, intendedAt, attempt < MAX_UNPROCESSED_RETRIES)
        if (s !== 'retry') break
        retriedUnprocessed[sides[sideIndex]!]++
      }
      if (stopped) break // finished after the run was summarised: not counted
      s.seq = seq++
      samples.push(s)
      plan.onSample?.(s)
    }
    // The lead may end without ever dialling a side (the requests ran out): release the others.
    if (lead) {
      for (const h of holders) {
        if (!h.firstDial) continue
        h.firstDial.done = true
        h.firstDial.settle()
      }
    }
  }

  const loops: Promise<void>[] = []
  const allHolders: Holder[] = []
  const connectionsWanted = Math.max(1, Math.min(plan.concurrency, total))
  for (let w = 0; w < connectionsWanted; w++) {
    // HTTP/2 targets: one holder shared by the -m streams; HTTP/1.1: one per loop.
    const shared = plan.targets.map((): Holder => sharedHolder())
    allHolders.push(...shared)
    // Without keep-alive every request has its own connection: nothing to multiplex.
    const streams = plan.keepAlive && plan.targets.some((t) => t.http2) ? (plan.streams ?? 1) : 1
    for (let m = 0; m < streams; m++) {
      const holders = plan.targets.map((t, i): Holder => {
        if (t.http2 && t.scheme === 'https') return shared[i]!
        const own: Holder = {}
        allHolders.push(own)
        return own
      })
      loops.push(loop(holders, m === 0))
    }
  }
  let interrupted = false
  let onAbort: (() => void) | undefined
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => {
      interrupted = true
      resolve()
    }
    if (plan.signal?.aborted) onAbort()
    else plan.signal?.addEventListener('abort', onAbort, { once: true })
  })
  await Promise.race([Promise.all(loops), aborted])
  plan.signal?.removeEventListener('abort', onAbort!)
  stopped = true
  // A -d run lasts its duration, also when its last request (--rate) ended before the deadline.
  const elapsedMs = interrupted || plan.durationMs === undefined ? performance.now() - t0 : Math.max(performance.now() - t0, plan.durationMs)
  // Interrupted: requests in flight are cut with their connections and their loops end unseen;
  // their connections' counts are taken first (a request in flight was sent on it).
  for (const h of allHolders) {
    const record = h.conn && records.get(h.conn.id)
    if (record) record.requests = h.conn!.requests
    release(h)
  }
  return { samples, connections, retriedUnprocessed, elapsedMs, interrupted }
}
