/**
 * Soak under CPU pressure (issue 14): the resolver IP-change scenario and the fault suite's
 * scenarios, run again and again against the compiled binary (dist/proxy) while busy-loop child
 * processes (one per core) compete for the CPU. Counts every client request and every failure,
 * and prints runs × requests per scenario.
 *
 *   bun scripts/soak.ts [--runs 5] [--duration 3s] [--no-hog] [--only ip-change,silent-upstream]
 *
 * Everything is on loopback (origins on 127.0.0.2/.3, an own DNS server on 127.0.0.1); every
 * process, server and socket started is closed at the end of its scenario, the hog last.
 * runSoak() is also what test/e2e/soak.test.ts runs (a short version inside `npm test`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'bun'
import { DnsServer } from '../src/dns/server.ts'
import { ensureBinary } from '../test/support/binary.ts'
import { startProxyProcess } from './stream-rss.ts'

export const SCENARIOS = ['ip-change', 'silent-upstream', 'slow-clients', 'vanishing-uploads', 'conn-limit'] as const
export type Scenario = (typeof SCENARIOS)[number]

export interface ScenarioResult {
  scenario: Scenario
  run: number
  requests: number
  failed: number
  /** Status (or "error") -> count, over the requests that count. */
  statuses: Record<string, number>
  note: string
}

export interface SoakOptions {
  runs: number
  /** Load time of each scenario run; the IP-change run takes at least 2.5 s. */
  durationMs: number
  hog: boolean
  scenarios: readonly Scenario[]
  log?: (line: string) => void
}

const HOST = 'origin.test'

/** Busy-loop children, one per core; stop() kills each by its pid. */
export function startHog(count = availableParallelism()): { count: number; stop(): void } {
  const children: ChildProcess[] = []
  for (let i = 0; i < count; i++) children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
  return {
    count,
    stop: () => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')),
  }
}

export async function runSoak(opts: SoakOptions): Promise<ScenarioResult[]> {
  const bin = ensureBinary()
  const hog = opts.hog ? startHog() : undefined
  const results: ScenarioResult[] = []
  try {
    for (let run = 1; run <= opts.runs; run++) {
      for (const scenario of opts.scenarios) {
        const r = await runScenario(scenario, run, bin, opts.durationMs)
        results.push(r)
        opts.log?.(`run ${run} ${scenario}: ${r.requests} requests, ${r.failed} failed ${JSON.stringify(r.statuses)}${r.note ? ` (${r.note})` : ''}`)
      }
    }
  } finally {
    hog?.stop()
  }
  return results
}

/** What each scenario starts, closed in reverse order whatever happens. */
class Scope {
  private closers: (() => unknown)[] = []
  add(fn: () => unknown): void {
    this.closers.push(fn)
  }
  async close(): Promise<void> {
    for (const c of this.closers.reverse()) {
      try {
        await c()
      } catch {
        // keep closing the rest
      }
    }
  }
}

async function runScenario(scenario: Scenario, run: number, bin: string, durationMs: number): Promise<ScenarioResult> {
  const scope = new Scope()
  const result: ScenarioResult = { scenario, run, requests: 0, failed: 0, statuses: {}, note: '' }
  const count = (status: number | 'error', ok: boolean) => {
    result.requests++
    if (!ok) result.failed++
    result.statuses[status] = (result.statuses[status] ?? 0) + 1
  }
  try {
    await SCENARIO_RUNNERS[scenario]({ scope, bin, durationMs, count, note: (n) => (result.note = n) })
  } finally {
    await scope.close()
  }
  return result
}

interface Ctx {
  scope: Scope
  bin: string
  durationMs: number
  count(status: number | 'error', ok: boolean): void
  note(text: string): void
}

