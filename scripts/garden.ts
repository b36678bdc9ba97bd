/**
 * A differential request-parsing sweep in the manner of the HTTP Garden: each odd request of
 * scripts/garden-cases.ts goes as raw bytes to this proxy (its own listener, `bun src/main.ts
 * serve`) in front of a recording origin, and the bytes the proxy forwarded are replayed to five
 * origin parsers (nginx, HAProxy, python3 http.server, Node's http, Bun.serve:
 * scripts/garden-origins.ts). A case is flagged when an origin reads the forwarded bytes as a
 * different number of requests than the proxy sent (a desync), or reads a method, Host or body
 * length differently; a different target is listed apart (path normalisation). The original bytes
 * also go to each origin parser directly, and a case the proxy forwarded while most of them refuse
 * it is flagged as lax.
 *
 *   bun scripts/garden.ts [--mutations 200] [--seed 13] [--base-port 27300] [--only <name part>] [--json out.json]
 *
 * Needs nginx, haproxy, python3 and /usr/bin/node. Loopback only; everything started is killed
 * at the end. Takes a few minutes (about 0.5 s a case).
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { gardenCases } from './garden-cases.ts'
import { startOrigins, startRecorder, type Forwarded } from './garden-origins.ts'

interface Reply {
  statuses: string[]
  echoes: string[]
}

/**
 * Sends `raw` and reads until the peer closes, until `want` echo lines came and 150 ms passed
 * with nothing more, or 300 ms of silence after anything, or `capMs`.
 */
function send(port: number, raw: Buffer | string, want: number, capMs = 1500): Promise<Reply> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    let idle: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      clearTimeout(cap)
      clearTimeout(idle)
      s.destroy()
      resolve({ statuses: [...got.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => m[1]!), echoes: [...got.matchAll(/ECHO ([^\n]*)\n/g)].map((m) => m[1]!) })
    }
    const cap = setTimeout(done, capMs)
    s.on('data', (d) => {
      got += d.toString('latin1')
      clearTimeout(idle)
      const echoes = got.split('ECHO ').length - 1
      idle = setTimeout(done, want > 0 && echoes >= want ? 150 : 300)
    })
    s.on('close', done)
    s.on('error', done)
    s.write(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw)
  })
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1]! : fallback
}

/** How origin `name` read one request, as comparable fields (nginx says the framing, not the length). */
function readEcho(name: string, echo: string): { method: string; target: string; host: string; body: string } {
  const [method = '', target = '', host = '', body = ''] = echo.split('\x1f')
  if (name === 'nginx') {
    const m = /cl=(\S*) te=(.*)/.exec(body)
    return { method, target, host, body: m?.[2] ? `te:${m[2]}` : m?.[1] || '0' }
  }
  return { method, target, host: host === 'undefined' || host === 'null' ? '' : host, body }
}

/**
 * The differences between what the proxy forwarded and origin `name`'s reading of those bytes:
 * EXTRA (the origin read more requests: a smuggled one), STALL (fewer answers and no refusal: it
 * waits for bytes the proxy thinks belong to nothing), REFUSED (it answered an error: a policy
 * or strictness of its own, not a desync), and per request METHOD, HOST, BODY and TARGET.
 */
function compare(name: string, sent: Forwarded[], reply: Reply): { kind: string; text: string }[] {
  const out: { kind: string; text: string }[] = []
  const refused = reply.statuses.filter((s) => s >= '400')
  // Answers that served a request (a HEAD's has no echo line: it has no body).
  const served = reply.statuses.filter((s) => s >= '200' && s < '400').length
  const what = `${served} requests (${reply.statuses.join(',') || 'no answer'}) where the proxy sent ${sent.length}`
  if (served > sent.length) out.push({ kind: 'EXTRA', text: `${name}: ${what}` })
  else if (refused.length > 0) out.push({ kind: 'REFUSED', text: `${name}: ${what}` })
  else if (served < sent.length) out.push({ kind: 'STALL', text: `${name}: ${what}` })
  const echoed = sent.filter((r) => r.method !== 'HEAD')
  for (let i = 0; i < Math.min(echoed.length, reply.echoes.length); i++) {
    const p = echoed[i]!
    const o = readEcho(name, reply.echoes[i]!)
    if (o.method !== p.method) out.push({ kind: 'METHOD', text: `${name}: method ${JSON.stringify(o.method)} vs ${JSON.stringify(p.method)}` })
    if (o.host.toLowerCase() !== p.host.toLowerCase()) out.push({ kind: 'HOST', text: `${name}: Host ${JSON.stringify(o.host)} vs ${JSON.stringify(p.host)}` })
    if (!(name === 'nginx' && o.body.startsWith('te:')) && o.body !== String(p.bodyLength)) out.push({ kind: 'BODY', text: `${name}: body ${o.body} vs ${p.bodyLength}` })
    if (o.target !== p.target) out.push({ kind: 'TARGET', text: `${name}: target ${JSON.stringify(o.target)} vs ${JSON.stringify(p.target)}` })
  }
  return out
}

