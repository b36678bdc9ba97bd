/**
 * The runtime's own HTTP server as the client side, where the own listener cannot run (Deno:
 * Deno.serve, through runtime/listener.ts). Requests are checked (request-checks.ts), admitted and
 * served by the same request path as the own listener's, as ProxyRequest / ProxyReply values.
 * What this front cannot do is in the README: WebSockets are relayed message by message, other
 * upgrades are refused (501), and the runtime keeps its own head limits and timers.
 */
import { isProtocolList } from '../../http1/chars.ts'
import { listen, type Listener, type RequestContext } from '../../runtime/listener.ts'
import type { ResolvedConfig } from '../../config/schema.ts'
import type { ClientInfo, ProxyHandler } from '../handler.ts'
import type { FailureCode } from '../errors.ts'
import { clientAddress } from '../headers.ts'
import { fromRequest, toResponse, type ProxyReply } from '../message.ts'
import { isDeno } from '../../runtime/detect.ts'
import { httpDateNow } from '../../lib/clock.ts'
import { checkRequest } from './request-checks.ts'
import { handshakeProblem, serveRuntimeWebSocket } from './runtime-websocket.ts'

export interface RuntimeFrontOptions {
  tls: { cert: string; key: string } | undefined
  reusePort: boolean
  /** The current generation's request path (it changes on reload). */
  handler(): ProxyHandler
  onRefused(code: FailureCode, detail: string, ip: string): void
  onError(err: unknown): void
}

/** What a reload may change in place on this front: the head limit it checks. */
type FrontLimits = Pick<ResolvedConfig['server'], 'maxHeaderBytes'>

export function listenRuntimeFront(config: ResolvedConfig, opts: RuntimeFrontOptions): Listener & { update?(limits: FrontLimits): void } {
  const cfg = config.server
  const keepaliveS = Math.min(255, Math.max(1, Math.ceil(cfg.keepaliveTimeoutMs / 1000)))
  let maxHeaderBytes = cfg.maxHeaderBytes
  const listener: Listener & { update?(limits: FrontLimits): void } = listen({
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
      const head = req.method === 'HEAD'
      // Every reply, the front's own refusals too, in the shape Deno.serve must be given it.
      const answer = (reply: ProxyReply) => respond(head ? headReply(reply) : reply, ctx.holdUntilBodyEnds)
      const client: ClientInfo = { ip: clientAddress(ctx.ip), tls: opts.tls !== undefined, maxStatus: 599 }
      // Deno.serve cannot hand over the raw connection: a WebSocket is relayed message by message
      // (runtime-websocket.ts); any other upgrade is refused, never forwarded as a plain request
      // with its Upgrade headers stripped. An Upgrade that names no valid protocol is no request
      // to switch (RFC 9110 §7.8; as on the own listener): served as a plain request.
      const up = req.headers.get('upgrade')
      const upgrading = up !== null && isProtocolList(up) && /\bupgrade\b/i.test(req.headers.get('connection') ?? '')
      if (upgrading && (up.toLowerCase() !== 'websocket' || !isDeno)) {
        const detail = `protocol upgrade (${up}) is not supported on this runtime; run the Bun build for tunnels of any protocol`
        opts.onRefused('NOT_IMPLEMENTED', detail, client.ip)
        return answer(handler.refusal('NOT_IMPLEMENTED', detail, client, fromRequest(req), true))
      }
      const rejected = checkRequest(req, maxHeaderBytes)
      if (rejected) {
        opts.onRefused(rejected.code, rejected.reason, client.ip)
        return answer(handler.refusal(rejected.code, rejected.reason, client, fromRequest(req), true))
      }
      if (upgrading) {
        const problem = handshakeProblem(req.headers)
        if (problem) {
          opts.onRefused('BAD_REQUEST', problem, client.ip)
          return answer(handler.refusal('BAD_REQUEST', problem, client, fromRequest(req), true))
        }
        return serveRuntimeWebSocket(req, fromRequest(req), handler, client, client.ip)
      }
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
      if (request.body instanceof ReadableStream && req.headers.get('content-length') === null && req.headers.get('transfer-encoding') === null) {
        return bodyOrNone(request.body).then((body) => {
          request.body = body
          return handler.handle(request, client).then(answer)
        })
      }
      return handler.handle(request, client).then(answer)
    },
  })
  // Deno.serve takes none of the limits and timeouts a reload may change (body limits are the
  // request path's; it has no keep-alive timeout at all), so they change in place: the head limit
  // this front checks. A new server on the same port is opened only for a new address or certificate.
  if (isDeno) listener.update = (limits) => void (maxHeaderBytes = limits.maxHeaderBytes)
  return listener
}

