/**
 * Where the proxy's CPU time goes under load: `perf` samples with JavaScript names, from source.
 *
 *   bun scripts/profile.ts [--ports 18310] [--h2 | --tls] [--browser-head] [--path /small] [--connections 64] [--seconds 5] [--top 25] [--keep]
 *
 * Runs `bun src/main.ts serve` (JIT dump on) in front of a local nginx origin, loads it with wrk
 * (or h2load over TLS with --h2, wrk over TLS with --tls; with --browser-head wrk sends a
 * browser's navigation head, as ab-cpu.ts does) for a warm-up, then records it with
 * `perf record -g` while the load goes on, and prints: the share of kernel, JavaScript and
 * Bun-native samples; JavaScript functions by self and by inclusive time; native samples by the
 * innermost JavaScript function that called them (Bun's own code is stripped of symbols).
 *
 * JSC writes its JIT dump as jit-<tid>-<pid>.dump; `perf inject --jit` only picks up
 * jit-<pid>.dump, and then matches samples to JIT code by time (code whose addresses were reused
 * after a recompilation keeps its own name). So the dump's name is rewritten in the recorded mmap
 * event (the same length, NUL-padded) and the dump copied under that name before the inject.
 *
 * Needs perf (Debian: linux-perf) with perf_event_paranoid at most 1, or root; nginx, wrk and
 * h2load as ab-cpu.ts. Loopback only; with --keep the temp dir (perf data, dumps) is left.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BROWSER_FIELDS, h2load, selfSignedTlsArgs, start, startOrigin, waitFor, workDir, wrk } from './local-load.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const H2 = args.includes('--h2')
const TLS = H2 || args.includes('--tls')
const PATH = opt('--path', '/small')
const FIELDS = args.includes('--browser-head') ? BROWSER_FIELDS : []
const CONNECTIONS = opt('--connections', '64')
const SECONDS = Number(opt('--seconds', '5'))
const TOP = Number(opt('--top', '25'))
const PORT_BASE = Number(opt('--ports', '18310'))
const PORTS = { origin: PORT_BASE, proxy: PORT_BASE + 1 }

if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('perf is not installed (Debian: apt-get install linux-perf)')
  process.exit(2)
}
const dir = workDir('profile-', args.includes('--keep'))
const dumps = join(dir, 'jit')
mkdirSync(dumps)

startOrigin(dir, PORTS.origin)
const tlsArgs = TLS ? selfSignedTlsArgs(dir) : []
const main = join(import.meta.dir, '..', 'src', 'main.ts')
const proxy = start(process.execPath, [main, 'serve', '--upstream', `127.0.0.1:${PORTS.origin}`, '--listen', `127.0.0.1:${PORTS.proxy}`, '--admin', 'off', '--access-log', 'off', ...tlsArgs], {
  BUN_JSC_useJITDump: '1',
  BUN_JSC_jitDumpDirectory: dumps,
})
await waitFor(PORTS.origin, PATH)
await waitFor(PORTS.proxy, PATH, TLS)
const load = (seconds: number) => (H2 ? h2load(PORTS.proxy, PATH, `${seconds}`) : wrk(PORTS.proxy, PATH, CONNECTIONS, `${seconds}s`, FIELDS, TLS))
await load(3) // warm-up: JIT tiers, the upstream pool

const data = join(dir, 'perf.data')
const recorder = spawn('perf', ['record', '-k', 'mono', '-e', 'cpu-clock', '-F', '4999', '-g', '-p', String(proxy.pid), '-o', data, '--', 'sleep', String(SECONDS)], { stdio: ['ignore', 'ignore', 'pipe'] })
let recordErr = ''
recorder.stderr!.on('data', (d) => (recordErr += d))
const recorded = new Promise<number>((resolve) => recorder.on('exit', (code) => resolve(code ?? 1)))
const { rps } = await load(SECONDS + 1)
if ((await recorded) !== 0) {
  console.error(`perf record failed (perf_event_paranoid at most 1, or root):\n${recordErr}`)
  process.exit(1)
}
console.log(`${H2 ? 'h2load -c16 -m10' : `wrk -c${CONNECTIONS}${TLS ? ' over TLS' : ''}${FIELDS.length ? ' (browser head)' : ''}`} ${PATH}: ${rps.toFixed(0)} req/s during the recording (perf slows it)`)

// The dump under the name perf inject looks for, and that name in the recorded mmap event.
const pid = proxy.pid!
const dump = readdirSync(dumps).find((f) => f.endsWith(`-${pid}.dump`))
if (!dump) throw new Error(`no JIT dump of process ${pid} in ${dumps}`)
const wanted = join(dumps, `jit-${pid}.dump`)
copyFileSync(join(dumps, dump), wanted)
const raw = readFileSync(data)
const from = Buffer.from(`${join(dumps, dump)}\0`)
const to = Buffer.alloc(from.length)
to.write(`${wanted}\0`)
let at = raw.indexOf(from)
if (at < 0) throw new Error('the JIT dump was not mapped in the recording (was the dump directory writable?)')
for (; at >= 0; at = raw.indexOf(from, at + from.length)) to.copy(raw, at)
writeFileSync(`${data}.named`, raw)
const injected = spawnSync('perf', ['inject', '--jit', '-i', `${data}.named`, '-o', `${data}.jit`])
if (injected.status !== 0) throw new Error(`perf inject failed: ${injected.stderr}`)
const script = spawnSync('perf', ['script', '-i', `${data}.jit`], { encoding: 'utf8', maxBuffer: 1 << 30 })
if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`)

report(script.stdout)

/** One stack: frames innermost first, each as a short name and whether it is kernel code. */
type Frame = { name: string; kernel: boolean; js: boolean }

