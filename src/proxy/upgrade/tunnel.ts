/**
 * Protocol upgrades (WebSocket and any other Upgrade), through the same attempt loop and pool as plain requests: the request head
 * goes to a fresh connection to one pool address (dialled by the pool, so connects count and failures eject), with the usual
 * forwarding headers; an HTTP/1.1 101 answer that names a protocol the request asked for (any other 101, and any 1xx that says
 * HTTP/1.0, is a 502) turns both connections into a byte tunnel with backpressure each way; any other answer is relayed to its
 * end and both connections close (the client cannot go on talking to the upstream unchecked). The request path (handler.ts)
 * routes, admits and records upgrades.
 */
import { Buffer } from 'node:buffer'
import { ChunkedDecoder } from '../../http1/chunked.ts'
import { HeadReader } from '../../http1/head-reader.ts'
import { encodeClosingResponse, encodeInterim } from '../../http1/response-encode.ts'
import { interimRefusal, MAX_RESPONSE_HEAD_BYTES, parseResponseHeadBytes, unfinishedResponseHead, type ResponseHead } from '../../http1/response-head.ts'
import { monoNow } from '../../lib/clock.ts'
import { unwatchStall, watchStall, type StallWatch } from '../../lib/stall-sweep.ts'
import { NOOP_HANDLERS, type Conn, type ConnHandlers } from '../../runtime/socket.ts'
import { runAttempts } from '../attempts.ts'
import { failureBody, failureHeaders, RequestFailure, statusFor } from '../errors.ts'
import { clientResponseHeaders, listedByConnection } from '../headers.ts'
import { unaskedSwitch, websocketSwitchProblem } from './switch-checks.ts'
import { IDEMPOTENT_METHODS } from '../../http1/methods.ts'
import type { UpstreamPool } from '../upstream/pool.ts'

export interface TunnelContext {
  pool: UpstreamPool
  /** The request head to send upstream, without its final blank line's Connection/Upgrade. */
  method: string
  target: string
  headers: readonly (readonly [string, string])[]
  /** The Upgrade header's value, sent on as it came. */
  upgrade: string
  requestId: string
  /** Connect plus response-head time allowed per attempt. */
  openTimeoutMs: number
  /** An open tunnel with no byte either way for this long is closed (the upstream's idle_timeout); 0: never. */
  idleTimeoutMs: number
  /** Called once when the upgrade is over: the tunnel closed, the refusal was relayed, or it failed. */
  onEnd?: (end: TunnelEnd) => void
}

/** How one upgrade ended, for the access log. */
export interface TunnelEnd {
  /** 101 for a tunnel; the upstream's status for a refused upgrade; the proxy's own when no upstream answered; `upstreamStatus`, the upstream's, when it answered (a cut relay too). */
  status: number
  upstreamStatus?: number
  /** Bytes from the client after its request head. */
  bytesIn: number
  /** Bytes to the client after the response head. */
  bytesOut: number
  /** The address tried last, as ip:port (the access log's upstream_addr). */
  upstreamAddr: string | undefined
  retries: number
  /** A failure code of errors.ts, and (the proxy's own answer) the failure in words. */
  error?: string
  detail?: string
}

/** Client bytes held while the upstream has not answered the upgrade yet. */
const MAX_HELD_BYTES = 64 * 1024

interface Answer {
  upstream: Conn
  head: ResponseHead
  raw: Buffer
  rest: Buffer
  /** What the upstream did between its head and the handlers that take over (see readHead). */
  late: LateEvents
}

/**
 * Events of an upstream connection while nobody reads it: after its answer's head is read and before the tunnel or the refusal's
 * relay installs handlers, across an await. On Deno (node:net) data arrives in that gap; it was dropped, cutting a WebSocket's first frames.
 */
interface LateEvents {
  chunks: Uint8Array[]
  closed: { err: Error | undefined } | undefined
}

/** Installs `handlers` on `upstream`, reads on, and gives them what came while nobody read it (a pause for a full client holds). */
function takeOver(upstream: Conn, late: LateEvents, handlers: ConnHandlers): void {
  upstream.handlers = handlers
  if (!late.closed) upstream.resume()
  for (const c of late.chunks.splice(0)) handlers.data(c)
  if (late.closed) handlers.close(late.closed.err)
}

