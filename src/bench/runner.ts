/**
 * The request engine: runs one request, N requests, or a duration, at a concurrency or a
 * constant arrival rate, against one target or two interleaved (A/B). Each worker keeps one
 * connection per target, reused unless --no-keepalive. Produces samples; statistics and
 * rendering are elsewhere (stats.ts, report.ts).
 */
import { asBenchError, TimingConnection, type ClientOptions, type RequestSpec, type Target } from './timing-client.ts'
import { phasesOf, type Marks, type Phases } from './timings.ts'

export interface Sample {
  seq: number
  side: 'a' | 'b'
  /** Epoch ms when the request started. */
  ts: number
  reused: boolean
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

export interface RunPlan {
  /** One target, or two for --vs (A then B, interleaved). */
  targets: Target[]
  spec: RequestSpec
  client: ClientOptions
  /** Requests per target; undefined with a duration. */
  requests: number | undefined
  durationMs: number | undefined
  concurrency: number
  ratePerS: number | undefined
  keepAlive: boolean
  onSample?: (s: Sample) => void
}

export interface RunResult {
  samples: Sample[]
  elapsedMs: number
}

/** One timed request on `slot`'s connection (or a new one). */
async function timedRequest(target: Target, plan: RunPlan, slot: { conn?: TimingConnection }, seq: number, side: 'a' | 'b', intendedAt?: number): Promise<Sample> {
  const marks: Marks = { start: performance.now() }
  const ts = Date.now()
  const reused = plan.keepAlive && slot.conn !== undefined && slot.conn.usable
  if (!reused) {
    slot.conn?.close()
    slot.conn = undefined
  }
  const sample: Sample = { seq, side, ts, reused, phases: {}, bytes: 0 }
  try {
    if (!slot.conn) slot.conn = await TimingConnection.open(target, plan.client, marks)
    const conn = slot.conn
    Object.assign(sample, conn.info)
    const res = await conn.request(target, plan.spec, plan.client, marks)
    sample.status = res.status
    sample.bytes = res.bytes
    if (!plan.keepAlive || !res.keepAlive) {
      conn.close()
      slot.conn = undefined
    }
  } catch (err) {
    const e = asBenchError(err)
    sample.error = e.kind
    sample.errorMessage = e.message
    slot.conn?.close()
    slot.conn = undefined
  }
  sample.phases = phasesOf(marks)
  if (sample.error) delete sample.phases.total
  // A timer may wake a little early: never count from after the real start.
  if (intendedAt !== undefined && marks.end !== undefined && !sample.error) sample.correctedTotal = marks.end - Math.min(intendedAt, marks.start)
  return sample
}

export async function runBench(plan: RunPlan): Promise<RunResult> {
  const samples: Sample[] = []
  const sides: ('a' | 'b')[] = plan.targets.length === 2 ? ['a', 'b'] : ['a']
  const t0 = performance.now()
  const deadline = plan.durationMs !== undefined ? t0 + plan.durationMs : Number.POSITIVE_INFINITY
  // With -n: N requests per target. Neither -n nor -d: one.
  const total = plan.requests !== undefined ? plan.requests * sides.length : plan.durationMs !== undefined ? Number.POSITIVE_INFINITY : sides.length
  let issued = 0
  let seq = 0
  const record = (s: Sample) => {
    samples.push(s)
    plan.onSample?.(s)
  }

  const worker = async () => {
    const slots = sides.map(() => ({}) as { conn?: TimingConnection })
    for (;;) {
      if (issued >= total || performance.now() >= deadline) break
      const k = issued++
      // Alternate which target goes first, so that neither always follows the other.
      // A B B A A B B A …: equal counts, and neither target always goes first.
      const sideIndex = sides.length === 2 ? (k + Math.floor(k / 2)) % 2 : 0
      let intendedAt: number | undefined
      if (plan.ratePerS !== undefined) {
        intendedAt = t0 + (k / plan.ratePerS) * 1000
        const wait = intendedAt - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        if (performance.now() >= deadline) break
      }
      record(await timedRequest(plan.targets[sideIndex]!, plan, slots[sideIndex]!, seq++, sides[sideIndex]!, intendedAt))
    }
    for (const s of slots) s.conn?.close()
  }
  const workers = Math.max(1, Math.min(plan.concurrency, total))
  await Promise.all(Array.from({ length: workers }, () => worker()))
  return { samples, elapsedMs: performance.now() - t0 }
}
