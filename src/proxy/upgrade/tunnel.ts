/**
 * Protocol upgrades on the proxy's own listener (WebSocket and any other Upgrade): the request
 * head goes to a fresh connection to one pool address, with the usual forwarding headers; a
 * 101 answer turns both connections into a byte tunnel with backpressure each way; any other
 * answer is relayed to its end and both connections close (the client cannot go on talking to
 * the upstream unchecked). The Bun.serve listener's WebSocket path is websocket.ts.
 */
import { Buffer } from 'node:buffer'
import { NOOP_HANDLERS, type Conn, type ConnHandlers } from '../../runtime/socket.ts'
import { upstreamRequestHeaders } from '../headers.ts'
import { plainReply } from '../downstream/http1-listener.ts'
import type { ProxyRequest } from '../message.ts'
import type { UpstreamPool } from '../upstream/pool.ts'
import { ChunkedDecoder } from '../../http1/chunked.ts'
import { parseResponseHead, type ResponseHead } from '../../http1/response-head.ts'

export interface TunnelContext {
  pool: UpstreamPool
  /** The Upgrade header's value, sent on as it came. */
  upgrade: string
  clientIp: string
  clientTls: boolean
  trustedPeer: boolean
  requestId: string
  /** Connect plus response-head time allowed per attempt. */
  openTimeoutMs: number
  /** Called once when the upgrade is over: the tunnel closed, the refusal was relayed, or it failed. */
  onEnd?: (end: TunnelEnd) => void
}

/** How one upgrade ended, for the access log. */
export interface TunnelEnd {
  /** 101 for a tunnel; the upstream's status for a refused upgrade; 502 when no upstream answered. */
  status: number
  /** Bytes from the client after its request head. */
  bytesIn: number
  /** Bytes to the client after the response head. */
  bytesOut: number
  /** The address tried last, as ip:port (the access log's upstream_addr). */
  upstreamAddr: string | undefined
  attempts: number
  error?: string
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
const MAX_HEAD_BYTES = 64 * 1024
/** Client bytes held while the upstream has not answered the upgrade yet. */
const MAX_HELD_BYTES = 64 * 1024

/** Runs one upgrade to its end. `client` is the listener's connection, already taken over. */
export async function tunnelUpgrade(req: ProxyRequest, client: Conn, early: Uint8Array, ctx: TunnelContext): Promise<void> {
  // Hold what the client sends until the upstream has answered; past MAX_HELD_BYTES, stop
  // reading the client (a client cannot make the proxy buffer without bound).
  const held: Uint8Array[] = early.byteLength > 0 ? [early] : []
  let heldBytes = early.byteLength
  let clientGone = false
  client.handlers = {
    data: (c) => {
      held.push(c)
      heldBytes += c.byteLength
      if (heldBytes > MAX_HELD_BYTES) client.pause()
    },
    drain() {},
    close: () => {
      clientGone = true
    },
  }
  const u = ctx.pool.upstream
  const headers = upstreamRequestHeaders(req.headers, {
    clientIp: ctx.clientIp,
    trustedPeer: ctx.trustedPeer,
    proto: ctx.clientTls ? 'https' : 'http',
    clientHost: req.headers.get('host') ?? u.host,
    hostOverride: u.hostHeader,
    requestId: ctx.requestId,
  })
  let headText = `${req.method} ${req.target} HTTP/1.1\r\n`
  for (const [n, v] of headers) headText += `${n}: ${v}\r\n`
  const head = Buffer.from(`${headText}connection: upgrade\r\nupgrade: ${ctx.upgrade}\r\n\r\n`, 'latin1')

  let ended = false
  const end = (e: TunnelEnd) => {
    if (ended) return
    ended = true
    ctx.onEnd?.(e)
  }
  const tried = new Set<string>()
  let lastReason = 'no upstream address available'
  let lastAddr: string | undefined
  const clientLeft = () => end({ status: 499, bytesIn: 0, bytesOut: 0, upstreamAddr: lastAddr, attempts: tried.size, error: 'CLIENT_GONE' })
  for (let attempt = 0; attempt <= u.retries && !clientGone; attempt++) {
    const state = ctx.pool.pick(tried)
    if (!state) break
    tried.add(state.address)
    lastAddr = state.label
    let upstream: Conn
    try {
      upstream = await ctx.pool.dialDetached(state)
    } catch (err) {
      lastReason = `could not connect to upstream: ${(err as Error).message}`
      continue
    }
    if (clientGone) {
      upstream.destroy()
      return clientLeft()
    }
    const answered = await readHead(upstream, head, req.method, ctx.openTimeoutMs)
    if ('error' in answered) {
      upstream.destroy()
      lastReason = answered.error
      if (answered.sent) break // the upstream may have acted on it: do not send it again
      continue
    }
    if (clientGone) {
      upstream.destroy()
      return clientLeft()
    }
    const counts = { bytesIn: 0, bytesOut: 0 }
    const finish = () => end({ status: answered.head.status, ...counts, upstreamAddr: lastAddr, attempts: tried.size })
    if (answered.head.status === 101) {
      // The head and whatever came with it (the upstream may speak first, as soon as it switched).
      client.write(answered.rest.length > 0 ? Buffer.concat([answered.raw, answered.rest]) : answered.raw)
      counts.bytesOut = answered.rest.length
      for (const c of held.splice(0)) {
        counts.bytesIn += c.byteLength
        upstream.write(c)
      }
      pipeBoth(client, upstream, counts, finish)
      client.resume()
      return
    }
    // Refused (401, 403, 426, ...): relay that answer, then close both.
    relayThenClose(upstream, client, answered.raw, answered.head, answered.rest, counts, finish)
    return
  }
  if (clientGone) return clientLeft()
  end({ status: 502, bytesIn: 0, bytesOut: 0, upstreamAddr: lastAddr, attempts: tried.size, error: 'UPGRADE_FAILED' })
  client.write(plainReply(502, `${lastReason} (request id ${ctx.requestId})`, [['x-request-id', ctx.requestId]]))
  client.end()
}

type HeadResult = { head: ResponseHead; raw: Buffer; rest: Buffer } | { error: string; sent: boolean }

/** Sends the request head and reads the upstream's response head, within `timeoutMs`. */
function readHead(upstream: Conn, requestHead: Buffer, method: string, timeoutMs: number): Promise<HeadResult> {
  return new Promise<HeadResult>((resolve) => {
    let buf: Buffer | null = null
    let settled = false
    const settle = (r: HeadResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      upstream.handlers = NOOP_HANDLERS
      resolve(r)
    }
    const timer = setTimeout(() => settle({ error: `upstream did not answer the upgrade within ${timeoutMs}ms`, sent: true }), timeoutMs)
    upstream.handlers = {
      data(chunk) {
        buf = buf ? Buffer.concat([buf, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        const end = buf.indexOf(CRLFCRLF)
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) settle({ error: 'upstream response head too large', sent: true })
          return
        }
        try {
          const head = parseResponseHead(buf.toString('latin1', 0, end), method)
          settle({ head, raw: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) })
        } catch (err) {
          settle({ error: `upstream sent an invalid response: ${(err as Error).message}`, sent: true })
        }
      },
      drain() {},
      close() {
        settle({ error: 'upstream closed the connection without answering the upgrade', sent: buf !== null })
      },
    }
    upstream.write(requestHead)
  })
}

