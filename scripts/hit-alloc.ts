/**
 * What the proxy allocates per cache hit (issue 18: each eden collection is a fixed pause of
 * ~0.5-0.7 ms, so fewer bytes allocated per hit means fewer of them), counted rather than timed:
 *
 *   BUN_JSC_useGC=0 bun scripts/hit-alloc.ts [--hits 50000] [--warmup 50000] [--connections 4] [--rounds 3] [--proxied]
 *
 * Runs `proxy serve` in this process (`--cache 64MiB`, access log and admin off, as `ab-cpu.ts
 * --cache` runs it) in front of the local nginx origin (local-load.ts), stores /cacheable, then
 * has a child process (this file with --client) send hits over keep-alive connections, one
 * request at a time on each, with wrk's head (GET, Host alone). With the collector off
 * (BUN_JSC_useGC=0: the script refuses to run without it) JSC's heap only grows, so over a round
 * of N hits the growth of its capacity (bun:jsc heapStats().heapCapacity, in 16 KiB blocks) is the
 * bytes allocated, and the growth of objectTypeCounts the cells allocated, by type. Prints per
 * hit, per round: bytes, cells, and each type above 0.05. The client's own allocations are its
 * process's; this one's idle work (timers) during a round is counted in, a few bytes a hit.
 * Rounds agree to well under 1 %. With --proxied the proxy runs without a cache and the client
 * asks for /small: every request goes to the origin, so the count is a proxied request's (both
 * sides: the client's and the upstream's). Loopback only; nginx is killed at the end.
 */
import { heapStats } from 'bun:jsc'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const PROXIED = args.includes('--proxied')
const PATH = PROXIED ? '/small' : '/cacheable'

if (args[0] === '--client') await client(Number(args[1]), Number(args[2]), Number(args[3]), args[4] === 'proxied')
else await main()

/** The load: `hits` requests over `connections` sockets, each sending its next once the answer is in. */
async function client(port: number, hits: number, connections: number, proxied: boolean): Promise<void> {
  const path = proxied ? '/small' : '/cacheable'
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1')
  let sent = 0
  let done = 0
  let finish!: () => void
  const finished = new Promise<void>((r) => (finish = r))
  const next = (s: { write(b: Uint8Array): number }) => {
    if (sent >= hits) return
    sent++
    s.write(request)
  }
  for (let c = 0; c < connections; c++) {
    let held = Buffer.alloc(0)
    await Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        open: (s) => next(s),
        close: () => {
          if (done < hits) {
            console.error(`a connection closed after ${done} of ${hits} answers`)
            process.exit(1)
          }
        },
        data: (s, chunk) => {
          held = held.length === 0 ? Buffer.from(chunk) : Buffer.concat([held, chunk])
          for (;;) {
            const end = held.indexOf('\r\n\r\n')
            if (end < 0) return
            const head = held.toString('latin1', 0, end)
            if (!head.startsWith('HTTP/1.1 200 ') || (!proxied && !/\r\ncache-status: proxy; hit/i.test(head))) {
              console.error(proxied ? `not a 200: ${head}` : `not a hit: ${head}`)
              process.exit(1)
            }
            const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)![1])
            if (held.length < end + 4 + length) return
            held = held.subarray(end + 4 + length)
            if (++done === hits) return finish()
            next(s)
          }
        },
      },
    })
  }
  await finished
  process.exit(0)
}

async function runClient(port: number, hits: number, connections: number): Promise<number> {
  const t0 = performance.now()
  const p = Bun.spawn([process.execPath, import.meta.path, '--client', String(port), String(hits), String(connections), PROXIED ? 'proxied' : 'hit'], { stdout: 'inherit', stderr: 'inherit', env: {} })
  if ((await p.exited) !== 0) throw new Error('the client failed')
  return performance.now() - t0
}

async function main(): Promise<void> {
  if (process.env.BUN_JSC_useGC !== '0') {
    console.error('run with BUN_JSC_useGC=0 (the heap must only grow for its growth to be what was allocated)')
    process.exit(2)
  }
  const { startOrigin, waitFor, workDir } = await import('./local-load.ts')
  const { runCli } = await import('../src/cli.ts')
  const { processIo } = await import('../src/lib/io.ts')
  const HITS = Number(opt('--hits', '50000'))
  const WARMUP = Number(opt('--warmup', '50000'))
  const CONNECTIONS = Number(opt('--connections', '4'))
  const ROUNDS = Number(opt('--rounds', '3'))
  const ports = { origin: 18330, proxy: 18331 }
  startOrigin(workDir('hit-alloc-'), ports.origin)
  const io = { ...processIo(), err: () => {} }
  void runCli(['serve', '--upstream', `127.0.0.1:${ports.origin}`, '--listen', `127.0.0.1:${ports.proxy}`, '--admin', 'off', '--access-log', 'off', ...(PROXIED ? [] : ['--cache', '64MiB'])], io)
  await waitFor(ports.proxy, PATH) // with the cache: the miss that stores it
  await runClient(ports.proxy, WARMUP, CONNECTIONS)
  console.log(`${HITS} ${PROXIED ? 'proxied requests' : 'hits'} a round over ${CONNECTIONS} connections, after ${WARMUP} to warm up; per ${PROXIED ? 'request' : 'hit'}:`)
  for (let r = 0; r < ROUNDS; r++) {
    const before = heapStats()
    const ms = await runClient(ports.proxy, HITS, CONNECTIONS)
    const after = heapStats()
    const types: string[] = []
    let cells = 0
    for (const [type, n] of Object.entries(after.objectTypeCounts)) {
      const d = (n - (before.objectTypeCounts[type] ?? 0)) / HITS
      cells += d
      if (d >= 0.05) types.push(`${type} ${d.toFixed(2)}`)
    }
    const bytes = (after.heapCapacity - before.heapCapacity) / HITS
    console.log(`round ${r + 1}: ${bytes.toFixed(0)} bytes, ${cells.toFixed(2)} cells (${types.sort((a, b) => Number(b.split(' ').pop()) - Number(a.split(' ').pop())).join(', ')}); ${Math.round((HITS * 1000) / ms)} hits/s`)
  }
  process.exit(0)
}
