/**
 * Integration harness: starts origins and proxies on loopback with port 0, and closes all of
 * them in one call (use in afterEach). Everything a test starts is registered here.
 */
import type { Server } from 'bun'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { resolveConfig, type FlagLayer } from '../../src/config/resolve.ts'
import type { ResolvedConfig } from '../../src/config/schema.ts'
import type { EdgeCache } from '../../src/proxy/cache/cache.ts'
import { staticSource, type Address, type AddressSource } from '../../src/proxy/upstream/address-source.ts'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { setReceiveBuffer } from '../../src/runtime/receive-buffer.ts'


type Closer = () => void | Promise<void>

export class Harness {
  private closers: Closer[] = []
  readonly records: RequestRecord[] = []

  /** Registers anything with close/stop for teardown. */
  track(fn: Closer): void {
    this.closers.push(fn)
  }

  origin(options: Omit<Parameters<typeof Bun.serve>[0], 'port' | 'hostname'> & { hostname?: string; port?: number }): Server<unknown> {
    const s = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 0, ...options } as Parameters<typeof Bun.serve>[0])
    this.track(() => s.stop(true))
    return s as Server<unknown>
  }

  config(flags: FlagLayer): ResolvedConfig {
    return resolveConfig(undefined, { ...flags, server: { listen: '127.0.0.1:0', ...flags.server }, admin: { listen: 'off', ...flags.admin } })
  }

  /** A proxy whose upstream addresses come from `addresses` (or the URL's IP literal). */
  proxy(flags: FlagLayer, opts: { addresses?: Address[]; source?: AddressSource; cache?: EdgeCache } = {}): { proxy: ProxyServer; url: string; source: AddressSource } {
    const config = this.config(flags)
    let source: AddressSource | undefined = opts.source
    const proxy = new ProxyServer(config, {
      sourceFor: (u) => (source ??= staticSource(opts.addresses ?? [{ address: u.host, family: u.host.includes(':') ? 6 : 4 }])),
      hooks: { onRecord: (r) => this.records.push({ ...r }), cache: opts.cache },
    }).start()
    this.track(() => proxy.close())
    return { proxy, url: proxy.url, source: source! }
  }

  async closeAll(): Promise<void> {
    const cs = this.closers.reverse()
    this.closers = []
    for (const c of cs) {
      try {
        await c()
      } catch {
        // keep closing the rest
      }
    }
  }
}

/** A port free on loopback now (for a config that must name its port, as a reload that moves a listener). */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Polls `fn` until it returns true, at most `timeoutMs`. */
export async function waitFor(fn: () => boolean, timeoutMs = 5000, stepMs = 10): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (fn()) return true
    await Bun.sleep(stepMs)
  }
  return fn()
}

/** A raw loopback client of `port`: everything it receives is collected in `got` (clear() starts it again); closed with the harness. */
export function rawClient(h: Harness, port: number): { s: Socket; got: () => string; closed: () => boolean; clear: () => void } {
  const s = connect(port, '127.0.0.1')
  let got = ''
  let closed = false
  s.on('data', (d) => (got += d.toString('latin1')))
  s.on('close', () => (closed = true))
  s.on('error', () => {})
  h.track(() => void s.destroy())
  return { s, got: () => got, closed: () => closed, clear: () => void (got = '') }
}

/**
 * A loopback client of `port` that reads nothing (paused) with a receive buffer of
 * `receiveBytes`, so a reply waits in the proxy instead of in loopback's buffers of some MiB;
 * what it gets once resumed is collected in `got`. Closed with the harness.
 */
export async function pausedClient(h: Harness, port: number, receiveBytes = 4096): Promise<{ sock: import('bun').Socket<undefined>; got: () => string; closed: () => boolean }> {
  let got = ''
  let closed = false
  const sock = await Bun.connect<undefined>({
    hostname: '127.0.0.1',
    port,
    socket: {
      open(s) {
        setReceiveBuffer(s, receiveBytes)
        s.pause()
      },
      data: (_s, d) => void (got += Buffer.from(d).toString('latin1')),
      close: () => void (closed = true),
      error() {},
    },
  })
  h.track(() => sock.terminate())
  return { sock, got: () => got, closed: () => closed }
}

/**
 * Sends `head` (which should end the exchange: Connection: close, or a request the proxy closes
 * on) to `host`:`port` over a raw socket and returns all that came back until the close; `track`
 * gets what destroys the socket if the test ends first.
 */
export function rawExchange(port: number, head: string, host = '127.0.0.1', track?: (close: () => void) => void): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, host, () => s.write(head))
    track?.(() => void s.destroy())
    let text = ''
    s.on('data', (d) => (text += d.toString('latin1')))
    s.on('error', () => {})
    s.on('close', () => resolve(text))
  })
}
