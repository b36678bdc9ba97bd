/**
 * WebSocket through the runtime front (Deno.serve), which cannot hand over the client's raw
 * connection: the upgrade goes through the same request path and tunnel as on the own listener
 * (handler.upgrade, upgrade/tunnel.ts), with this bridge standing in for the client's
 * connection. The tunnel writes the upstream's answer to the bridge: a 101 makes the bridge
 * upgrade the client with the runtime's call (runtime/websocket-upgrade.ts, same subprotocol)
 * and relay messages each way (upstream frames decoded, client messages encoded as masked
 * frames, RFC 6455 §5), the 101's own fields (not the handshake's) added to the runtime's; any
 * other answer becomes the client's Response. Interim (1xx) answers before it are dropped: the
 * runtime's server cannot send one. Extensions are not offered upstream (the runtime's socket
 * speaks plain frames to the client). Backpressure: toward the client by the socket's
 * bufferedAmount; from the client, messages arriving while the upstream is full are held up to
 * MAX_HELD_BYTES, then the socket is closed with 1013.
 */
import { ChunkedDecoder } from '../../http1/chunked.ts'
import { Buffer } from 'node:buffer'
import { HeadReader } from '../../http1/head-reader.ts'
import { MAX_INTERIM_HEADS, parseResponseHeadBytes } from '../../http1/response-head.ts'
import { concatBytes } from '../../lib/bytes.ts'
import { NOOP_HANDLERS, type Conn, type ConnHandlers, type ConnTimings } from '../../runtime/socket.ts'
import { upgradeWebSocket } from '../../runtime/websocket-upgrade.ts'
import type { ClientInfo, ProxyHandler } from '../handler.ts'
import { clientResponseHeaders } from '../headers.ts'
import type { HeaderReader, ProxyRequest } from '../message.ts'
import { closePayload, encodeMaskedFrame, FrameError, FrameReader, OPCODE } from '../upgrade/ws-frames.ts'

/** Largest upstream message relayed (a longer one closes both sides with 1009). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** Client bytes held while the upstream connection is full. */
const MAX_HELD_BYTES = 1024 * 1024
/** Bytes queued toward the client above which the upstream is paused. */
const CLIENT_HIGH_WATER_BYTES = 1024 * 1024
/** Largest refusal answer turned into a Response (it is read whole). */
const MAX_ANSWER_BYTES = 1024 * 1024

/** A 101 (the subprotocol it chose, and its fields the client is given) or any other answer. */
type Outcome = { kind: 'switched'; protocol: string | undefined; fields: [string, string][] } | { kind: 'answer'; response: Response }

/** Text messages must be UTF-8 (RFC 6455 §5.6). */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Fields of the 101 the runtime's own upgrade writes (the handshake, its Date), or that it does not speak (extensions). */
const HANDSHAKE_FIELDS = new Set(['sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions', 'date'])

/** Serves a WebSocket upgrade request on the runtime front; resolves with the client's Response. */
export async function serveRuntimeWebSocket(req: Request, request: ProxyRequest, handler: ProxyHandler, client: ClientInfo, ip: string): Promise<Response> {
  const bridge = new WebSocketBridge(ip)
  const headers = withoutExtensions(request.headers)
  const upgrade: ProxyRequest = { ...request, headers, body: null }
  // A client that leaves before the upstream's answer: the upgrade is given up (its upstream
  // connection closed) rather than switched for no one (a socket in CLOSE-WAIT for ever).
  const leave = () => bridge.destroy()
  req.signal.addEventListener('abort', leave, { once: true })
  handler.upgrade(upgrade, 'websocket', client, bridge, new Uint8Array(0))
  // The request path gave the request its id (route phase): a relayed refusal carries it.
  bridge.requestId = upgrade.id ?? ''
  const outcome = await bridge.outcome
  req.signal.removeEventListener('abort', leave)
  if (outcome.kind === 'answer') return outcome.response
  if (req.signal.aborted) {
    bridge.destroy()
    return new Response(null, { status: 499 })
  }
  const up = upgradeWebSocket(req, outcome.protocol)
  if (!up) {
    bridge.destroy()
    return new Response('501 WebSocket upgrades are not supported on this runtime\n', { status: 501 })
  }
  // The upstream's own fields on its 101 (a sticky-session cookie, say) go on, as the own listener's
  // tunnel sends them; the runtime writes the handshake's. One the runtime refuses is left out.
  for (const [name, value] of outcome.fields) {
    try {
      up.response.headers.append(name, value)
    } catch {
      // not a field value the runtime's Headers takes
    }
  }
  bridge.attach(up.socket)
  return up.response
}