/**
 * A reply to HEAD as Deno.serve must be given it. Without Content-Length (its GET would be chunked or
 * read to the close): an empty stream for body, since Deno.serve gives a null body "content-length:
 * 0", which says the GET's content is empty (RFC 9110 §8.6: a HEAD's Content-Length must be the GET's),
 * and a stream none. The proxy's own answer (a text body): its length, and no body, which Deno.serve
 * sent over HTTP/2 as DATA (RFC 9110 §9.3.2: no content in an answer to HEAD; clients reset the
 * stream with PROTOCOL_ERROR: second opinion, seventeenth round).
 */
function headReply(reply: ProxyReply): ProxyReply {
  const body = reply.body
  if (body instanceof ReadableStream || body === '') return reply
  const sized = reply.headers.some(([n]) => n.length === 14 && n.toLowerCase() === 'content-length')
  if (body !== null) {
    reply.body = null
    if (!sized) reply.headers = [...reply.headers, ['content-length', String(typeof body === 'string' ? new TextEncoder().encode(body).byteLength : body.byteLength)]]
  } else if (!sized) reply.body = new ReadableStream<Uint8Array>({ start: (ctrl) => ctrl.close() })
  return reply
}

/**
 * The Response of a reply. A streamed body keeps its request counted until it ends or is
 * cancelled (`hold`, Deno: Deno.serve's handler returns at the head): max_concurrent_requests
 * counts a streaming response until it ends, as on Bun, and the drain waits for it.
 */
function respond(reply: ProxyReply, hold: RequestContext['holdUntilBodyEnds']): Response {
  // A reply without Date gets one (RFC 9110 §6.6.1), from the wall clock now: Deno.serve's own is
  // a string it renews only once the clock passes its next second, so a step back froze it for
  // the length of the step (second opinion, twenty-second round).
  if (!reply.headers.some(([n]) => n.length === 4 && n.toLowerCase() === 'date')) reply.headers = [...reply.headers, ['date', httpDateNow()]]
  const body = reply.body
  if (hold && body instanceof ReadableStream) {
    const reader = body.getReader()
    let release: () => void = () => {}
    let ended = false
    let ctrlOf: ReadableStreamDefaultController<Uint8Array> | undefined
    const end = () => {
      if (ended) return
      ended = true
      release()
    }
    reply.body = new ReadableStream<Uint8Array>(
      {
        start(ctrl) {
          ctrlOf = ctrl
        },
        async pull(ctrl) {
          let r: Awaited<ReturnType<typeof reader.read>>
          try {
            r = await reader.read()
          } catch (err) {
            end()
            return ctrl.error(err)
          }
          if (ended) return
          if (r.done) {
            end()
            ctrl.close()
          } else ctrl.enqueue(r.value)
        },
        cancel(reason) {
          end()
          return reader.cancel(reason)
        },
      },
      { highWaterMark: 0 },
    )
    let response: Response
    try {
      response = toResponse(reply)
    } catch (err) {
      // No Response: the listener answers 500 and counts the request out itself (nothing held).
      reader.cancel(err).catch(() => {})
      throw err
    }
    // A status with no content: the body was cancelled, not sent; nothing to hold.
    if (ended) return response
    // A forced stop: the client's body is cut (an error, not an end that looks whole), and the
    // upstream's cancelled, so the request path records it before the process ends.
    release = hold(() => {
      const err = Object.assign(new Error('the listener stopped (drain_timeout)'), { code: 'DRAIN_TIMEOUT' })
      end()
      try {
        ctrlOf?.error(err)
      } catch {
        // already closed
      }
      reader.cancel(err).catch(() => {})
    })
    return response
  }
  return toResponse(reply)
}

/**
 * A body without framing headers, which may be none: Deno.serve hands an HTTP/1.1 request of any
 * method but GET/HEAD an empty stream even when it had no framing headers (measured: PURGE and
 * DELETE), and an HTTP/2 request its DATA frames, which need no Content-Length (RFC 9113 §8.1).
 * The first read tells them apart: nothing means no body (RFC 9112 §6.3 rule 7; not the
 * "Content-Length: 0" the client never sent), bytes go on as a stream read as the upstream takes
 * them.
 */
async function bodyOrNone(body: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array> | null> {
  const reader = body.getReader()
  let first = await reader.read()
  // Deno.serve's empty stream gives one empty chunk before its end (measured with PURGE).
  for (let empties = 0; !first.done && first.value.byteLength === 0 && empties < 16; empties++) first = await reader.read()
  if (first.done) {
    reader.releaseLock()
    return null
  }
  let held: Uint8Array | undefined = first.value
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (held !== undefined) {
          controller.enqueue(held)
          held = undefined
          return
        }
        const next = await reader.read()
        if (next.done) controller.close()
        else controller.enqueue(next.value)
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
}