/** Runs one upgrade to its end. `client` is the listener's connection, already taken over. */
export async function tunnelUpgrade(client: Conn, early: Uint8Array, ctx: TunnelContext): Promise<void> {
  // Hold what the client sends until the upstream has answered; past MAX_HELD_BYTES, stop
  // reading the client (a client cannot make the proxy buffer without bound).
  const held: Uint8Array[] = early.byteLength > 0 ? [early] : []
  let heldBytes = early.byteLength
  let clientGone = false
  /** The upstream connection an attempt waits on for its answer: cut when the client leaves, as nginx does (held until the answer, a client could keep connections to the origin open past max_connections). */
  let answering: Conn | undefined
  client.handlers = {
    data: (c) => {
      held.push(c)
      heldBytes += c.byteLength
      if (heldBytes > MAX_HELD_BYTES) client.pause()
    },
    drain() {},
    close: () => {
      clientGone = true
      answering?.destroy()
    },
  }
  let headText = `${ctx.method} ${ctx.target} HTTP/1.1\r\n`
  for (const [n, v] of ctx.headers) headText += `${n}: ${v}\r\n`
  const head = Buffer.from(`${headText}connection: upgrade\r\nupgrade: ${ctx.upgrade}\r\n\r\n`, 'latin1')

  let ended = false
  const end = (e: TunnelEnd) => {
    if (ended) return
    ended = true
    ctx.onEnd?.(e)
  }
  let lastAddr: string | undefined
  const gone = () => new RequestFailure('CLIENT_GONE', 'request', 'client closed the connection')
  const outcome = await runAttempts(ctx.pool, {
    run: async (state): Promise<Answer> => {
      if (clientGone) throw gone()
      lastAddr = state.label
      const upstream = await ctx.pool.dialDetached(state)
      if (clientGone) {
        upstream.destroy()
        throw gone()
      }
      answering = upstream
      try {
        // An interim answer goes on as a plain request's does (flight.ts): the fields a 1xx may
        // not carry or that are the hop's (Content-Length, Transfer-Encoding, Connection) dropped.
        const answer = await readHead(upstream, head, ctx.method, ctx.openTimeoutMs, (interim) => client.write(encodeInterim(interim.status, clientResponseHeaders(interim.headers, ctx.requestId, false))))
        const unasked = answer.head.status === 101 ? (unaskedSwitch(ctx.upgrade, answer.head) ?? websocketSwitchProblem(ctx.upgrade, ctx.headers, answer.head)) : undefined
        if (unasked !== undefined) throw new RequestFailure('BAD_RESPONSE', 'response-head', unasked, { address: upstream.remoteAddress })
        return { upstream, ...answer }
      } catch (err) {
        upstream.destroy()
        throw err
      } finally {
        answering = undefined
      }
    },
    // The upstream closed without a byte: it may have acted on the request, so only an idempotent one goes again (RFC 9110 §9.2.2; a POST upgrade went twice).
    mayRetry: (f) => f.code === 'RESET_BEFORE_RESPONSE' && !clientGone && IDEMPOTENT_METHODS.has(ctx.method),
  })
  if (!outcome.ok) {
    const f = outcome.failure
    if (f.code === 'CLIENT_GONE' || clientGone) return end({ status: 499, bytesIn: 0, bytesOut: 0, upstreamAddr: lastAddr, retries: outcome.retries, error: 'CLIENT_GONE' })
    const status = statusFor(f.code).status
    // The table's reason, as an ordinary request's failure says: what failed where (the upstream's
    // address, the failure in words) is the access log's (upstream_addr, error, error_detail), not the client's to read.
    const body = failureBody(status, statusFor(f.code).reason, ctx.requestId)
    end({ status, bytesIn: 0, bytesOut: Buffer.byteLength(body), upstreamAddr: lastAddr, retries: outcome.retries, error: f.code, detail: f.message })
    client.write(encodeClosingResponse(status, failureHeaders(f.code, ctx.requestId), body))
    client.end()
    return
  }
  const { upstream, head: answer, raw, rest, late } = outcome.value
  if (clientGone) {
    upstream.destroy()
    return end({ status: 499, bytesIn: 0, bytesOut: 0, upstreamAddr: lastAddr, retries: outcome.retries, error: 'CLIENT_GONE' })
  }
  const counts = { bytesIn: 0, bytesOut: 0 }
  const finish = (error?: string) => end({ status: answer.status, upstreamStatus: answer.status, ...counts, upstreamAddr: lastAddr, retries: outcome.retries, ...(error ? { error } : {}) })
  if (answer.status === 101) {
    // The head and whatever came with it (the upstream may speak first, as soon as it switched).
    const switched = switchedHead(answer, raw)
    client.write(rest.length > 0 ? Buffer.concat([switched, rest]) : switched)
    counts.bytesOut = rest.length
    for (const c of held.splice(0)) {
      counts.bytesIn += c.byteLength
      upstream.write(c)
    }
    ended = true // recorded from here by tunnelEnd, which keeps nothing of this scope
    pipeBoth(client, upstream, late, counts, ctx.idleTimeoutMs, tunnelEnd(ctx.onEnd, counts, lastAddr, outcome.retries))
    client.resume()
    return
  }
  // Refused (401, 403, 426, ...): relay that answer, then close both.
  relayThenClose(upstream, client, late, refusalHead(answer, raw, ctx.requestId), answer, rest, counts, ctx.idleTimeoutMs, finish)
}