function frameOf(line: string): Frame {
  // "\t ffffffff81000000 symbol+0x12 (dso)"
  const m = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$/.exec(line)
  const sym = m?.[1] ?? line.trim()
  const dso = m?.[2] ?? ''
  const kernel = dso.includes('kernel')
  const js = sym.startsWith('JSC-') && !sym.includes('Thunk') && !sym.startsWith('JSC-ExtraCTI')
  let name = sym.replace(/\+0x[0-9a-f]+$/, '')
  if (js) name = name.replace(/^JSC-(FTL|DFG|Baseline|LLInt)[^:]*: /, '').replace(/#\w+$/, '') || '(anonymous)'
  else if (/^0x|\[unknown\]/.test(name)) name = '[native]'
  return { name, kernel, js }
}

function report(text: string): void {
  const stacks: Frame[][] = []
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '')
    if (lines.length < 2) continue
    stacks.push(lines.slice(1).map(frameOf))
  }
  const total = stacks.length
  const pct = (n: number) => `${((100 * n) / total).toFixed(2).padStart(6)} %`
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const nativeBy = new Map<string, number>()
  let kernel = 0
  let jsSelf = 0
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)
  for (const frames of stacks) {
    const leaf = frames[0]!
    if (leaf.kernel) kernel++
    else if (leaf.js) {
      jsSelf++
      bump(self, leaf.name)
    } else bump(nativeBy, frames.find((f) => f.js)?.name ?? '(no JavaScript on the stack)')
    for (const name of new Set(frames.filter((f) => f.js).map((f) => f.name))) bump(inclusive, name)
  }
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)
  console.log(`${total} samples: kernel ${pct(kernel)}, JavaScript ${pct(jsSelf)}, native ${pct(total - kernel - jsSelf)}`)
  console.log('\nJavaScript, self:')
  for (const [k, v] of top(self)) console.log(`${pct(v)}  ${k}`)
  console.log('\nJavaScript, inclusive (any frame on the stack):')
  for (const [k, v] of top(inclusive)) console.log(`${pct(v)}  ${k}`)
  const kern = new Map<string, number>()
  for (const frames of stacks) if (frames[0]!.kernel) bump(kern, frames[0]!.name)
  console.log('\nkernel, self:')
  for (const [k, v] of top(kern)) console.log(`${pct(v)}  ${k}`)
  const nat = new Map<string, number>()
  for (const frames of stacks) if (!frames[0]!.kernel && !frames[0]!.js) bump(nat, frames[0]!.name)
  console.log('\nnative, self (leaf symbol):')
  for (const [k, v] of top(nat)) console.log(`${pct(v)}  ${k}`)
  console.log('\nnative (Bun, libc), by the innermost JavaScript function that called it:')
  for (const [k, v] of top(nativeBy)) console.log(`${pct(v)}  ${k}`)
}
process.exit(0)