/**
 * Joins the client and the upstream into a byte tunnel: each side's data goes to the other, a
 * full side pauses its source until it drains, and a close ends the other side (then `onClose`).
 */
function pipeBoth(client: Conn, upstream: Conn, counts: { bytesIn: number; bytesOut: number }, onClose: () => void): void {
  // Handlers of `from`: its data goes to `to`; its drain (its own queue sent) lets `to` read again.
  const relay = (from: Conn, to: Conn, count: (n: number) => void): ConnHandlers => ({
    data: (c) => {
      count(c.byteLength)
      if (!to.write(c)) from.pause()
    },
    drain: () => to.resume(),
    close: () => {
      to.end()
      onClose()
    },
  })
  client.handlers = relay(client, upstream, (n) => (counts.bytesIn += n))
  upstream.handlers = relay(upstream, client, (n) => (counts.bytesOut += n))
}

/** Relays a non-101 answer (its head, then its body by its framing) and closes both sides. */
function relayThenClose(upstream: Conn, client: Conn, raw: Buffer, head: ResponseHead, rest: Buffer, counts: { bytesOut: number }, onDone: () => void): void {
  let over = false
  /** `complete`: the answer was relayed whole (the client's connection ends cleanly); otherwise it is cut. */
  const finish = (complete: boolean) => {
    if (over) return
    over = true
    upstream.handlers = NOOP_HANDLERS
    client.handlers = NOOP_HANDLERS
    upstream.destroy()
    if (complete) client.end()
    else client.destroy()
    onDone()
  }
  client.write(raw)
  const f = head.framing
  if (f.kind === 'none') return finish(true)
  let remaining = f.kind === 'length' ? f.length : Infinity
  const decoder = f.kind === 'chunked' ? new ChunkedDecoder() : undefined
  const onBody = (chunk: Uint8Array) => {
    let take: number
    if (decoder) {
      try {
        take = decoder.feed(chunk, () => {})
      } catch {
        return finish(false)
      }
    } else {
      take = Math.min(remaining, chunk.byteLength)
      remaining -= take
    }
    counts.bytesOut += take
    if (!client.write(chunk.subarray(0, take))) upstream.pause()
    if (decoder ? decoder.done : remaining === 0) finish(true)
  }
  upstream.handlers = {
    data: onBody,
    drain() {},
    // A close-delimited answer ends here; any other that ends early is cut for the client too.
    close: () => finish(f.kind === 'close'),
  }
  client.handlers = {
    data() {},
    drain: () => upstream.resume(),
    close: () => finish(false),
  }
  if (rest.length > 0) onBody(rest)
}