/**
 * The record of a switched tunnel's end (once), made outside tunnelUpgrade: a closure of that
 * function's scope kept its request head, the upstream's answer and the context for the tunnel's
 * life (2.6 KB of heap a WebSocket, measured with heap snapshots).
 */
function tunnelEnd(onEnd: TunnelContext['onEnd'], counts: { bytesIn: number; bytesOut: number }, upstreamAddr: string | undefined, retries: number): (error: string | undefined) => void {
  let ended = false
  return (error) => {
    if (ended) return
    ended = true
    onEnd?.({ status: 101, upstreamStatus: 101, ...counts, upstreamAddr, retries, ...(error ? { error } : {}) })
  }
}

/**
 * A refused upgrade's head for the client: the upstream's lines as they came but its Connection (and the fields it names),
 * Keep-Alive and X-Request-Id, then the request id and Connection: close (both sides close after it). Transfer-Encoding stays
 * (the body is relayed as it comes); Content-Length as the forwarding path passes it on: as it came, or its one value, or none.
 */
function refusalHead(head: ResponseHead, raw: Buffer, requestId: string): Buffer {
  const r = head.raw!
  // Fields Connection names beyond the hop-by-hop set, as the forwarding path drops them: a 426's Upgrade stays (RFC 9110
  // §15.5.22: it must carry one), and so does the framing the relayed body depends on (Content-Length: its own rule below).
  const named = listedByConnection(r.connection)?.filter((t) => t !== 'content-length')
  // The proxy's own HTTP-version (RFC 9110 §2.5: only a tunnel passes the upstream's on): "HTTP/1.0 403" goes on as "HTTP/1.1 403".
  let out = 'HTTP/1.1' + linesAsTheyCame(head, raw, (name) => name === 'connection' || name === 'keep-alive' || name === 'proxy-connection' || name === 'x-request-id' || named?.includes(name) === true || (name === 'content-length' && !r.lengthVerbatim)).slice(8)
  if (r.announcedLength !== undefined) out += `content-length: ${r.announcedLength}\r\n`
  return Buffer.from(`${out}x-request-id: ${requestId}\r\nconnection: close\r\n\r\n`, 'latin1')
}

/**
 * A 101's head for the client: the upstream's as it came but for Content-Length and Transfer-Encoding, which no 1xx may carry
 * (RFC 9110 §8.6, RFC 9112 §6.1: a 1xx ends at its blank line, and what follows is the new protocol). Origins that send
 * "Content-Length: 0" on their 101 exist, and .NET's ClientWebSocket takes it as the end of the data and drops the connection;
 * a parser that honours it on a 1xx reads the tunnel's first bytes as a body.
 */
function switchedHead(head: ResponseHead, raw: Buffer): Buffer {
  return Buffer.from(`${linesAsTheyCame(head, raw, (name) => name === 'content-length' || name === 'transfer-encoding')}\r\n`, 'latin1')
}

/** The head's status line and field lines as the upstream wrote them, but those whose (lower-case) name `drop` says. */
function linesAsTheyCame(head: ResponseHead, raw: Buffer, drop: (name: string) => boolean): string {
  const r = head.raw!
  let out = raw.toString('latin1', 0, r.statusLineEnd + 2)
  for (let i = 0; i < r.spans.length; i += 4) {
    if (drop(raw.toString('latin1', r.spans[i]!, r.spans[i + 1]!).toLowerCase())) continue
    out += raw.toString('latin1', r.spans[i]!, i + 4 < r.spans.length ? r.spans[i + 4]! : r.end + 2)
  }
  return out
}

/**
 * Sends the request head and reads the upstream's final response head, within `timeoutMs`. Interim heads before it (a 100
 * Continue, a 103) are handed to `onInterim` as they come (RFC 9110 §15.2: a proxy forwards 1xx answers and waits on; §7.8: a
 * server may send 100 before its 101).
 */
