/**
 * The HTTP listener behind one small interface: Bun.serve on Bun, Deno.serve on Deno. What
 * differs is kept here: the peer address, the per-request idle timer (Bun only), the request-head
 * size limit (Bun only), and stopping. On Bun it serves the admin endpoints; the proxied port
 * there is the own listener (proxy/downstream/http1-listener.ts).
 */
import nodeHttp from 'node:http'
import { httpDateNow } from '../lib/clock.ts'
import { isBun } from './detect.ts'

export interface RequestContext {
  /** The direct peer's IP address. */
  ip: string
  /** Sets the connection's idle timer for this request, in seconds; 0 turns it off. No-op on Deno. */
  setIdleTimeout(seconds: number): void
  /**
   * Keeps the request counted in pendingRequests past the handler's return, until the returned
   * function is called (a streamed body's end) or a forced stop cancels `cut` (called then).
   * Deno only (Bun.serve counts a streaming response itself): elsewhere a no-op.
   */
  holdUntilBodyEnds?(cut: () => void): () => void
}

export interface ListenOptions {
  hostname: string
  port: number
  tls: { cert: string; key: string } | undefined
  /** Connection idle timeout in whole seconds (Bun caps it at 255). */
  idleTimeoutS: number
  /** Largest request body; Number.MAX_SAFE_INTEGER for none. */
  maxRequestBodySize: number
  /**
   * Largest request head (request line and headers), in bytes; 431 beyond. Bun only, and
   * process-wide (see setMaxHeaderBytes); undefined leaves it as it is.
   */
  maxHeaderBytes?: number
  /** SO_REUSEPORT: several processes accept on one port (Linux). */
  reusePort?: boolean
  fetch(req: Request, ctx: RequestContext): Promise<Response> | Response
  onError(err: unknown): void
}

export interface Listener {
  readonly hostname: string
  readonly port: number
  readonly pendingRequests: number
  /** Open client connections, where the listener can count them (the own listener). */
  readonly connections?: number
  /** Open upgrade tunnels (WebSockets), where the listener has them (the own listener). */
  readonly tunnels?: number
  /** Graceful: stop accepting and resolve when open requests are done (the own listener keeps idle connections `idleGraceMs`). Forced: close all now. */
  stop(force: boolean, idleGraceMs?: number): Promise<void>
}

export function listen(opts: ListenOptions): Listener {
  return isBun ? listenBun(opts) : listenDeno(opts)
}

/**
 * Sets the largest request head Bun's HTTP parser accepts (431 beyond). Bun reads this one
 * process-wide value (node:http's maxHeaderSize, settable in Bun, the same as the
 * --max-http-header-size runtime flag) on every request it parses, so it applies at once to
 * listeners already open. A no-op on Deno, whose listener keeps its own limit.
 */
export function setMaxHeaderBytes(bytes: number): void {
  if (isBun) (nodeHttp as { maxHeaderSize: number }).maxHeaderSize = bytes
}

function listenBun(opts: ListenOptions): Listener {
  if (opts.maxHeaderBytes !== undefined) setMaxHeaderBytes(opts.maxHeaderBytes)
  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    tls: opts.tls,
    idleTimeout: opts.idleTimeoutS,
    maxRequestBodySize: opts.maxRequestBodySize,
    reusePort: opts.reusePort ?? false,
    development: false,
    fetch: (req, srv) =>
      opts.fetch(req, {
        ip: srv.requestIP(req)?.address ?? '',
        setIdleTimeout: (s) => srv.timeout(req, s),
      }),
    error(err) {
      opts.onError(err)
      return new Response('500 internal error\n', { status: 500, headers: { date: httpDateNow() } })
    },
  })
  return {
    get hostname() {
      return server.hostname ?? opts.hostname
    },
    get port() {
      return server.port ?? 0
    },
    get pendingRequests() {
      return server.pendingRequests
    },
    stop: (force) => server.stop(force),
  }
}

interface DenoServeInfo {
  remoteAddr: { hostname: string }
}
interface DenoHttpServer {
  addr: { hostname: string; port: number }
  finished: Promise<void>
  shutdown(): Promise<void>
}
interface DenoNs {
  serve(options: Record<string, unknown>, handler: (req: Request, info: DenoServeInfo) => Response | Promise<Response>): DenoHttpServer
}

/** After the runtime's server stops accepting on its own (EMFILE), how long before it listens again. */
const RELISTEN_MS = 1000

