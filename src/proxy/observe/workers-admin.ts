/**
 * The supervisor's admin listener with --workers N: the configured admin address answers for
 * all workers. /metrics scrapes each worker's own admin endpoint (loopback, an ephemeral port
 * the worker reports) and merges them (merge-metrics.ts); /status lists every worker's status
 * with totals (merge-status.ts); /healthz and /readyz answer for the whole; DELETE /cache is
 * sent to every worker. Counters stay monotonic across a worker's restart or a missed scrape:
 * a worker's last scraped counts are kept, and carried on once it is gone. Spawning and
 * restarting workers lives in commands/workers.ts; a single process's endpoints in admin.ts.
 */
import type { ResolvedAdmin } from '../../config/schema.ts'
import type { Listener } from '../../runtime/listener.ts'
import { VERSION } from '../../version.ts'
import { adminUrl, admit, listenAdmin, probeWithoutDetails } from './admin.ts'
import { mergeFamilies, parseExposition, renderExposition, summedFamilies, type Family, type MetricsInput } from './merge-metrics.ts'
import { statusTotals } from './merge-status.ts'

/** One worker slot as the supervisor knows it. */
export interface WorkerSlot {
  index: number
  /** Undefined between a worker's exit and its restart. */
  pid: number | undefined
  /** The worker's own admin URL, once it reported it (after its proxy listener is up). */
  adminUrl: string | undefined
  restarts: number
}

export interface WorkersAdminDeps {
  /** The slots now, one per worker index. */
  workers(): WorkerSlot[]
  /** The supervisor is stopping: not ready. */
  draining(): boolean
  /** Where the config file set the address (ResolvedConfig.fileKeys), for the error when it cannot be bound. */
  setAt?: string
  /**
   * How long one worker may take to answer before it counts as down for this request. Shorter
   * than Prometheus' default scrape_timeout (10 s), so a slow worker costs a partial answer, not
   * a failed scrape.
   */
  scrapeTimeoutMs?: number
  fetch?: typeof fetch
}

type Answer = { ok: true; status: number; body: string } | { ok: false; error: string }

const TEXT_FORMAT = 'text/plain; version=0.0.4; charset=utf-8'

export class WorkersAdmin {
  private listener: Listener | undefined
  private readonly startedAtMonoMs = performance.now()
  /** The last good counters (counters and histograms only) of each live worker, by index. */
  private readonly lastGood = new Map<number, { pid: number; families: Family[] }>()
  /** Counts of workers that are gone, so that merged counters never go down. */
  private carried: Family[] = []

  constructor(
    private cfg: ResolvedAdmin,
    private readonly deps: WorkersAdminDeps,
  ) {}

  start(): this {
    this.listener = listenAdmin(this.cfg, (req) => this.handle(req), this.deps.setAt)
    return this
  }

  get url(): string | undefined {
    return adminUrl(this.listener)
  }

  /** A reload: the token may change; the listen address is kept until a restart. */
  setConfig(cfg: ResolvedAdmin): void {
    this.cfg = { ...cfg, listen: this.cfg.listen }
  }

  /** Called when a worker process exits: its last scraped counts are carried on. */
  workerExited(index: number, pid: number): void {
    const last = this.lastGood.get(index)
    if (!last || last.pid !== pid) return
    this.lastGood.delete(index)
    this.carried = mergeFamilies([
      { worker: undefined, families: this.carried },
      { worker: undefined, families: last.families },
    ])
  }

  async handle(req: Request): Promise<Response> {
    const door = admit(req, this.cfg)
    if (door instanceof Response) return door
    const res = await this.answer(req, door.url)
    return door.probeOnly ? probeWithoutDetails(res, door.url.pathname) : res
  }

  private async answer(req: Request, url: URL): Promise<Response> {
    switch (url.pathname) {
      case '/metrics':
        return new Response(await this.metrics(), { headers: { 'content-type': TEXT_FORMAT } })
      case '/status':
        return Response.json(await this.status())
      case '/healthz':
        return this.healthz()
      case '/readyz':
        return this.readyz(url.search)
      case '/cache':
        return this.purge(req.method, url.search)
      default:
        return new Response('404 not found; try /status, /metrics, /healthz or /readyz\n', { status: 404 })
    }
  }

