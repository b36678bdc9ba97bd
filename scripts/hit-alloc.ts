/**
 * What the proxy allocates per cache hit (issue 18: each eden collection is a fixed pause of
 * ~0.5-0.7 ms, so fewer bytes allocated per hit means fewer of them), counted rather than timed:
 *
 *   BUN_JSC_useGC=0 bun scripts/hit-alloc.ts [--hits 50000] [--warmup 50000] [--connections 4] [--rounds 3] [--proxied] [--h2 [--streams 10]] [--ports BASE]
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
 *
 * With --h2 [--streams 10] the proxy listens with TLS (a self-signed certificate, as ab-cpu.ts
 * --h2 has it) and the client speaks HTTP/2 over it (ALPN h2): on each connection `streams`
 * requests in flight, as `h2load -m10` keeps them, each answered stream followed by a new one in
 * the same write, request heads shaped and HPACK-coded as h2load's (the :path a literal, the
 * rest indexed), window credit as h2load gives it (2^30-1 per stream and connection). Figures are
 * per stream; the client checks each answer (200; a hit, but with --proxied). It uses ports
 * 18332-18333 (the HTTP/1.1 load 18330-18331), so both can run at once; --ports BASE takes BASE
 * and BASE+1 instead, and a port already taken ends the run with a message.
 */
import { heapStats } from 'bun:jsc'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1]! : def
}
const PROXIED = args.includes('--proxied')
const PATH = PROXIED ? '/small' : '/cacheable'
const H2 = args.includes('--h2')
const STREAMS = Number(opt('--streams', '10'))

if (args[0] === '--client') await client(Number(args[1]), Number(args[2]), Number(args[3]), args[4] === 'proxied')
else if (args[0] === '--h2-client') await h2Client(Number(args[1]), Number(args[2]), Number(args[3]), args[4] === 'proxied', Number(args[5]))
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

/**
 * The HTTP/2 load: `hits` streams over `connections` TLS connections, `streams` in flight on each;
 * each stream answered (END_STREAM) is followed by a new one, all of a read's in one write.
 */
async function h2Client(port: number, hits: number, connections: number, proxied: boolean, streams: number): Promise<void> {
  const F = await import('../src/http2/frames.ts')
  const { HpackDecoder, HpackEncoder } = await import('../src/http2/hpack.ts')
  const { connect } = await import('node:tls')
  const path = proxied ? '/small' : '/cacheable'
  const WINDOW = 2 ** 30 - 1
  let sent = 0
  let done = 0
  let finish!: () => void
  const finished = new Promise<void>((r) => (finish = r))
  const fail = (why: string) => {
    console.error(why)
    process.exit(1)
  }
  for (let c = 0; c < connections; c++) {
    const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] })
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve())
      sock.once('error', reject)
    })
    if (sock.alpnProtocol !== 'h2') fail(`ALPN chose ${sock.alpnProtocol}, not h2`)
    const enc = new HpackEncoder(4096)
    const dec = new HpackDecoder(65_536, 1 << 20)
    const fields: [string, string][] = [[':method', 'GET'], [':path', path], [':scheme', 'https'], [':authority', `127.0.0.1:${port}`], ['user-agent', 'h2load nghttp2/1.52.0']]
    let nextId = 1
    let unacked = 0
    let held: Buffer = Buffer.alloc(0)
    const out: Uint8Array[] = []
    const more = (n: number) => {
      for (let i = 0; i < n && sent < hits; i++, sent++, nextId += 2) out.push(F.headerFrames(nextId, enc.encode(fields), true, F.MIN_MAX_FRAME_SIZE))
    }
    sock.on('close', () => done < hits && fail(`a connection closed after ${done} of ${hits} answers`))
    sock.on('data', (chunk: Buffer) => {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk])
      let off = 0
      let answered = 0
      while (held.length - off >= F.FRAME_HEADER_BYTES) {
        const h = F.readFrameHeader(held, off)
        if (held.length - off < F.FRAME_HEADER_BYTES + h.length) break
        const payload = held.subarray(off + F.FRAME_HEADER_BYTES, off + F.FRAME_HEADER_BYTES + h.length)
        off += F.FRAME_HEADER_BYTES + h.length
        const end = (h.flags & F.Flag.END_STREAM) !== 0
        if (h.type === F.FrameType.HEADERS) {
          if ((h.flags & (F.Flag.END_HEADERS | F.Flag.PADDED | F.Flag.PRIORITY)) !== F.Flag.END_HEADERS) fail('a HEADERS frame this client does not read')
          const head = dec.decode(payload).fields
          if (head[0]?.[1] !== '200') fail(`not a 200: ${JSON.stringify(head)}`)
          if (!proxied && !head.some(([n, v]) => n === 'cache-status' && v.startsWith('proxy; hit'))) fail(`not a hit: ${JSON.stringify(head)}`)
        } else if (h.type === F.FrameType.DATA) unacked += h.length
        else if (h.type === F.FrameType.SETTINGS && (h.flags & F.Flag.ACK) === 0) out.push(F.SETTINGS_ACK)
        else if (h.type === F.FrameType.PING && (h.flags & F.Flag.ACK) === 0) out.push(F.pingFrame(payload, true))
        else if (h.type === F.FrameType.RST_STREAM || h.type === F.FrameType.GOAWAY) fail(`${h.type === F.FrameType.GOAWAY ? 'GOAWAY' : 'RST_STREAM'} on stream ${h.streamId}`)
        if (end && (h.type === F.FrameType.HEADERS || h.type === F.FrameType.DATA)) answered++
      }
      held = held.subarray(off)
      done += answered
      if (done >= hits) return finish()
      more(answered)
      if (unacked >= WINDOW / 2) {
        out.push(F.windowUpdateFrame(0, unacked))
        unacked = 0
      }
      if (out.length > 0) sock.write(Buffer.concat(out.splice(0)))
    })
    // The preface, our SETTINGS (no push, h2load's windows), the connection's window, the first streams.
    out.push(F.PREFACE, F.settingsFrame([[F.Setting.ENABLE_PUSH, 0], [F.Setting.INITIAL_WINDOW_SIZE, WINDOW]]), F.windowUpdateFrame(0, WINDOW - F.DEFAULT_WINDOW))
    more(streams)
    sock.write(Buffer.concat(out.splice(0)))
  }
  await finished
  process.exit(0)
}