function readHead(upstream: Conn, requestHead: Buffer, method: string, timeoutMs: number, onInterim: (head: ResponseHead) => void): Promise<Omit<Answer, 'upstream'>> {
  return new Promise((resolve, reject) => {
    const reader = new HeadReader()
    let settled = false
    const settle = (r: Omit<Answer, 'upstream' | 'late'> | RequestFailure) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (r instanceof RequestFailure) {
        upstream.handlers = NOOP_HANDLERS
        return reject(r)
      }
      // Kept until takeOver(): paused, so that what is held is at most what was already read.
      const late: LateEvents = { chunks: [], closed: undefined }
      upstream.pause()
      upstream.handlers = { data: (c) => void late.chunks.push(c), drain() {}, close: (err) => (late.closed = { err }) }
      resolve({ ...r, late })
    }
    const failure = (code: 'HEADER_TIMEOUT' | 'BAD_RESPONSE' | 'RESET_BEFORE_RESPONSE', message: string) => new RequestFailure(code, 'response-head', message, { address: upstream.remoteAddress })
    const timer = setTimeout(() => settle(failure('HEADER_TIMEOUT', `upstream did not answer the upgrade within ${timeoutMs}ms`)), timeoutMs)
    // Counted for the whole answer, not per read: an upstream that sends each interim head in its
    // own segment is bounded too (a count per read let it send them without end).
    let interims = 0
    upstream.handlers = {
      data(chunk) {
        reader.append(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        while (!settled) {
          const end = reader.findEnd()
          if (end < 0 || end + 4 > MAX_RESPONSE_HEAD_BYTES) {
            const refused = unfinishedResponseHead(reader, end)
            return refused === undefined ? undefined : settle(failure('BAD_RESPONSE', `upstream ${refused}`))
          }
          const buf = reader.bytes
          let head: ResponseHead
          try {
            head = parseResponseHeadBytes(buf, end, method)
          } catch (err) {
            return settle(failure('BAD_RESPONSE', `upstream sent an invalid response: ${(err as Error).message}`))
          }
          // A 1xx that says HTTP/1.0, or one interim too many: response-head.ts's interimRefusal.
          const refused = head.status < 200 ? interimRefusal(head, interims, true) : undefined
          if (refused !== undefined) return settle(failure('BAD_RESPONSE', refused))
          if (head.status >= 200 || head.status === 101) return settle({ head, raw: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) })
          interims++
          onInterim(head)
          reader.consume(end + 4)
        }
      },
      drain() {},
      close() {
        // Nothing at all came back: the upstream did not act on it (retry-safe); else it may have.
        settle(reader.size === 0 ? failure('RESET_BEFORE_RESPONSE', 'upstream closed the connection without answering the upgrade') : failure('BAD_RESPONSE', 'upstream closed the connection in the middle of its answer'))
      },
    }
    upstream.write(requestHead)
  })
}
const IDLE_CLOSE_GRACE_MS = 2000, CLOSE_FLUSH_MS = 60_000 // sides closed at idle_timeout close back within the first; with it off, the side left may send what it holds for the second
/**
 * Joins the client and the upstream into a byte tunnel: each side's data goes to the other, a full side pauses its source until it
 * drains, and a close ends the other side (then `onClose`). With `idleMs`, no byte either way for that long closes both
 * (`onClose('IDLE_TIMEOUT')`; a FIN each, a cut for one that does not close back), as HAProxy's `timeout tunnel` does: a peer gone
 * without a FIN holds no socket for ever. A side cut for a reason of its own gives its code.
 */