/** The binary with a TOML config; resolves once it listens. */
async function startProxy(ctx: Ctx, toml: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'soak-'))
  ctx.scope.add(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\n${toml}\n[admin]\nlisten = "off"\n\n[log]\naccess_log = "off"\n`)
  const p = await startProxyProcess(['serve', '--config', file], ctx.bin)
  ctx.scope.add(() => p.stop())
  return p.url
}

/** `loops` request loops until `ms` pass: each request is counted by `check`. */
async function load(ms: number, loops: number, send: () => Promise<{ status: number; ok: boolean }>, ctx: Ctx): Promise<void> {
  const end = Date.now() + ms
  const loop = async () => {
    // Bounded by time and by count.
    for (let i = 0; i < 1_000_000 && Date.now() < end; i++) {
      try {
        const r = await send()
        ctx.count(r.status, r.ok)
      } catch {
        ctx.count('error', false)
      }
    }
  }
  await Promise.all(Array.from({ length: loops }, loop))
}

/** Polls until the proxy answers 200 (the first DNS answer may take a moment), at most 10 s. */
async function untilServing(url: string): Promise<void> {
  const end = Date.now() + 10_000
  while (Date.now() < end) {
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {
      // not yet
    }
    await Bun.sleep(50)
  }
  throw new Error(`proxy at ${url} did not serve within 10 s`)
}

/** One origin per address, all on one port; each answers with its own address. */
function origins(ctx: Ctx, addresses: string[]): { port: number; servers: Map<string, Server<unknown>> } {
  const servers = new Map<string, Server<unknown>>()
  let port = 0
  for (let attempt = 0; attempt < 20 && servers.size < addresses.length; attempt++) {
    servers.forEach((s) => s.stop(true))
    servers.clear()
    try {
      for (const addr of addresses) {
        const s = Bun.serve({ hostname: addr, port, idleTimeout: 0, fetch: () => new Response(addr) })
        port = s.port!
        servers.set(addr, s as Server<unknown>)
      }
    } catch {
      port = 0 // taken on another address: pick a new port
    }
  }
  ctx.scope.add(() => servers.forEach((s) => s.stop(true)))
  return { port, servers }
}

function origin(ctx: Ctx, fetch: (req: Request) => Response | Promise<Response>): Server<unknown> {
  const s = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 0, fetch })
  ctx.scope.add(() => s.stop(true))
  return s as Server<unknown>
}

const get = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init)
  return { status: res.status, text: await res.text() }
}

const SCENARIO_RUNNERS: Record<Scenario, (ctx: Ctx) => Promise<void>> = {
  /** The A record moves .2 -> .3 (TTL 1 s); .2 is killed one second later; 16 clients throughout. */
  async 'ip-change'(ctx) {
    const { port, servers } = origins(ctx, ['127.0.0.2', '127.0.0.3'])
    const dns = await new DnsServer().start(0)
    ctx.scope.add(() => dns.close())
    dns.set(HOST, { a: ['127.0.0.2'], ttl: 1 })
    const url = await startProxy(
      ctx,
      `\n[upstream]\nurl = "http://${HOST}:${port}"\nresolvers = ["127.0.0.1:${dns.port}"]\nresolve_min_ttl = "1s"\nresolve_timeout = "300ms"\nretries = 2\n`,
    )
    await untilServing(url)
    const byAddress: Record<string, number> = {}
    const total = Math.max(ctx.durationMs, 2500)
    const traffic = load(total, 16, async () => {
      const r = await get(url)
      if (r.status === 200) byAddress[r.text] = (byAddress[r.text] ?? 0) + 1
      return { status: r.status, ok: r.status === 200 }
    }, ctx)
    await Bun.sleep(500)
    dns.set(HOST, { a: ['127.0.0.3'], ttl: 1 })
    await Bun.sleep(1000)
    servers.get('127.0.0.2')!.stop(true)
    await traffic
    ctx.note(`served by .2: ${byAddress['127.0.0.2'] ?? 0}, by .3: ${byAddress['127.0.0.3'] ?? 0}`)
  },

  /** An upstream that never answers /hang: those get 504 at header_timeout, the rest are served. */
  async 'silent-upstream'(ctx) {
    const o = origin(ctx, (req) => (new URL(req.url).pathname === '/hang' ? new Promise<Response>(() => {}) : new Response('fast')))
    const url = await startProxy(ctx, `\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\nheader_timeout = "500ms"\n`)
    await untilServing(url)
    const hung = load(ctx.durationMs, 4, async () => {
      const r = await get(`${url}/hang`)
      return { status: r.status, ok: r.status === 504 }
    }, ctx)
    await load(ctx.durationMs, 8, async () => {
      const r = await get(`${url}/ok`)
      return { status: r.status, ok: r.status === 200 && r.text === 'fast' }
    }, ctx)
    await hung
  },

  /** 200 connections dribble a head byte by byte while 8 clients are served normally. */
  async 'slow-clients'(ctx) {
    const o = origin(ctx, () => new Response('ok'))
    const url = await startProxy(ctx, `client_header_timeout = "1s"\n\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n`)
    await untilServing(url)
    const port = Number(new URL(url).port)
    const slow: Socket[] = []
    ctx.scope.add(() => slow.forEach((s) => s.destroy()))
    for (let i = 0; i < 200; i++) {
      const s = connect(port, '127.0.0.1')
      s.on('error', () => {})
      s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
      slow.push(s)
    }
    const drip = setInterval(() => slow.forEach((s) => s.writable && s.write('a')), 100)
    ctx.scope.add(() => clearInterval(drip))
    await load(ctx.durationMs, 8, async () => {
      const r = await get(url)
      return { status: r.status, ok: r.status === 200 && r.text === 'ok' }
    }, ctx)
    ctx.note(`dribbling connections closed by the proxy: ${slow.filter((s) => s.destroyed || s.readyState === 'closed' || !s.writable).length}/200`)
  },

  /** Clients vanish mid-upload (past the 64 KiB read-ahead) while 8 clients post small bodies. */
  async 'vanishing-uploads'(ctx) {
    const o = origin(ctx, async (req) => {
      let n = 0
      try {
        for await (const chunk of req.body ?? []) n += (chunk as Uint8Array).byteLength
      } catch {
        return new Response('aborted', { status: 499 })
      }
      return new Response(`got ${n}`)
    })
    const url = await startProxy(ctx, `\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\n`)
    await untilServing(url)
    const port = Number(new URL(url).port)
    let vanished = 0
    const end = Date.now() + ctx.durationMs
    const vanishing = (async () => {
      for (let i = 0; i < 10_000 && Date.now() < end; i++) {
        const s = connect(port, '127.0.0.1')
        s.on('error', () => {})
        ctx.scope.add(() => s.destroy())
        s.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')
        for (let k = 0; k < 80; k++) s.write(`400\r\n${'x'.repeat(1024)}\r\n`)
        await Bun.sleep(20)
        s.destroy()
        vanished++
      }
    })()
    const body = 'y'.repeat(3000)
    await load(ctx.durationMs, 8, async () => {
      const r = await get(`${url}/small`, { method: 'POST', body })
      return { status: r.status, ok: r.status === 200 && r.text === `got ${body.length}` }
    }, ctx)
    await vanishing
    ctx.note(`uploads abandoned mid-body: ${vanished}`)
  },

  /** max_conns_per_address = 4 with 32 clients: requests wait for a connection, none fails. */
  async 'conn-limit'(ctx) {
    let concurrent = 0
    let peak = 0
    const o = origin(ctx, async () => {
      peak = Math.max(peak, ++concurrent)
      await Bun.sleep(5)
      concurrent--
      return new Response('ok')
    })
    const url = await startProxy(ctx, `\n[upstream]\nurl = "http://127.0.0.1:${o.port}"\nmax_conns_per_address = 4\n`)
    await untilServing(url)
    await load(ctx.durationMs, 32, async () => {
      const r = await get(url)
      return { status: r.status, ok: r.status === 200 }
    }, ctx)
    // A breach of the limit is a failure too, counted once.
    if (peak > 4) ctx.count('error', false)
    ctx.note(`peak upstream concurrency: ${peak} (limit 4)`)
  },
}

/** Totals per scenario, as a Markdown table. */
export function summarize(results: ScenarioResult[]): string {
  const rows = ['| scenario | runs | requests | failed | statuses |', '|---|---|---|---|---|']
  for (const s of SCENARIOS) {
    const rs = results.filter((r) => r.scenario === s)
    if (rs.length === 0) continue
    const statuses: Record<string, number> = {}
    for (const r of rs) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v
    const sum = (f: (r: ScenarioResult) => number) => rs.reduce((a, r) => a + f(r), 0)
    rows.push(`| ${s} | ${rs.length} | ${sum((r) => r.requests)} | ${sum((r) => r.failed)} | ${Object.entries(statuses).map(([k, v]) => `${k}: ${v}`).join(', ')} |`)
  }
  return rows.join('\n')
}

function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text)
  if (!m) throw new Error(`--duration: expected e.g. 3s or 1500ms, got "${text}"`)
  return Number(m[1]) * (m[2] === 'ms' ? 1 : 1000)
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const value = (flag: string) => {
    const i = args.indexOf(flag)
    return i >= 0 ? args[i + 1] : undefined
  }
  const only = value('--only')?.split(',') ?? [...SCENARIOS]
  const unknown = only.filter((s) => !(SCENARIOS as readonly string[]).includes(s))
  if (unknown.length) throw new Error(`--only: unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`)
  const opts: SoakOptions = {
    runs: Number(value('--runs') ?? 5),
    durationMs: parseDurationMs(value('--duration') ?? '3s'),
    hog: !args.includes('--no-hog'),
    scenarios: only as Scenario[],
    log: (line) => console.error(line),
  }
  console.error(`soak: ${opts.runs} runs of ${opts.scenarios.join(', ')}, ${opts.durationMs} ms each, ${opts.hog ? `CPU hog on ${availableParallelism()} cores` : 'no hog'}`)
  const results = await runSoak(opts)
  console.log(summarize(results))
  const failed = results.reduce((a, r) => a + r.failed, 0)
  process.exitCode = failed === 0 ? 0 : 1
}

if (import.meta.main) await main()