/**
 * What is wrong with a WebSocket handshake the runtime would refuse once the upstream had
 * switched (RFC 6455 §4.2.1: a key of 16 bytes in base64, version 13), or undefined: refused
 * before it goes upstream (the switched upstream connection was left open for a client that got
 * a 500, until idle_timeout).
 */
export function handshakeProblem(headers: HeaderReader): string | undefined {
  const key = headers.get('sec-websocket-key')
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim()) || headers.get('sec-websocket-version')?.trim() !== '13') {
    return 'a WebSocket handshake needs Sec-WebSocket-Key (16 bytes, base64) and Sec-WebSocket-Version: 13 (RFC 6455 §4.2.1)'
  }
  return undefined
}

/** Whether a head's status line ("HTTP/1.1 103") is an interim answer other than the 101. */
function isInterim(statusLine: string): boolean {
  const status = Number(statusLine.slice(9))
  return status >= 100 && status < 200 && status !== 101
}

/** The request's headers without Sec-WebSocket-Extensions: frames must reach us uncompressed. */
function withoutExtensions(h: HeaderReader): HeaderReader {
  return {
    get: (name) => (name === 'sec-websocket-extensions' ? null : h.get(name)),
    forEach: (fn) => h.forEach((v, n) => n !== 'sec-websocket-extensions' && fn(v, n)),
  }
}