async function runClient(port: number, hits: number, connections: number): Promise<number> {
  const t0 = performance.now()
  const mode = PROXIED ? 'proxied' : 'hit'
  const argv = H2 ? ['--h2-client', String(port), String(hits), String(connections), mode, String(STREAMS)] : ['--client', String(port), String(hits), String(connections), mode]
  const p = Bun.spawn([process.execPath, import.meta.path, ...argv], { stdout: 'inherit', stderr: 'inherit', env: {} })
  if ((await p.exited) !== 0) throw new Error('the client failed')
  return performance.now() - t0
}

async function main(): Promise<void> {
  if (process.env.BUN_JSC_useGC !== '0') {
    console.error('run with BUN_JSC_useGC=0 (the heap must only grow for its growth to be what was allocated)')
    process.exit(2)
  }
  const { selfSignedTlsArgs, startOrigin, waitFor, workDir } = await import('./local-load.ts')
  const { runCli } = await import('../src/cli.ts')
  const { processIo } = await import('../src/lib/io.ts')
  const HITS = Number(opt('--hits', '50000'))
  const WARMUP = Number(opt('--warmup', '50000'))
  const CONNECTIONS = Number(opt('--connections', '4'))
  const ROUNDS = Number(opt('--rounds', '3'))
  // --ports BASE: the origin on BASE, the proxy on BASE+1. Both must be free: a proxy that cannot
  // listen says nothing here (its log is off), and the client would count another run's proxy.
  const base = Number(opt('--ports', H2 ? '18332' : '18330'))
  const ports = { origin: base, proxy: base + 1 }
  for (const port of [ports.origin, ports.proxy]) {
    try {
      Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true)
    } catch {
      console.error(`hit-alloc: port ${port} on 127.0.0.1 is taken (another run?); pick others with --ports BASE (BASE and BASE+1)`)
      process.exit(2)
    }
  }
  const dir = workDir('hit-alloc-')
  startOrigin(dir, ports.origin)
  const io = { ...processIo(), err: () => {} }
  const tlsArgs = H2 ? selfSignedTlsArgs(dir) : []
  void runCli(['serve', '--upstream', `127.0.0.1:${ports.origin}`, '--listen', `127.0.0.1:${ports.proxy}`, '--admin', 'off', '--access-log', 'off', ...tlsArgs, ...(PROXIED ? [] : ['--cache', '64MiB'])], io)
  await waitFor(ports.proxy, PATH, H2) // with the cache: the miss that stores it
  await runClient(ports.proxy, WARMUP, CONNECTIONS)
  const what = H2 ? `HTTP/2 streams (${STREAMS} in flight a connection)${PROXIED ? ', proxied' : ', cache hits'}` : PROXIED ? 'proxied requests' : 'hits'
  console.log(`${HITS} ${what} a round over ${CONNECTIONS} connections, after ${WARMUP} to warm up; per ${H2 ? 'stream' : PROXIED ? 'request' : 'hit'}:`)
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
    console.log(`round ${r + 1}: ${bytes.toFixed(0)} bytes, ${cells.toFixed(2)} cells (${types.sort((a, b) => Number(b.split(' ').pop()) - Number(a.split(' ').pop())).join(', ')}); ${Math.round((HITS * 1000) / ms)} ${H2 ? "streams" : "hits"}/s`)
  }
  process.exit(0)
}
