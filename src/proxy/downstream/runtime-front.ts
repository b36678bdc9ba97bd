/**
 * The runtime's own HTTP server as the client side, where the own listener cannot run (Deno:
 * Deno.serve, through runtime/listener.ts). Requests are checked (request-checks.ts), admitted and
 * served by the same request path as the own listener's, as ProxyRequest / ProxyReply values.
 * What this front cannot do is in the README: WebSockets are relayed message by message, other
 * upgrades are refused (501), and the runtime keeps its own head limits and timers.
 */
import { listen, type Listener } from '../../runtime/listener.ts'
import type { ResolvedConfig } from '../../config/schema.ts'
import type { ClientInfo, ProxyHandler } from '../handler.ts'
import type { FailureCode } from '../errors.ts'
import { fromRequest, toResponse } from '../message.ts'
import { isDeno } from '../../runtime/detect.ts'
import { checkRequest } from './request-checks.ts'
import { serveRuntimeWebSocket } from './runtime-websocket.ts'

export interface RuntimeFrontOptions {
  tls: { cert: string; key: string } | undefined
  reusePort: boolean
  /** The current generation's request path (it changes on reload). */
  handler(): ProxyHandler
  onRefused(code: FailureCode, detail: string, ip: string): void
  onError(err: unknown): void
}

export function listenRuntimeFront(config: ResolvedConfig, opts: RuntimeFrontOptions): Listener {
  const cfg = config.server
  const keepaliveS = Math.min(255, Math.max(1, Math.ceil(cfg.keepaliveTimeoutMs / 1000)))
  return listen({
    hostname: cfg.listen.host,
    port: cfg.listen.port,
    tls: opts.tls,
    idleTimeoutS: keepaliveS,
    maxRequestBodySize: cfg.maxBodyBytes > 0 ? cfg.maxBodyBytes : Number.MAX_SAFE_INTEGER,
    maxHeaderBytes: cfg.maxHeaderBytes,
    reusePort: opts.reusePort,
    onError: opts.onError,
    fetch: (req, ctx) => {
      const handler = opts.handler()
      const client: ClientInfo = { ip: ctx.ip, tls: opts.tls !== undefined }
      // Deno.serve cannot hand over the raw connection: a WebSocket is relayed message by message
      // (runtime-websocket.ts); any other upgrade is refused, never forwarded as a plain request
      // with its Upgrade headers stripped.
      const up = req.headers.get('upgrade')
      const upgrading = up !== null && /\bupgrade\b/i.test(req.headers.get('connection') ?? '')
      if (upgrading && (up.toLowerCase() !== 'websocket' || !isDeno)) {
        const detail = `protocol upgrade (${up}) is not supported on this runtime; run the Bun build for tunnels of any protocol`
        opts.onRefused('NOT_IMPLEMENTED', detail, ctx.ip)
        return toResponse(handler.refusal('NOT_IMPLEMENTED', detail, client, fromRequest(req), true))
      }
      const rejected = checkRequest(req)
      if (rejected) {
        opts.onRefused(rejected.code, rejected.reason, ctx.ip)
        return toResponse(handler.refusal(rejected.code, rejected.reason, client, fromRequest(req), true))
      }
      if (upgrading) return serveRuntimeWebSocket(req, fromRequest(req), handler, client, ctx.ip)
      // The runtime's idle timer would cut a silent stream: off while the request is served.
      ctx.setIdleTimeout(0)
      client.onDone = () => {
        try {
          ctx.setIdleTimeout(keepaliveS)
        } catch {
          // the client connection is already gone
        }
      }
      const request = fromRequest(req)
      // Deno.serve hands a request of any method but GET/HEAD an empty body stream even when it
      // had no framing headers (measured: PURGE and DELETE); forwarded as is, the upstream would
      // get "Content-Length: 0" the client never sent. No framing headers means no body
      // (RFC 9112 §6.3, rule 7).
      if (request.body !== null && req.headers.get('content-length') === null && req.headers.get('transfer-encoding') === null) request.body = null
      return handler.handle(request, client).then(toResponse)
    },
  })
}