  /** Asks every worker that has an admin URL; undefined for a worker that has none. */
  private async ask(path: string, method = 'GET'): Promise<{ slot: WorkerSlot; answer: Answer | undefined }[]> {
    const slots = this.deps.workers()
    const timeoutMs = this.deps.scrapeTimeoutMs ?? 2000
    const doFetch = this.deps.fetch ?? fetch
    const headers: Record<string, string> = this.cfg.token ? { authorization: `Bearer ${this.cfg.token}` } : {}
    return Promise.all(
      slots.map(async (slot) => {
        if (slot.pid === undefined || slot.adminUrl === undefined) return { slot, answer: undefined }
        try {
          const res = await doFetch(`${slot.adminUrl}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs) })
          return { slot, answer: { ok: true, status: res.status, body: await res.text() } as Answer }
        } catch (err) {
          const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
          return { slot, answer: { ok: false, error: timedOut ? `no answer within ${timeoutMs} ms` : `${(err as Error)?.message ?? err}` } as Answer }
        }
      }),
    )
  }

  /** True when the slot still runs the process that was asked (it may have died meanwhile). */
  private same(slot: WorkerSlot): boolean {
    const now = this.deps.workers().find((s) => s.index === slot.index)
    return now !== undefined && now.pid === slot.pid
  }

  async metrics(): Promise<string> {
    const answers = await this.ask('/metrics')
    const inputs: MetricsInput[] = []
    const up: Family = { name: 'proxy_worker_up', help: '1 when the worker answered this scrape; 0 when it did not (its counters are the last ones scraped), is restarting or starting.', type: 'gauge', samples: [] }
    const restarts: Family = { name: 'proxy_worker_restarts_total', help: 'Times the supervisor restarted the worker after it died.', type: 'counter', samples: [] }
    for (const { slot, answer } of answers) {
      const worker = String(slot.index)
      restarts.samples.push({ name: restarts.name, labels: [['worker', worker]], value: slot.restarts })
      let families: Family[] | undefined
      if (answer?.ok && answer.status === 200 && this.same(slot)) {
        try {
          families = parseExposition(answer.body)
        } catch {
          families = undefined
        }
      }
      up.samples.push({ name: up.name, labels: [['worker', worker]], value: families ? 1 : 0 })
      if (families) {
        this.lastGood.set(slot.index, { pid: slot.pid!, families: summedFamilies(families) })
        inputs.push({ worker, families })
        continue
      }
      const last = this.lastGood.get(slot.index)
      if (last && this.same(slot) && last.pid === slot.pid) inputs.push({ worker: undefined, families: last.families })
    }
    inputs.push({ worker: undefined, families: this.carried })
    return renderExposition([...mergeFamilies(inputs), up, restarts])
  }

  async status(): Promise<Record<string, unknown>> {
    const answers = await this.ask('/status')
    const parsed: (Record<string, unknown> | undefined)[] = []
    const workers = answers.map(({ slot, answer }) => {
      const base = { worker: String(slot.index), pid: slot.pid, admin: slot.adminUrl, restarts: slot.restarts }
      let status: Record<string, unknown> | undefined
      let error = slot.pid === undefined ? 'restarting' : slot.adminUrl === undefined ? 'starting' : undefined
      if (answer && !answer.ok) error = answer.error
      else if (answer?.ok && answer.status !== 200) error = `status ${answer.status}`
      else if (answer?.ok) {
        try {
          status = JSON.parse(answer.body) as Record<string, unknown>
        } catch {
          error = 'not JSON'
        }
      }
      parsed.push(status)
      return status ? { ...base, up: true, status } : { ...base, up: false, error }
    })
    return { version: VERSION, pid: process.pid, uptime_s: Math.round((performance.now() - this.startedAtMonoMs) / 1000), draining: this.deps.draining(), workers, totals: statusTotals(parsed) }
  }

  /** Alive while at least one worker answers its /healthz. */
  private async healthz(): Promise<Response> {
    const answers = await this.ask('/healthz')
    const alive = answers.filter(({ answer }) => answer?.ok && answer.status === 200).length
    return alive > 0 ? new Response(`ok: ${alive} of ${answers.length} workers\n`) : new Response(`not ok: no worker answers (${answers.length} configured)\n`, { status: 503 })
  }

  /**
   * Ready when every worker that is running says ready, and at least one runs. A worker between
   * a crash and its restart holds no socket in the SO_REUSEPORT group, so it takes no
   * connections and does not make the whole unready; a running worker that is not ready, or
   * does not answer, would get its share of new connections, so it does.
   */
  /** `search`: ?upstream=NAME, passed on to every worker (an unknown name is their 404, passed back). */
  private async readyz(search: string): Promise<Response> {
    if (this.deps.draining()) return new Response('not ready: draining\n', { status: 503 })
    const answers = await this.ask(`/readyz${search}`)
    const first = answers[0]?.answer
    if (first?.ok && first.status === 404 && answers.every(({ answer }) => answer?.ok && answer.status === 404)) return new Response(first.body, { status: 404 })
    const reasons: string[] = []
    let ready = 0
    for (const { slot, answer } of answers) {
      if (!answer) continue
      if (answer.ok && answer.status === 200) ready++
      else reasons.push(`worker ${slot.index}: ${answer.ok ? answer.body.trim() || `status ${answer.status}` : answer.error}`)
    }
    if (reasons.length === 0 && ready > 0) return new Response(`ready: ${ready} of ${answers.length} workers\n`)
    if (reasons.length === 0) reasons.push('no worker is running yet')
    return new Response(`not ready: ${reasons.join('; ')}\n`, { status: 503 })
  }

  /** DELETE /cache is sent to every worker (each has its own cache); the purged counts add up. */
  private async purge(method: string, search: string): Promise<Response> {
    if (method !== 'DELETE') return new Response('405 use DELETE /cache?url=<absolute URL> or DELETE /cache?prefix=<absolute URL prefix>\n', { status: 405, headers: { allow: 'DELETE' } })
    const answers = (await this.ask(`/cache${search}`, 'DELETE')).filter((a) => a.answer !== undefined)
    const first = answers[0]?.answer
    // The same refusal from all (cache off, bad query): pass it on as it is.
    if (first?.ok && first.status !== 200 && answers.every(({ answer }) => answer?.ok && answer.status === first.status)) return new Response(first.body, { status: first.status })
    let purged = 0
    let failed = answers.length === 0
    const workers = answers.map(({ slot, answer }) => {
      if (answer?.ok && answer.status === 200) {
        const n = Number((JSON.parse(answer.body) as { purged?: unknown }).purged) || 0
        purged += n
        return { worker: String(slot.index), purged: n }
      }
      failed = true
      return { worker: String(slot.index), error: answer?.ok ? `status ${answer.status}: ${answer.body.trim()}` : (answer?.error ?? 'not running') }
    })
    return Response.json({ purged, workers }, { status: failed ? 502 : 200 })
  }

  async close(): Promise<void> {
    await this.listener?.stop(true)
    this.listener = undefined
  }
}
