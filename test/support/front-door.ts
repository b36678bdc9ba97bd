/**
 * The front-door behaviours of issue 14, as probes a test runs against any front (the own
 * listener on Bun, Deno.serve on Deno): each sends raw bytes on one loopback connection and
 * returns what the client got and what the raw origin saw, so each test file asserts its own
 * front's measured behaviour. Every probe is bounded by a deadline and closes its socket.
 */
import { connect } from 'node:net'
import type { RawOrigin, RawRequest } from './raw-origin.ts'

export interface Exchange {
  /** Everything the client received, latin1. */
  reply: string
  /** The status codes of the responses in `reply`, in order. */
  statuses: number[]
  /** What reached the origin during this exchange. */
  seen: RawRequest[]
}

/** Sends `raw` in one write and reads until the proxy closes, `until(reply)` holds, or `deadlineMs` passes. */
export function exchange(port: number, origin: RawOrigin, raw: string, opts: { until?: (reply: string) => boolean; deadlineMs?: number } = {}): Promise<Exchange> {
  const before = origin.requests.length
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let reply = ''
    let settled = false
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(poll)
      s.destroy()
      // Give the origin a moment to record what the proxy forwarded last.
      setTimeout(() => resolve({ reply, statuses: statusesOf(reply), seen: origin.requests.slice(before) }), 100)
    }
    const timer = setTimeout(finish, opts.deadlineMs ?? 3000)
    // `until` may depend on the origin's side too: checked on each read and every 20 ms.
    const poll = setInterval(() => opts.until?.(reply) && finish(), 20)
    s.once('close', () => clearInterval(poll))
    s.on('data', (d) => {
      reply += d.toString('latin1')
      if (opts.until?.(reply)) finish()
    })
    s.on('close', finish)
    s.on('error', finish)
    s.write(raw, 'latin1')
  })
}

function statusesOf(reply: string): number[] {
  return [...reply.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]))
}

const H = 'Host: front.test\r\n'

/** Three GETs in one write; the last asks to close. */
export const pipelined = (port: number, origin: RawOrigin) =>
  exchange(port, origin, `GET /p1 HTTP/1.1\r\n${H}\r\nGET /p2 HTTP/1.1\r\n${H}\r\nGET /p3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)

/** One request with `target`, closing after the answer; HTTP/1.0 without Host when `http10`. */
export const target = (port: number, origin: RawOrigin, path: string, http10 = false) =>
  exchange(port, origin, http10 ? `GET ${path} HTTP/1.0\r\n\r\n` : `GET ${path} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)

/** A GET with a 5-byte Content-Length body, then a pipelined GET. */
export const getWithBody = (port: number, origin: RawOrigin) =>
  exchange(port, origin, `GET /gb HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)

/** A valid token method the proxy has no special case for. */
export const method = (port: number, origin: RawOrigin, name: string) => exchange(port, origin, `${name} /m HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)

/** A masked WebSocket text frame "hello" (RFC 6455 §5.2, §5.3). */
export const WS_FRAME = (() => {
  const mask = [0x37, 0xfa, 0x21, 0x3d]
  const payload = [...'hello'].map((c, i) => c.charCodeAt(0) ^ mask[i % 4]!)
  return String.fromCharCode(0x81, 0x80 | 5, ...mask, ...payload)
})()

/** A WebSocket upgrade with the client's first frame in the same write. */
export const upgradeWithFrame = (port: number, origin: RawOrigin) =>
  exchange(
    port,
    origin,
    `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n${WS_FRAME}`,
    { until: () => origin.requests.at(-1)?.tunnel === WS_FRAME, deadlineMs: 3000 },
  )
