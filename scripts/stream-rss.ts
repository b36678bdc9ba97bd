/**
 * Streams a large body through a proxy process (the compiled binary, or `bun src/main.ts`) in
 * both directions, with a slow client reader, and samples the proxy's RSS from /proc.
 *
 *   bun scripts/stream-rss.ts [--size 2GiB] [--bin dist/proxy] [--slow-ms 1]
 *
 * Prints the peak RSS for the download and the upload. Used by test/e2e with a smaller size.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parseSizeBytes } from '../src/lib/units.ts'

export interface StreamResult {
  direction: 'download' | 'upload'
  bytes: number
  peakRssBytes: number
  startRssBytes: number
  seconds: number
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) * 1024 : 0
}

/**
 * A process's anonymous resident memory, bytes (RssAnon: heap, buffers, stacks): what it holds for
 * its connections, without the executable's pages, which the proxy gives back after start-up and
 * maps again as code runs (runtime/page-trim.ts), so that a total taken just after a trim is low.
 */
export function rssAnonBytes(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

const CHUNK = new Uint8Array(256 * 1024).fill(0x61)

/** Starts an origin that serves `size` bytes on GET and counts bytes on POST. */
function startOrigin(size: number) {
  return Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    async fetch(req) {
      if (req.method === 'POST') {
        let n = 0
        for await (const c of req.body!) n += (c as Uint8Array).byteLength
        return new Response(String(n))
      }
      let sent = 0
      return new Response(
        new ReadableStream({
          pull(c) {
            if (sent >= size) return c.close()
            const n = Math.min(CHUNK.byteLength, size - sent)
            sent += n
            c.enqueue(n === CHUNK.byteLength ? CHUNK : CHUNK.subarray(0, n))
          },
        }),
      )
    },
  })
}

/** Starts the proxy (with `env` in place of this process's) and waits for its "proxy listening" line; `stderr()`: all it printed on stderr so far. */
export async function startProxyProcess(argv: string[], bin?: string, env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; stderr(): string; stop(): Promise<number | null> }> {
  const cmd = bin ? [bin] : [process.execPath, 'src/main.ts']
  const child = spawn(cmd[0]!, [...cmd.slice(1), ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env })
  let err = ''
  const url = await new Promise<string>((resolve, reject) => {
    // A proxy that does not come up is killed, so that no process outlives the caller.
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`proxy did not start: ${err}`))
    }, 15000)
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      const m = /proxy listening (?:worker=\d+ )?url=(\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`proxy exited with ${code}: ${err}`))
    })
  })
  return {
    child,
    url,
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        // Already gone (an exit code, or a signal: then null, which no caller takes for a clean stop).
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
        child.once('exit', (code) => resolve(code))
        child.kill('SIGTERM')
      }),
  }
}

export async function measureStreams(opts: { sizeBytes: number; bin?: string; slowMs: number }): Promise<StreamResult[]> {
  const origin = startOrigin(opts.sizeBytes)
  const proxy = await startProxyProcess(['serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off'], opts.bin)
  const pid = proxy.child.pid!
  const results: StreamResult[] = []
  try {
    for (const direction of ['download', 'upload'] as const) {
      const startRss = rssBytes(pid)
      let peak = startRss
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50)
      const t0 = performance.now()
      let bytes = 0
      if (direction === 'download') {
        const res = await fetch(`${proxy.url}/big`)
        const reader = res.body!.getReader()
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          bytes += value.byteLength
          if (opts.slowMs > 0) await Bun.sleep(opts.slowMs) // a slow reader: the proxy must not buffer ahead
        }
      } else {
        let sent = 0
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent >= opts.sizeBytes) return c.close()
            const n = Math.min(CHUNK.byteLength, opts.sizeBytes - sent)
            sent += n
            c.enqueue(CHUNK.subarray(0, n))
          },
        })
        const res = await fetch(`${proxy.url}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit)
        bytes = Number(await res.text())
      }
      clearInterval(sampler)
      peak = Math.max(peak, rssBytes(pid))
      results.push({ direction, bytes, peakRssBytes: peak, startRssBytes: startRss, seconds: (performance.now() - t0) / 1000 })
    }
  } finally {
    await proxy.stop()
    origin.stop(true)
  }
  return results
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const arg = (name: string, def: string) => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1]! : def
  }
  const sizeBytes = parseSizeBytes(arg('--size', '2GiB'))!
  const bin = args.includes('--bin') ? arg('--bin', 'dist/proxy') : undefined
  const results = await measureStreams({ sizeBytes, bin, slowMs: Number(arg('--slow-ms', '1')) })
  for (const r of results) {
    console.log(`${r.direction.padEnd(8)} ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(1)} s; proxy RSS start ${(r.startRssBytes / 2 ** 20).toFixed(1)} MiB, peak ${(r.peakRssBytes / 2 ** 20).toFixed(1)} MiB`)
  }
}