function listenDeno(opts: ListenOptions): Listener {
  const Deno = (globalThis as unknown as { Deno: DenoNs }).Deno
  let pending = 0
  let stopped = false
  let shuttingDown = false
  let relisten: ReturnType<typeof setTimeout> | undefined
  const abort = new AbortController()
  // Streamed bodies still being sent: counted (max_concurrent_requests, the drain), and cut at a forced stop.
  const streaming = new Set<() => void>()
  const handler = async (req: Request, info: DenoServeInfo) => {
    pending++
    let held = false
    const holdUntilBodyEnds = (cut: () => void) => {
      held = true
      streaming.add(cut)
      let released = false
      return () => {
        if (released) return
        released = true
        streaming.delete(cut)
        pending--
      }
    }
    try {
      return await opts.fetch(req, { ip: info.remoteAddr.hostname, setIdleTimeout() {}, holdUntilBodyEnds })
    } catch (err) {
      opts.onError(err)
      return new Response('500 internal error\n', { status: 500, headers: { date: httpDateNow() } })
    } finally {
      if (!held) pending--
    }
  }
  // Deno.serve's accept loop ends for good on an accept error such as EMFILE (out of file
  // descriptors: measured with ulimit -n 64 and 100 connections), and its `finished` rejects; left
  // unhandled, that ends the process. The error is logged and the port listened on again.
  const serve = (): DenoHttpServer => {
    const s = Deno.serve(
      {
        hostname: opts.hostname,
        // Listening again: on the port first bound (which port 0 chose).
        port: boundPort ?? opts.port,
        signal: abort.signal,
        reusePort: opts.reusePort ?? false,
        onListen() {},
        // Called for a Response body stream that fails mid-way (the handler itself never throws:
        // it answers 500 above); the client's response is then cut. A failure with a code (an
        // upstream body cut: RESET_MID_BODY) is the request path's, which has recorded it (its
        // access-log line says why); anything else is logged as the listener's error, one line.
        // Without onError, Deno.serve prints every such error with its stack to stderr.
        onError: (err: unknown) => {
          if (typeof (err as { code?: unknown } | null)?.code !== 'string') opts.onError(err)
          return new Response('500 internal error\n', { status: 500, headers: { date: httpDateNow() } })
        },
        ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
      },
      handler,
    )
    s.finished.catch((err) => {
      if (stopped || shuttingDown) return
      opts.onError(new Error(`the listener stopped accepting (${String(err)}); listening again in ${RELISTEN_MS} ms (raise the open-files limit, ulimit -n)`))
      listenAgainLater()
    })
    return s
  }
  // Tried again each RELISTEN_MS while it fails (still out of descriptors, say).
  const listenAgainLater = (): void => {
    relisten = setTimeout(() => {
      relisten = undefined
      if (stopped || shuttingDown) return
      try {
        server = serve()
      } catch (again) {
        opts.onError(again)
        listenAgainLater()
      }
    }, RELISTEN_MS)
  }
  let boundPort: number | undefined
  let server = serve()
  const addr = server.addr
  boundPort = addr.port
  return {
    hostname: addr.hostname,
    port: addr.port,
    get pendingRequests() {
      return pending
    },
    stop: async (force) => {
      if (stopped) return
      clearTimeout(relisten)
      if (force) {
        stopped = true
        // The bodies still streaming are cut, so that their requests end (and are recorded: the
        // drain's DRAIN_TIMEOUT) before the process does.
        for (const cut of [...streaming]) cut()
        // Deno throws (uncaught, "Bad resource ID") when the signal aborts a server whose
        // shutdown() is under way: then what is still running ends with the process.
        if (!shuttingDown) abort.abort()
        return
      }
      shuttingDown = true
      await server.shutdown()
      stopped = true
    },
  }
}

/**
 * Listens on host:port for a moment, without SO_REUSEPORT, and lets go (node:net, on both
 * runtimes): throws what the runtime throws when the address cannot be had (in use, not this
 * machine's); else returns the port (for port 0, the one the kernel chose). For an address a
 * process opens later, or shares, that it must know is free first.
 */
export async function probeListen(host: string, port: number): Promise<number> {
  const { createServer } = await import('node:net')
  const srv = createServer()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen({ host, port, exclusive: true }, () => resolve())
  })
  const chosen = (srv.address() as { port: number }).port
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return chosen
}