class WebSocketBridge implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  readonly createdAtMonoMs = performance.now()
  readonly timings: ConnTimings
  readonly outcome: Promise<Outcome>
  private settle!: (o: Outcome) => void
  private settled = false
  /** The answer's bytes until its head is read (then the refusal's body, if it is not a 101). */
  private readonly answer = new HeadReader()
  requestId = ''
  private switched = false
  private readonly frames = new FrameReader(MAX_MESSAGE_BYTES)
  private fragments: Uint8Array[] = []
  /** The payload bytes in `fragments`: a message is bounded in all, not only frame by frame. */
  private fragmentBytes = 0
  private fragmentOpcode = 0
  private socket: WebSocket | undefined
  /** Messages for the client before its socket is open, and a close the upstream sent by then (its code and reason go on, on open). */
  private pendingToClient: (string | Uint8Array)[] = []
  private pendingClose: { code: number | undefined; reason: string } | undefined
  private paused = false
  private held: Uint8Array[] = []
  private heldBytes = 0
  private drainTimer: ReturnType<typeof setInterval> | undefined

  constructor(readonly remoteAddress: string) {
    const now = performance.now()
    this.timings = { startAt: now, connectAt: now, tlsAt: undefined }
    this.outcome = new Promise((resolve) => (this.settle = resolve))
  }

  /** Bytes from the tunnel: the upstream's answer head, then (after a 101) its frames. */
  write(data: Uint8Array | string): boolean {
    if (this.closed) return true
    const bytes = typeof data === 'string' ? Uint8Array.from(data, (c) => c.charCodeAt(0)) : data
    if (this.switched) return this.relayFrames(bytes)
    this.answer.append(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    if (this.answer.size > MAX_ANSWER_BYTES) {
      this.destroy()
      return true
    }
    if (this.settled) return true
    let end = this.answer.findEnd()
    // Interim answers before the final one (a 103, a 100: RFC 9110 §7.8, §15.2) are dropped: the
    // runtime's server has no way to send a 1xx. Read as the answer, they hid the 101 behind them.
    // The tunnel bounds them per upgrade (MAX_INTERIM_HEADS in all, one a write); `n` only bounds this loop.
    for (let n = 0; end >= 0 && isInterim(this.answer.text(12)) && n <= MAX_INTERIM_HEADS; n++) {
      this.answer.consume(end + 4)
      end = this.answer.findEnd()
    }
    if (end < 0) return true
    if (Number(this.answer.text(12).slice(9)) === 101) {
      const head = parseResponseHeadBytes(this.answer.buffer, end, 'GET')
      const protocol = head.headers.find(([n]) => n.toLowerCase() === 'sec-websocket-protocol')?.[1]
      // Hop-by-hop fields (Upgrade, Connection included) and Content-Length go, as from any answer.
      const fields = clientResponseHeaders(head.headers, this.requestId, false).filter(([n]) => !HANDSHAKE_FIELDS.has(n.toLowerCase()))
      const rest = this.answer.consume(end + 4)
      this.answer.clear()
      this.switched = true
      this.settled = true
      this.settle({ kind: 'switched', protocol, fields })
      if (rest) this.relayFrames(rest)
    }
    return true
  }

  /** The client's socket, once the runtime has upgraded it. */
  attach(socket: WebSocket): void {
    this.socket = socket
    socket.binaryType = 'arraybuffer'
    socket.onopen = () => {
      for (const m of this.pendingToClient) socket.send(m)
      this.pendingToClient = []
      const close = this.pendingClose
      if (close) closeWith(socket, close.code, close.reason)
      else if (this.closed) socket.close()
    }
    socket.onmessage = (e: MessageEvent) => {
      const data = e.data
      const frame = typeof data === 'string' ? encodeMaskedFrame(OPCODE.text, new TextEncoder().encode(data)) : encodeMaskedFrame(OPCODE.binary, new Uint8Array(data as ArrayBuffer))
      this.toUpstream(frame)
    }
    socket.onclose = (e: CloseEvent) => {
      if (this.closed) return
      // The client's close goes upstream as a close frame, then the tunnel ends.
      const code = e.code >= 1000 && e.code !== 1005 && e.code !== 1006 ? e.code : undefined
      this.toUpstream(encodeMaskedFrame(OPCODE.close, closePayload(code, e.reason ?? '')))
      this.finish()
    }
    socket.onerror = () => {}
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const f of held) this.handlers.data(f)
  }

  /** The tunnel is over: a refusal is complete, or the upstream side closed. */
  end(): void {
    if (!this.settled) this.settleAnswer()
    this.finish()
  }

  destroy(): void {
    if (!this.settled) {
      this.settled = true
      this.settle({ kind: 'answer', response: new Response('502 the upstream answer to the upgrade was cut\n', { status: 502 }) })
    }
    this.finish()
  }

  tlsInfo(): undefined {
    return undefined
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.drainTimer)
    const s = this.socket
    // One not open yet is closed on open (attach), with the upstream's close code if it sent one.
    if (s && s.readyState === 1) s.close()
    const h = this.handlers
    this.handlers = NOOP_HANDLERS
    h.close(undefined)
  }

  /** A refusal's whole answer as a Response: its status, its end-to-end headers, its decoded body. */
  private settleAnswer(): void {
    this.settled = true
    const end = this.answer.findEnd()
    let response: Response
    try {
      if (end < 0) throw new Error('no complete head')
      const head = parseResponseHeadBytes(this.answer.buffer, end, 'GET')
      let body: Uint8Array = this.answer.bytes.subarray(end + 4)
      if (head.framing.kind === 'chunked') {
        const parts: Uint8Array[] = []
        new ChunkedDecoder().feed(body, (s) => parts.push(s.slice()))
        body = concatBytes(parts)
      } else if (head.framing.kind === 'length') body = body.subarray(0, head.framing.length)
      else if (head.framing.kind === 'none') body = new Uint8Array(0)
      // End-to-end fields only (hop-by-hop and Content-Length go; the Response frames the body).
      const headers = new Headers(clientResponseHeaders(head.headers, this.requestId, false))
      response = new Response(body.byteLength > 0 ? body : null, { status: head.status, statusText: head.statusText, headers })
    } catch {
      response = new Response('502 the upstream answer to the upgrade could not be read\n', { status: 502 })
    }
    this.settle({ kind: 'answer', response })
  }

  /** Upstream frames to the client: data messages reassembled, pings answered, a close relayed. */
  private relayFrames(bytes: Uint8Array): boolean {
    let frames
    try {
      frames = this.frames.push(bytes)
    } catch (err) {
      return this.refuse(err instanceof FrameError ? err.closeCode : 1002)
    }
    for (const f of frames) {
      if (f.opcode === OPCODE.ping) this.toUpstream(encodeMaskedFrame(OPCODE.pong, f.payload))
      else if (f.opcode === OPCODE.pong) continue
      else if (f.opcode === OPCODE.close) {
        const code = f.payload.byteLength >= 2 ? (f.payload[0]! << 8) | f.payload[1]! : undefined
        // A close reason is UTF-8 too (RFC 6455 §5.5.1, §8.1).
        let reason: string
        try {
          reason = STRICT_UTF8.decode(f.payload.subarray(2))
        } catch {
          return this.refuse(1007)
        }
        const s = this.socket
        // Sent right after the 101 (an origin turning the connection away), it waits for the client's socket to open.
        if (s && s.readyState === 1) closeWith(s, code, reason)
        else if (!s || s.readyState === 0) this.pendingClose = { code, reason }
      } else {
        if (f.opcode !== OPCODE.continuation) this.fragmentOpcode = f.opcode
        this.fragments.push(f.payload)
        this.fragmentBytes += f.payload.byteLength
        // RFC 6455 §10.4: a limit on the message after reassembly, not only on each frame.
        if (this.fragmentBytes > MAX_MESSAGE_BYTES) return this.refuse(1009)
        if (!f.fin) continue
        const payload = concatBytes(this.fragments)
        this.fragments = []
        this.fragmentBytes = 0
        if (this.fragmentOpcode !== OPCODE.text) this.toClient(payload)
        else {
          // A text message that is not UTF-8 fails the connection (RFC 6455 §8.1: 1007), rather than reaching the client with U+FFFD in it.
          let text: string
          try {
            text = STRICT_UTF8.decode(payload)
          } catch {
            return this.refuse(1007)
          }
          this.toClient(text)
        }
      }
    }
    const s = this.socket
    if (s && s.bufferedAmount > CLIENT_HIGH_WATER_BYTES) {
      // Full: the tunnel pauses the upstream until drain.
      this.drainTimer ??= setInterval(() => {
        if (this.socket && this.socket.bufferedAmount <= CLIENT_HIGH_WATER_BYTES / 2) {
          clearInterval(this.drainTimer)
          this.drainTimer = undefined
          this.handlers.drain()
        }
      }, 10)
      return false
    }
    return true
  }

  /** Ends the relay for what the upstream sent: the client gets 1009 (too big), 1007 (text not UTF-8) or 1011. */
  private refuse(code: number): boolean {
    this.socket?.close(code === 1009 || code === 1007 ? code : 1011)
    this.finish()
    return true
  }

  private toClient(m: string | Uint8Array): void {
    const s = this.socket
    if (s && s.readyState === 1) s.send(m)
    else this.pendingToClient.push(m)
  }

  private toUpstream(frame: Uint8Array): void {
    if (!this.paused) return this.handlers.data(frame)
    this.held.push(frame)
    this.heldBytes += frame.byteLength
    if (this.heldBytes > MAX_HELD_BYTES) {
      this.socket?.close(1013, 'upstream too slow')
      this.finish()
    }
  }
}

/** Closes a client's socket with the upstream's close code and reason when they are ones a close may carry (RFC 6455 §7.4), else without. */
function closeWith(s: WebSocket, code: number | undefined, reason: string): void {
  if (code !== undefined && code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 && code !== 1015) s.close(code, reason)
  else s.close()
}
