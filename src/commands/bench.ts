/**
 * `proxy bench URL`: flags -> a run plan -> samples -> report data -> text, JSON or HTML. The
 * engine is bench/runner.ts, statistics bench/aggregate.ts and bench/stats.ts, the saved-run
 * comparison bench/baseline.ts, rendering bench/report.ts (text) and bench/html.ts.
 */
import type { CAC } from 'cac'
import { closeSync, createWriteStream, openSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { compare, failed as sampleFailed, MIN_EFFECT, report, sampleRecord, SCHEMA } from '../bench/aggregate.ts'
import { compareWithBaseline, loadBaseline } from '../bench/baseline.ts'
import { TlsSessionCache, type Target } from '../bench/dial.ts'
import { explainText } from '../bench/explain.ts'
import { writeHtmlReport } from '../bench/html.ts'
import { renderComparison, renderReport, renderWaterfall } from '../bench/report.ts'
import { runBench, type RunPlan, type Sample } from '../bench/runner.ts'
import { evaluateSlo, parseSlo, type SloResult } from '../bench/slo.ts'
import { createLookup } from '../dns/lookup.ts'
import { colorEnabled, colorsFor } from '../lib/colors.ts'
import { ProxyError, UsageError } from '../lib/errors.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import { VALUES_IN_ORDER, type CliIo } from '../lib/io.ts'
import { MAX_TIMER_MS, parseDurationMs } from '../lib/units.ts'
import type { Phase } from '../bench/timings.ts'

/** -c without a value: 1, or with --rate enough request loops to hold the rate while some wait. */
export const DEFAULT_CONCURRENCY = 1
export const DEFAULT_RATE_CONCURRENCY = 64
/** -m without a value. */
export const DEFAULT_STREAMS = 1

export function registerBench(cli: CAC, io: CliIo): void {
  const cmd = cli
    .command('bench [url]', 'Time DNS / CONNECT / TLS / WAIT / TRANSFER for a URL; compare two with --vs, or with a saved run')
    .option('-n, --requests <n>', 'Requests (per URL with --vs). Default: 1, drawn as a waterfall (100 with --vs)')
    .option('-c, --concurrency <n>', `Connections (HTTP/1.1: requests in flight) at once. Default: ${DEFAULT_CONCURRENCY}; with --rate: ${DEFAULT_RATE_CONCURRENCY}`)
    .option('-m, --streams <n>', `With --http2: concurrent streams on each of the -c connections, as h2load -m (default: ${DEFAULT_STREAMS})`)
    .option('-d, --duration <duration>', 'Run for this long instead of -n, e.g. 30s (use --data for a request body)')
    .option('--rate <per-second>', `Constant arrival rate; latency is also measured from the intended send time (-c defaults to ${DEFAULT_RATE_CONCURRENCY})`)
    .option('--no-keepalive', 'Open a new connection for every request (default: reuse)')
    .option('--no-tls-resume', 'Make every TLS handshake full (default: offer the session from an earlier handshake, as browsers do)')
    .option('--http2', 'Offer h2 by ALPN (https URLs; says so when the server picks HTTP/1.1)')
    .option('--vs-http2', 'Offer h2 to the --vs URL only (e.g. direct HTTP/1.1 against a proxy over h2)')
    .option('--vs <url>', 'Compare with a second URL, interleaving requests A/B')
    .option('--baseline <file>', 'Compare with a run saved with --json: same intervals and verdict as --vs')
    .option('--html <file>', 'Also write a self-contained HTML report (charts as inline SVG)')
    .option('-X, --method <method>', 'Request method (default: GET, or POST with --data)')
    .option('-H, --header <header>', '"Name: value" request header; "Name:" removes one the bench sends, "Name;" sends it empty (as curl). Repeatable')
    .option('--data <@file|text>', 'Request body, or a file\'s without CR and LF (@path); repeated (or with --data-binary), the pieces are joined with & as curl')
    .option('--data-binary <@file|text>', 'Request body from a file (@path) or as given; joined with --data pieces by &')
    .option('-k, --insecure', "Do not verify the server's certificate")
    .option('--cacert <file>', 'PEM CA bundle to verify the server with')
    .option('--resolve <host:port:addr>', 'Use addr for host:port (host * for any host on that port), keeping Host and SNI (as curl). Repeatable')
    .option('--connect-to <host:port:host2:port2>', 'Connect to host2:port2 instead, keeping Host and SNI (as curl). Repeatable')
    .option('--timeout <duration>', 'Per-request time limit (default: 10s)')
    .option('--json', 'Print one JSON document (schema in the README)')
    .option('--samples <file>', 'Write one JSON line per request to this file')
    .option('--slo <objectives>', 'e.g. "p99.total<300ms,p50.wait<80ms", or with --baseline "p50.total<+10%"; exit 4 when one is broken')
    .option('--explain', 'Print the glossary: each phase next to curl -w, devtools and k6 names')
    .action((url: string | undefined, opts: Record<string, unknown>) => benchCommand(url, opts, io))
  // cac gives every --no-… flag a default of true, and --help would print "(default: true)"
  // next to a flag that turns something off. The flag's own text says what the default is.
  for (const o of cmd.options) if (o.negated) o.config.default = undefined
}

/** A method or a field name (RFC 9110 §5.6.2). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** A file opened for writing, or a usage error naming the flag and why. */
function openForWriting(path: string, flag: string): number {
  try {
    return openSync(path, 'w')
  } catch (err) {
    throw new UsageError(`${flag}: cannot write "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
}

function list(v: unknown): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]
}

function positiveInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined
  // Decimal digits only: Number() also reads "0x10", "1e3" and " 5", which no count is written as.
  const n = /^[0-9]+$/.test(String(v)) ? Number(v) : Number.NaN
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: "${String(v)}" is not a whole number of 1 or more (decimal digits)`)
  if (n > Number.MAX_SAFE_INTEGER) throw new UsageError(`${flag}: "${String(v)}" is larger than 2^53-1; for a run without a set count use -d (e.g. -d 1h)`)
  return n
}

/**
 * A duration flag's value, or a usage error: a unit is needed ("300" is not seconds, as curl's
 * --max-time would read it), and where a timer waits that long, a timer's limit applies.
 */
function durationFlagMs(v: unknown, flag: string, example: string, timer: boolean, hint = ''): number | undefined {
  if (v === undefined) return undefined
  const raw = String(v)
  const ms = parseDurationMs(raw)
  if (ms === undefined && /^[0-9]+(\.[0-9]+)?$/.test(raw.trim())) throw new UsageError(`${flag}: "${raw}" has no unit; write e.g. "${raw.trim()}s"${raw.includes('.') ? '' : ` or "${raw.trim()}ms"`}${hint}`)
  if (ms === undefined || !(ms > 0)) throw new UsageError(`${flag}: "${raw}" is not a duration of more than 0 (e.g. ${example})${hint}`)
  if (timer && ms > MAX_TIMER_MS) throw new UsageError(`${flag}: "${raw}" is longer than a timer can wait (24.8 days); use at most "24d"`)
  return ms
}

/**
 * The -H values as curl reads them: "Name: value" is sent; "Name:" (no value) is not, and removes
 * the bench's own field of that name (returned in `omit`, lower case); "Name;" is sent with an
 * empty value. A name is a token and a value holds no control character but HTAB (RFC 9110
 * §5.1, §5.5: a CR LF would make a second field). Host cannot go or be empty: an HTTP/1.1
 * request without one, or with an empty one for an http(s) URL, must be refused (RFC 9112 §3.2).
 */
export function headerFlags(values: readonly string[]): { headers: [string, string][]; omit: Set<string> } {
  const headers: [string, string][] = []
  const omit = new Set<string>()
  for (const h of values) {
    const i = h.indexOf(':')
    const empty = i < 0 && h.endsWith(';')
    const name = (empty ? h.slice(0, -1) : h.slice(0, Math.max(i, 0))).trim()
    if ((i <= 0 && !empty) || !TOKEN.test(name)) throw new UsageError(`-H: "${h}" is not "Name: value" (or "Name;" for an empty value) with a name of letters, digits and !#$%&'*+-.^_\`|~`)
    const value = empty ? '' : h.slice(i + 1).trim()
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new UsageError(`-H: the value of "${name}" has a control character (CR, LF, NUL, ...); give each field its own -H`)
    if (value === '' && !empty) omit.add(name.toLowerCase())
    else headers.push([name, value])
  }
  const host = headers.filter(([n]) => n.toLowerCase() === 'host')
  if ((omit.has('host') && host.length === 0) || host.some(([, v]) => v === '')) {
    throw new UsageError('-H: a request without Host, or with an empty one, is one every HTTP/1.1 server must refuse (RFC 9112 §3.2); give the Host to send, -H "Host: name", or leave the -H out')
  }
  return { headers, omit }
}

/**
 * The request body as curl builds it: every --data and --data-binary piece in the order written,
 * joined with "&"; `@file` is the file's bytes, as they are for --data-binary and without their
 * CR and LF bytes for --data (curl's -d: "carriage returns and newlines will be stripped out").
 */
function bodyOf(opts: Record<string | symbol, unknown>): Uint8Array | undefined {
  const written = opts[VALUES_IN_ORDER] as [string, string][] | undefined
  const pieces = written?.filter(([name]) => name === 'data' || name === 'dataBinary') ?? [...list(opts.data).map((v): [string, string] => ['data', v]), ...list(opts.dataBinary).map((v): [string, string] => ['dataBinary', v])]
  if (pieces.length === 0) return undefined
  const parts: Uint8Array[] = []
  for (const [name, v] of pieces) {
    if (parts.length > 0) parts.push(AMPERSAND)
    if (!v.startsWith('@')) parts.push(new TextEncoder().encode(v))
    else {
      let bytes: Uint8Array
      try {
        bytes = new Uint8Array(readFileSync(v.slice(1)))
      } catch (err) {
        throw new UsageError(`${name === 'data' ? '--data' : '--data-binary'}: cannot read "${v.slice(1)}": ${(err as NodeJS.ErrnoException).code ?? err}`)
      }
      parts.push(name === 'data' ? bytes.filter((b) => b !== 0x0d && b !== 0x0a) : bytes)
    }
  }
  return parts.length === 1 ? parts[0] : new Uint8Array(Buffer.concat(parts))
}

const AMPERSAND = Uint8Array.of(0x26)

/** A port as written in a URL or a flag: 1 to 65535 (RFC 6335 §6: port 0 is reserved, nothing listens on it). */
function portNumber(text: string, where: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`${where}: port ${text} is not a port to connect to; use 1 to 65535`)
  return n
}

/** URL + --resolve + --connect-to -> where to connect, keeping Host and SNI. */
export function targetFor(raw: string, resolves: string[], connectTos: string[]): Target {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`
  // Said before the URL parser, which refuses a port above 65535 only as "not a URL".
  const written = /^[a-z]+:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*):(\d+)(?:[/?#]|$)/i.exec(withScheme)?.[1]
  if (written !== undefined) portNumber(written, `"${raw}"`)
  let u: URL
  try {
    u = new URL(withScheme)
  } catch {
    throw new UsageError(`"${raw}" is not a URL; use e.g. https://example.com/path`)
  }
  const scheme = u.protocol.slice(0, -1)
  if (scheme !== 'http' && scheme !== 'https') throw new UsageError(`"${raw}": only http and https URLs are supported`)
  if (u.username || u.password) throw new UsageError(`"${raw}": credentials in the URL are not sent; give them as -H "Authorization: Basic <base64 of user:password>"`)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80
  const t: Target = { scheme, host, port, path: `${u.pathname}${u.search}`, connectHost: host, connectPort: port, pinnedAddress: undefined, http2: false }
  // As curl: the first --connect-to whose host and port match the URL's (empty: any) says where to
  // connect; --resolve then gives the address of that host and port (a later entry for the same
  // pair replacing an earlier one, as in curl's DNS cache).
  let redirected = false
  for (const c of connectTos) {
    const m = /^(\[[^\]]+\]|[^:]*):(\d*):(\[[^\]]+\]|[^:]*):(\d*)$/.exec(c)
    if (!m) throw new UsageError(`--connect-to: "${c}" is not host:port:host2:port2`)
    for (const p of [m[2]!, m[4]!]) if (p !== '') portNumber(p, `--connect-to "${c}"`)
    const hostOk = m[1] === '' || m[1]!.replace(/^\[|\]$/g, '').toLowerCase() === host.toLowerCase()
    const portOk = m[2] === '' || Number(m[2]) === port
    if (hostOk && portOk && !redirected) {
      redirected = true
      if (m[3]) t.connectHost = m[3].replace(/^\[|\]$/g, '')
      if (m[4]) t.connectPort = Number(m[4])
    }
  }
  // `*` as the host names every host on that port (curl 7.86 on); an entry for the host itself
  // wins over it whatever their order, as curl looks the host up before the wildcard.
  let anyHost: string | undefined
  for (const r of resolves) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+):(.+)$/.exec(r)
    if (!m) throw new UsageError(`--resolve: "${r}" is not host:port:addr`)
    portNumber(m[2]!, `--resolve "${r}"`)
    const addr = m[3]!.replace(/^\[|\]$/g, '')
    if (!isIP(addr)) throw new UsageError(`--resolve: "${m[3]}" is not an IP address`)
    if (Number(m[2]) !== t.connectPort) continue
    const name = m[1]!.replace(/^\[|\]$/g, '').toLowerCase()
    if (name === t.connectHost.toLowerCase()) t.pinnedAddress = addr
    else if (m[1] === '*') anyHost = addr
  }
  t.pinnedAddress ??= anyHost
  return t
}

