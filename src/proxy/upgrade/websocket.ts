/**
 * WebSocket tunnelling: the client's upgrade is accepted only after the upstream WebSocket
 * (dialled to a pool address, with the original Host and SNI) is open, then messages and close
 * codes flow both ways with backpressure. Plain HTTP requests are in handler.ts.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from 'bun'
import { upstreamRequestHeaders } from '../headers.ts'
import type { UpstreamPool } from '../upstream/pool.ts'
import { errorResponse } from '../status.ts'

export interface TunnelData {
  upstream: WebSocket
  /** Upstream messages that arrived before the client side was open. */
  early: (string | ArrayBuffer | Uint8Array)[]
  clientOpen: boolean
  requestId: string
}

/** Headers the WebSocket client sets itself; the client's own are not forwarded. */
const WS_OWN = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol'])

export function isWebSocketUpgrade(req: Request): boolean {
  const up = req.headers.get('upgrade')
  return up !== null && up.toLowerCase() === 'websocket' && req.method === 'GET'
}

export interface UpgradeContext {
  pool: UpstreamPool
  server: Server<TunnelData>
  clientIp: string
  clientTls: boolean
  requestId: string
  target: string
  trustedPeer: boolean
  ca: string | undefined
  openTimeoutMs: number
}

/** Opens the upstream WebSocket, then upgrades the client. Returns a Response only on failure. */
export async function tunnelWebSocket(req: Request, ctx: UpgradeContext): Promise<Response | undefined> {
  const u = ctx.pool.upstream
  const tried = new Set<string>()
  let lastReason = 'no upstream address available'
  for (let attempt = 0; attempt <= u.retries; attempt++) {
    const state = ctx.pool.pick(tried)
    if (!state) break
    tried.add(state.address)
    const hostPart = state.address.includes(':') ? `[${state.address}]` : state.address
    const url = `${u.scheme === 'https' ? 'wss' : 'ws'}://${hostPart}:${u.port}${ctx.target}`
    const headers = upstreamRequestHeaders(req.headers, {
      clientIp: ctx.clientIp,
      trustedPeer: ctx.trustedPeer,
      proto: ctx.clientTls ? 'https' : 'http',
      clientHost: req.headers.get('host') ?? '',
      hostOverride: u.hostHeader,
      requestId: ctx.requestId,
    }).filter(([n]) => !WS_OWN.has(n))
    const protocols = (req.headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean)
    const upstream = new WebSocket(url, {
      headers,
      protocols,
      perMessageDeflate: false,
      tls: u.scheme === 'https' ? { serverName: u.tlsServerName, ca: ctx.ca, rejectUnauthorized: !u.insecure } : undefined,
    } as Bun.WebSocketOptions)
    upstream.binaryType = 'arraybuffer'
    const data: TunnelData = { upstream, early: [], clientOpen: false, requestId: ctx.requestId }
    const opened = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        upstream.close()
        resolve(false)
      }, ctx.openTimeoutMs)
      upstream.onopen = () => {
        clearTimeout(timer)
        resolve(true)
      }
      upstream.onerror = (ev) => {
        clearTimeout(timer)
        lastReason = `upstream WebSocket failed: ${(ev as ErrorEvent).message ?? 'error'}`
        resolve(false)
      }
      upstream.onclose = () => {
        clearTimeout(timer)
        resolve(false)
      }
    })
    if (!opened) {
      continue
    }
    upstream.onmessage = (ev) => {
      const ws = (upstream as unknown as { clientSide?: ServerWebSocket<TunnelData> }).clientSide
      if (!ws) {
        data.early.push(ev.data as string | ArrayBuffer)
        return
      }
      // Backpressure: stop reading the upstream until the client drains.
      if (ws.send(ev.data as string | ArrayBuffer) === -1) upstream.pause()
    }
    upstream.onclose = (ev) => {
      const ws = (upstream as unknown as { clientSide?: ServerWebSocket<TunnelData> }).clientSide
      if (ws) closeWith(ws, ev.code, ev.reason)
    }
    const responseHeaders: Record<string, string> = { 'x-request-id': ctx.requestId }
    if (upstream.protocol) responseHeaders['sec-websocket-protocol'] = upstream.protocol
    if (ctx.server.upgrade(req, { data, headers: responseHeaders })) return undefined
    upstream.close(1011, 'client upgrade failed')
    return errorResponse(400, 'WebSocket upgrade failed', ctx.requestId)
  }
  return errorResponse(502, lastReason, ctx.requestId)
}

/** Close codes a peer may send (RFC 6455 §7.4); others (1005, 1006, 1015) become a plain close or 1014. */
function sendableCode(code: number): number | undefined {
  if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)) return code
  return undefined
}

function closeWith(target: { close(code?: number, reason?: string): void }, code: number, reason: string): void {
  const c = sendableCode(code)
  try {
    if (c !== undefined) target.close(c, reason)
    else if (code === 1005) target.close()
    else target.close(1014, 'upstream connection lost') // 1006 abnormal closure upstream -> Bad Gateway
  } catch {
    // already closing
  }
}

export const tunnelHandlers: WebSocketHandler<TunnelData> = {
  open(ws) {
    const d = ws.data
    ;(d.upstream as unknown as { clientSide?: ServerWebSocket<TunnelData> }).clientSide = ws
    d.clientOpen = true
    for (const m of d.early.splice(0)) ws.send(m)
    if (d.upstream.readyState !== WebSocket.OPEN) closeWith(ws, 1006, '')
  },
  message(ws, message) {
    const up = ws.data.upstream
    if (up.readyState !== WebSocket.OPEN) return
    up.send(message)
    // Backpressure the client while the upstream's send buffer is deep.
    if (up.bufferedAmount > 1024 * 1024) {
      ws.pause()
      const check = setInterval(() => {
        if (up.readyState !== WebSocket.OPEN || up.bufferedAmount < 256 * 1024) {
          clearInterval(check)
          ws.resume()
        }
      }, 10)
    }
  },
  drain(ws) {
    ws.data.upstream.resume()
  },
  close(ws, code, reason) {
    const up = ws.data.upstream
    if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) closeWith(up, code, reason)
  },
  // The tunnel passes bytes as they are: no compression, no idle cut (the peers ping if they want).
  perMessageDeflate: false,
  idleTimeout: 0,
  sendPings: false,
  maxPayloadLength: 64 * 1024 * 1024,
  backpressureLimit: 4 * 1024 * 1024,
}