function pipeBoth(client: Conn, upstream: Conn, late: LateEvents, counts: { bytesIn: number; bytesOut: number }, idleMs: number, onClose: (error: string | undefined) => void): void {
  let idled = false
  let cut: ReturnType<typeof setTimeout> | undefined // the idle close's cut, armed before the ends: on Bun both closes, which clear it, come within end()
  const watch: StallWatch = {
    since: monoNow(),
    limitMs: idleMs,
    expire() {
      idled = true // nothing was in flight either way: a FIN to both, as nginx and HAProxy close a tunnel at its timeout
      cut = setTimeout(() => (client.destroy(), upstream.destroy()), IDLE_CLOSE_GRACE_MS)
      client.end()
      upstream.end()
    },
  }
  if (idleMs > 0) watchStall(watch)
  let closed = false
  // Handlers of `from`: its data goes to `to`; its drain (its own queue sent) lets `to` read again; `dropped`: what was queued for `from` and never taken, once it closed (taken off the other way's count, made as bytes were read).
  const relay = (from: Conn, to: Conn, count: (n: number) => void, dropped: (n: number) => void): ConnHandlers => ({
    data: (c) => {
      // Closing (a side gone, idle_timeout): nothing goes across. An ended TLS upstream reads on whatever pause() says: cut once nothing waits for it (it was drained: 5.5 GB in 8 s); the client's side lingers (client-connection.ts).
      if (closed || idled) {
        if (from === upstream && !from.unsentBytes) from.destroy()
        return
      }
      count(c.byteLength)
      watch.since = monoNow()
      if (!to.write(c)) from.pause()
    },
    drain: () => to.resume(),
    close: (err) => {
      // The first side to close is the one the record is about (ending the other may close it at once, within end()).
      const first = !closed
      closed = true
      // The side left sends what it holds, then its FIN; cut after idle_timeout if its peer reads nothing (it was left open for good).
      if (first && !idled) cut = setTimeout(() => to.destroy(), idleMs > 0 ? idleMs : CLOSE_FLUSH_MS)
      to.end()
      if (!first) return void clearTimeout(cut)
      dropped(from.unsentBytes ?? 0)
      unwatchStall(watch)
      onClose(idled ? 'IDLE_TIMEOUT' : err instanceof RequestFailure ? err.code : undefined)
    },
  })
  client.handlers = relay(client, upstream, (n) => (counts.bytesIn += n), (n) => (counts.bytesOut = Math.max(0, counts.bytesOut - n)))
  takeOver(upstream, late, relay(upstream, client, (n) => (counts.bytesOut += n), (n) => (counts.bytesIn = Math.max(0, counts.bytesIn - n))))
}

/**
 * Relays a non-101 answer (its head, then its body by its framing) and closes both sides. A body whose upstream is silent for
 * `idleMs` (0: never) is cut, `onDone('IDLE_TIMEOUT')`, as a plain response's is; while the client is behind it is not timed.
 */
function relayThenClose(upstream: Conn, client: Conn, late: LateEvents, raw: Buffer, head: ResponseHead, rest: Buffer, counts: { bytesOut: number }, idleMs: number, onDone: (error?: string) => void): void {
  let over = false
  const idle: StallWatch = { since: monoNow(), limitMs: idleMs, expire: () => finish(false, 'IDLE_TIMEOUT') }
  /** `complete`: the answer was relayed whole (the client's connection ends cleanly); otherwise it is cut. */
  const finish = (complete: boolean, error?: string) => {
    if (over) return
    over = true
    unwatchStall(idle)
    upstream.handlers = NOOP_HANDLERS
    client.handlers = NOOP_HANDLERS
    upstream.destroy()
    if (complete) client.end()
    else client.destroy()
    onDone(error)
  }
  client.write(raw)
  const f = head.framing
  if (f.kind === 'none') return finish(true)
  if (idleMs > 0) watchStall(idle)
  let remaining = f.kind === 'length' ? f.length : Infinity
  const decoder = f.kind === 'chunked' ? new ChunkedDecoder(MAX_RESPONSE_HEAD_BYTES) : undefined
  const onBody = (chunk: Uint8Array) => {
    let take: number
    if (decoder) {
      try {
        take = decoder.feed(chunk, (s) => void (counts.bytesOut += s.byteLength)) // the body's bytes, not its chunk framing
      } catch {
        return finish(false, 'RESET_MID_BODY')
      }
    } else {
      take = Math.min(remaining, chunk.byteLength)
      remaining -= take
      counts.bytesOut += take
    }
    idle.since = monoNow()
    if (!client.write(chunk.subarray(0, take))) {
      upstream.pause()
      unwatchStall(idle)
    }
    if (decoder ? decoder.done : remaining === 0) finish(true)
  }
  client.handlers = {
    data() {},
    drain: () => {
      upstream.resume()
      if (over || !(idleMs > 0)) return
      idle.since = monoNow()
      watchStall(idle)
    },
    close: (err) => finish(false, err instanceof RequestFailure ? err.code : 'CLIENT_GONE'),
  }
  if (rest.length > 0) late.chunks.unshift(rest)
  takeOver(upstream, late, {
    data: (c) => void (over || onBody(c)),
    drain() {},
    // A close-delimited answer ends with a close (not a reset: RFC 9112 §6.3); any other that ends early is cut for the client too.
    close: (err) => (f.kind === 'close' && err === undefined ? finish(true) : finish(false, 'RESET_MID_BODY')),
  })
}