async function main(): Promise<void> {
  const base = Number(arg('base-port', '27300'))
  const only = arg('only', '')
  const cases = gardenCases(Number(arg('mutations', '200')), Number(arg('seed', '13'))).filter(([name]) => name.includes(only))
  const recorder = startRecorder()
  const origins = await startOrigins(base)
  const proxyPort = base + 9
  const proxy = spawn('bun', ['src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${recorder.port}`, '--listen', `127.0.0.1:${proxyPort}`, '--admin', 'off', '--access-log', 'off',
    '--client-header-timeout', '2s', '--header-timeout', '2s'], { stdio: 'ignore', detached: true })
  const results: unknown[] = []
  const stop = () => {
    try {
      process.kill(-proxy.pid!, 'SIGKILL')
    } catch {}
    origins.stop()
    recorder.stop()
  }
  process.once('SIGINT', () => (stop(), process.exit(130)))
  process.once('SIGTERM', () => (stop(), process.exit(143)))
  const counts: Record<string, number> = {}
  const strictOnly: string[] = []
  try {
    for (let i = 0; i < 50; i++) {
      const r = await send(proxyPort, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 1, 500)
      if (r.statuses.length > 0) break
      await Bun.sleep(200)
    }
    recorder.take()
    for (const [name, raw] of cases) {
      const viaProxy = await send(proxyPort, raw, 0)
      await Bun.sleep(20)
      const conns = recorder.take()
      const sent = conns.flatMap((c) => c.requests)
      const flags: { kind: string; text: string }[] = []
      for (const c of conns) {
        const replies = await Promise.all(Object.entries(origins.ports).map(async ([o, port]) => [o, await send(port, c.bytes, c.requests.length)] as const))
        for (const [o, r] of replies) flags.push(...compare(o, c.requests, r))
      }
      // The original bytes, straight to each origin parser: how strict readers answer them.
      const direct = await Promise.all(Object.entries(origins.ports).map(async ([o, port]) => [o, await send(port, raw, 0)] as const))
      const refused = direct.filter(([, r]) => !r.statuses.some((st) => st >= '200' && st < '400')).map(([o, r]) => `${o}:${r.statuses[0] ?? 'closed'}`)
      if (sent.length > 0 && refused.length >= 3) flags.push({ kind: 'LAX', text: `proxy forwarded ${sent.length}, refused directly by ${refused.join(' ')}` })
      if (sent.length === 0 && refused.length === 0 && viaProxy.statuses.some((st) => st >= '400')) strictOnly.push(`${name}: proxy ${viaProxy.statuses.join(',') || 'closed'}`)
      for (const f of flags) counts[f.kind] = (counts[f.kind] ?? 0) + 1
      results.push({ name, raw, proxy: viaProxy.statuses, forwarded: sent, direct: Object.fromEntries(direct.map(([o, r]) => [o, r])), flags })
      const shown = flags.filter((f) => f.kind !== 'REFUSED' && (f.kind !== 'TARGET' || !f.text.startsWith('bun:')))
      if (shown.length > 0) console.log(`* ${name} [proxy ${viaProxy.statuses.join(',') || 'closed'}; forwarded ${sent.map((s) => `${s.method} ${s.target.slice(0, 40)}`).join('; ') || 'nothing'}]\n    ${shown.map((f) => `${f.kind} ${f.text}`).join('\n    ')}`)
    }
  } finally {
    stop()
  }
  console.log(`\n${cases.length} cases; flags by kind: ${JSON.stringify(counts)}`)
  console.log(`refused by the proxy, read by all five origins (${strictOnly.length}):\n  ${strictOnly.join('\n  ')}`)
  const json = arg('json', '')
  if (json) writeFileSync(json, JSON.stringify(results, null, 1))
}

if (import.meta.main) await main()