/** The flags that keep every value when repeated (cac gives a list; --slo's lists are joined, each objective kept); any other takes its last, as serve's and check's do. */
const REPEATABLE = new Set(['H', 'header', 'resolve', 'connectTo', 'connect-to', 'data', 'dataBinary', 'data-binary', 'slo'])

export async function benchCommand(url: string | undefined, opts: Record<string, unknown>, io: CliIo): Promise<number> {
  // `--timeout 5s --timeout 6s` was read as "5s,6s" and refused; `-n 3 -n 4` as "3,4".
  for (const [k, v] of Object.entries(opts)) if (Array.isArray(v) && !REPEATABLE.has(k)) opts[k] = v[v.length - 1]
  if (opts.explain) {
    io.out(`${explainText()}\n`)
    return ExitCode.OK
  }
  if (!url) throw new UsageError('bench needs a URL: proxy bench https://example.com/ (or --explain)')
  const durationMs = durationFlagMs(opts.duration, '-d/--duration', '30s', false, '; for a request body use --data')
  if (durationMs !== undefined && opts.requests !== undefined) throw new UsageError('-n/--requests and -d/--duration both given: -n sends a number of requests, -d sends them for a time; give one')
  const timeoutMs = durationFlagMs(opts.timeout, '--timeout', '10s', true) ?? 10_000
  const rate = opts.rate !== undefined ? (/^[0-9]+(\.[0-9]+)?$/.test(String(opts.rate)) ? Number(opts.rate) : Number.NaN) : undefined
  if (rate !== undefined && !(rate > 0)) throw new UsageError(`--rate: "${String(opts.rate)}" is not a positive number of requests per second`)
  // Past this the wait between two requests is longer than a timer can wait, and it would fire at once.
  if (rate !== undefined && 1000 / rate > MAX_TIMER_MS) throw new UsageError(`--rate: "${String(opts.rate)}" is fewer than one request in 24.8 days, longer than a timer can wait; use at least 0.000001`)
  const slo = opts.slo !== undefined ? parseSlo(String(opts.slo)) : []
  const resolves = list(opts.resolve)
  const connectTos = list(opts.connectTo)
  const targets = [targetFor(url, resolves, connectTos)]
  if (opts.vs !== undefined) targets.push(targetFor(String(opts.vs), resolves, connectTos))
  if (opts.vsHttp2 && opts.vs === undefined) throw new UsageError('--vs-http2 needs --vs URL')
  if (opts.vs !== undefined && opts.baseline !== undefined) throw new UsageError('--vs and --baseline each make a comparison: use one')
  // h2 is chosen by ALPN in the TLS handshake (RFC 9113 §3.2); cleartext h2c is not offered.
  targets.forEach((t, i) => {
    const want = Boolean(opts.http2) || (i === 1 && Boolean(opts.vsHttp2))
    if (want && t.scheme === 'http') io.err(`note: ${i === 0 ? url : String(opts.vs)} is http://: h2 is offered by ALPN over TLS only, so it is timed over HTTP/1.1\n`)
    t.http2 = want && t.scheme === 'https'
  })
  let requests = positiveInt(opts.requests, '-n/--requests')
  if (requests === undefined && durationMs === undefined) requests = targets.length === 2 ? 100 : 1
  const concurrency = positiveInt(opts.concurrency, '-c/--concurrency') ?? (rate !== undefined ? DEFAULT_RATE_CONCURRENCY : DEFAULT_CONCURRENCY)
  const streams = positiveInt(opts.streams, '-m/--streams') ?? DEFAULT_STREAMS
  if (streams > 1 && !targets.some((t) => t.http2)) throw new UsageError('-m/--streams needs --http2 (or --vs-http2) and an https URL: HTTP/1.1 carries one request at a time')
  if (streams > 1 && opts.keepalive === false) throw new UsageError('-m/--streams with --no-keepalive: every request has a connection of its own, so none carries more than one stream; leave one of them out')
  const baseline = opts.baseline !== undefined ? loadBaseline(String(opts.baseline)) : undefined
  if (slo.some((o) => o.regressionPct !== undefined) && !baseline) throw new UsageError('--slo: a "+N%" objective is measured against a saved run: add --baseline FILE.json')

  const body = bodyOf(opts)
  // A request line and fields as HTTP has them (RFC 9110 §5.1, §5.5, §9.1): a token for a name or
  // a method, and no control character but HTAB in a value (a CR LF would make a second field).
  // As curl: "Name:" with no value sends no field of that name and removes the bench's own
  // (User-Agent, Accept, a body's Content-Type); "Name;" sends the field with an empty value.
  const { headers, omit } = headerFlags(list(opts.header))
  // The body's framing is the bench's own (Content-Length: its size): a second Content-Length, or a
  // Transfer-Encoding beside it, makes a request a server must refuse (RFC 9112 §6.1, §6.3); and
  // one removed would leave the body unframed (curl sends it so).
  const isFraming = (n: string) => /^(content-length|transfer-encoding)$/i.test(n)
  const framing = body && (headers.find(([n]) => isFraming(n))?.[0] ?? [...omit].find(isFraming))
  if (framing) throw new UsageError(`-H: "${framing}" with a request body: bench sends the body with Content-Length: ${body!.byteLength} itself; leave the -H out`)
  if (body && !headers.some(([n]) => n.toLowerCase() === 'content-type') && !omit.has('content-type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded'])
  let ca: string | undefined
  if (opts.cacert !== undefined) {
    try {
      ca = readFileSync(String(opts.cacert), 'utf8')
    } catch (err) {
      throw new UsageError(`--cacert: cannot read "${String(opts.cacert)}": ${(err as NodeJS.ErrnoException).code ?? err}`)
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--cacert: "${String(opts.cacert)}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  }
  // Sent as written, as curl does: a method is case-sensitive (RFC 9110 §9.1).
  const method = opts.method !== undefined ? String(opts.method) : body ? 'POST' : 'GET'
  if (!TOKEN.test(method)) throw new UsageError(`-X/--method: "${String(opts.method)}" is not a method (a token, e.g. GET, POST, PURGE)`)

  const keepAlive = opts.keepalive !== false
  // Both files are opened before the run, so that a path that cannot be written is said at once
  // (not after the run, or as a stack trace in the middle of it).
  const samplesOut = opts.samples !== undefined ? createWriteStream('', { fd: openForWriting(String(opts.samples), '--samples') }) : undefined
  // A write that fails during the run (a full disk) is said after the summary, as --html's is.
  let samplesFailed: NodeJS.ErrnoException | undefined
  samplesOut?.on('error', (err) => (samplesFailed ??= err))
  if (opts.html !== undefined) closeSync(openForWriting(String(opts.html), '--html'))
  let done = 0
  let failed = 0
  const started = performance.now()
  // Ctrl-C ends the run with a summary of what finished, as oha does; a second one quits at once
  // (the default action: killed by SIGINT).
  const interrupt = new AbortController()
  const onInterrupt = () => {
    if (!interrupt.signal.aborted) {
      interrupt.abort()
      io.err('\ninterrupted: the summary counts the requests that finished (Ctrl-C again to quit at once)\n')
      return
    }
    process.off('SIGINT', onInterrupt)
    process.kill(process.pid, 'SIGINT')
  }
  const progress =
    io.stderrIsTTY && !opts.json
      ? setInterval(() => {
          const s = (performance.now() - started) / 1000
          if (s >= 1) io.err(`\r  ${done} requests, ${failed} errors, ${s.toFixed(1)} s `)
        }, 200)
      : undefined
  const plan: RunPlan = {
    targets,
    spec: { method, headers, body, omit },
    client: { timeoutMs, insecure: Boolean(opts.insecure), ca, lookup: createLookup(), tlsSessions: opts.tlsResume === false ? undefined : new TlsSessionCache() },
    requests,
    durationMs,
    concurrency,
    streams,
    ratePerS: rate,
    keepAlive,
    signal: interrupt.signal,
    onSample: (s: Sample) => {
      done++
      if (sampleFailed(s)) failed++
      samplesOut?.write(`${JSON.stringify(sampleRecord(s, s.side === 'a' ? url : String(opts.vs)))}\n`)
    },
  }
  let result
  process.on('SIGINT', onInterrupt)
  try {
    result = await runBench(plan)
  } finally {
    process.off('SIGINT', onInterrupt)
    if (progress) {
      clearInterval(progress)
      if (performance.now() - started >= 1000) io.err('\r\u001b[K')
    }
    if (samplesOut) await new Promise<void>((r) => (samplesOut.closed ? r() : (samplesOut.once('close', () => r()), samplesOut.end())))
  }
  const c = colorsFor(io.stdoutIsTTY, io.env)
  const columns = Number(io.env.COLUMNS) || (io.stdoutIsTTY ? (process.stdout.columns ?? 0) : 0)
  const text = { sparklines: colorEnabled(io.stdoutIsTTY, io.env) && columns >= 80, keepAlive }
  const a = result.samples.filter((s) => s.side === 'a')
  const b = result.samples.filter((s) => s.side === 'b')
  const conns = (side: 'a' | 'b') => result.connections.filter((k) => k.side === side)
  // An HTTP/1.1 side beside an HTTP/2 one has a connection per stream (runner.ts): as many
  // requests in flight on each side, and said so.
  const perConnection = keepAlive && targets.some((t) => t.http2) ? streams : 1
  const concurrencyOf = (i: number) => (targets[i]!.http2 ? { concurrency, streams } : { concurrency: concurrency * perConnection })
  if (perConnection > 1 && !opts.json) {
    targets.forEach((t, i) => {
      if (!t.http2) io.err(`note: ${i === 0 ? url : String(opts.vs)} is timed over HTTP/1.1 with ${concurrency * perConnection} connections (-c ${concurrency} x -m ${streams}), one request each, as many in flight as the HTTP/2 side\n`)
    })
  }
  const ra = { ...report(url, a, result.elapsedMs, conns('a'), result.retriedUnprocessed.a), ...concurrencyOf(0) }
  const rb = targets.length === 2 ? { ...report(String(opts.vs), b, result.elapsedMs, conns('b'), result.retriedUnprocessed.b), ...concurrencyOf(1) } : undefined
  const cmp = rb ? compare(a, b) : undefined
  const base = baseline ? compareWithBaseline(String(opts.baseline), baseline, ra) : undefined
  const sloBase = baseline && base ? { report: baseline, regressed: (p: Phase) => Boolean(base.phases[p]?.ci95 && base.phases[p]!.ci95![1] < 1 && base.phases[p]!.ratio <= 1 / (1 + MIN_EFFECT)) } : undefined
  // With --vs each objective is checked on each side, and each result names its side.
  const sloResults: SloResult[] = rb ? [...evaluateSlo(slo, ra).map((r) => ({ ...r, side: 'a' as const })), ...evaluateSlo(slo, rb).map((r) => ({ ...r, side: 'b' as const }))] : evaluateSlo(slo, ra, sloBase)
  const sloName = (r: SloResult) => (r.side ? `${r.objective.text} on ${r.side === 'a' ? url : String(opts.vs)}` : r.objective.text)
  // Say so when h2 was asked for over TLS and the server chose HTTP/1.1, or no protocol at all (RFC 7301 §3.2: its choice).
  targets.forEach((t, i) => {
    const r = i === 0 ? ra : rb!
    if (t.http2 && r.connection?.tls_version !== undefined && r.connection.alpn !== 'h2') io.err(`note: ${r.url} did not negotiate h2 (ALPN: ${r.connection.alpn || 'none'}); it was timed over HTTP/1.1\n`)
  })

  if (opts.json) {
    const stopped = result.interrupted ? { interrupted: true } : {}
    const doc = rb ? { schema: SCHEMA, ...stopped, a: ra, b: rb, comparison: cmp } : { schema: SCHEMA, ...stopped, ...ra, ...(base ? { baseline: base } : {}) }
    io.out(`${JSON.stringify(slo.length ? { ...doc, slo: sloResults.map((r) => ({ objective: r.objective.text, ...(r.side ? { side: r.side } : {}), actual_ms: r.actualMs, ...(r.baselineMs !== undefined ? { baseline_ms: r.baselineMs } : {}), ok: r.ok })) } : doc, null, 2)}\n`)
  } else if (rb) {
    io.out(`${renderComparison(ra, rb, cmp!, c)}\n`)
  } else if (requests === 1 && durationMs === undefined && a.length === 1 && !base) {
    io.out(`${renderWaterfall(a[0]!, url, c)}\n`)
  } else {
    io.out(`${renderReport(ra, c, text)}\n`)
    if (base) io.out(`\n${c.bold('against the baseline')} ${c.dim(base.file)}\n${renderComparison(baseline!, ra, base, c, ['base', 'now'])}\n`)
  }
  if (sloResults.length && !opts.json) {
    for (const r of sloResults) {
      const was = r.baselineMs !== undefined ? `, baseline ${r.baselineMs.toFixed(1)}ms` : ''
      io.out(`${r.ok ? c.green('ok  ') : c.red('FAIL')} ${sloName(r)} (actual ${r.actualMs === undefined ? 'n/a' : `${r.actualMs.toFixed(1)}ms`}${was})\n`)
    }
  }
  if (opts.html !== undefined) {
    const file = String(opts.html)
    writeHtmlReport(file, { a: ra, aSamples: a, b: rb, bSamples: b, comparison: cmp, baseline: baseline && base ? { report: baseline, comparison: base } : undefined, elapsedMs: result.elapsedMs })
    if (!opts.json) io.err(`HTML report: ${file}\n`)
  }
  if (samplesFailed) throw new UsageError(`--samples: cannot write "${String(opts.samples)}": ${samplesFailed.code ?? samplesFailed.message}`)
  if (result.interrupted) return ExitCode.INTERRUPTED
  // The kinds, and what the first failure said (a table of counts alone does not say what to do).
  const allFailed = (r: typeof ra, samples: Sample[]) => {
    const first = samples.find(sampleFailed)
    return `every request to ${r.url} failed (${Object.keys(r.errors_by_kind).join(', ')})${first?.errorMessage ? `; the first: ${first.errorMessage}` : ''}`
  }
  if (ra.requests > 0 && ra.errors === ra.requests) throw new ProxyError('E_BENCH', allFailed(ra, a))
  if (rb && rb.requests > 0 && rb.errors === rb.requests) throw new ProxyError('E_BENCH', allFailed(rb, b))
  if (sloResults.some((r) => !r.ok)) {
    if (!opts.json) io.err(`error [E_SLO] ${sloResults.filter((r) => !r.ok).map(sloName).join(', ')} broken\n`)
    return ExitCode.SLO_BROKEN
  }
  return ExitCode.OK
}
