/**
 * The session's table of open streams and the ends of their lives (RFC 9113 §5.1): both sides
 * done, a reset either way, a response finished before the request (§8.1), stream errors
 * (§5.4.2), the recent resets whose in-flight frames are ignored, and the ids the client skipped
 * (§5.1.1), so a frame on a stream closed is told from one never opened. Opening streams and
 * reading frames stay in session.ts; the stream's own API is stream.ts.
 */
import { httpDateNow } from '../lib/clock.ts'
import { connectionError, enhanceYourCalm, H2Code, streamError, type Http2Error } from './errors.ts'
import type { FloodGuard } from './floods.ts'
import type { ReceiveFlow } from './flow.ts'
import { Flag, headerFrames, rstStreamFrame, stripPadding, type FrameHeader } from './frames.ts'
import type { HeaderField, HpackEncoder } from './hpack.ts'
import type { Output } from './output.ts'
import type { Refused, RefusedFields } from './refused.ts'
import { responseFields, toRequest, type H2Request } from './request.ts'
import type { CloseCode, ServerStream } from './stream.ts'

/** Streams dropped (reset by us, or ignored after our GOAWAY) remembered, so frames the client sent before it knew are told from protocol errors. */
const RECENT_DROPS = 1024
/** Runs of skipped ids remembered (a client skips rarely: curl, browsers and h2load never do), so a stream closed is told from one never opened. */
const RECENT_SKIPS = 32
/** Why a head or trailers are refused (the owner's log line, the debug text of a reset). */
const HEAD_TOO_LARGE = 'request header list above SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §10.5.1)'
const TRAILERS_TOO_LARGE = 'request trailers above SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §10.5.1)'
const BODY_LENGTH = 'body length differs from content-length (RFC 9113 §8.1.1)'

export class StreamTable {
  private readonly open = new Map<number, ServerStream>()
  /** Streams we dropped (see drop), with the DATA bytes the client may still have in flight on each (see dataAfterDrop). */
  private readonly dropped = new Map<number, number>()
  /** Highest client stream id seen (§5.1.1). */
  private lastId = 0
  /** Client ids skipped (§5.1.1: closed, never opened), as [first, last] pairs of the latest runs. */
  private readonly skipped: number[] = []
  /** Ids at or below this can no longer be told opened from skipped (their runs were dropped). */
  private forgottenBelow = 0

  constructor(
    private readonly out: Output,
    private readonly encoder: HpackEncoder,
    private readonly flow: ReceiveFlow,
    private readonly floods: FloodGuard,
    /** SETTINGS_INITIAL_WINDOW_SIZE we announce: what a client may send on a stream it just opened. */
    private readonly streamInitialWindowBytes: number,
    /** Called after each stream closes. */
    private readonly onClosed: () => void,
    /** The owner's: told of each request refused here (a header list above the cap); what it returns, the 431 carries. */
    private readonly onRefused: ((r: Refused) => RefusedFields) | undefined,
    /** Where a throw of the owner's callback goes (its bug, reported: the session goes on). */
    private readonly ownerFault: (err: unknown) => void,
  ) {}

  get size(): number {
    return this.open.size
  }

  get(id: number): ServerStream | undefined {
    return this.open.get(id)
  }

  values(): IterableIterator<ServerStream> {
    return this.open.values()
  }

  add(s: ServerStream): void {
    this.open.set(s.id, s)
    this.flow.opened(s)
  }

  get lastStreamId(): number {
    return this.lastId
  }

  /** A HEADERS frame opens `id`, above every id before it: the ids between are closed unopened (§5.1.1). */
  opened(id: number): void {
    const next = this.lastId === 0 ? 1 : this.lastId + 2
    if (id > next) {
      this.skipped.push(next, id - 2)
      if (this.skipped.length > 2 * RECENT_SKIPS) this.forgottenBelow = this.skipped.splice(0, 2)[1]!
    }
    this.lastId = id
  }

  /**
   * A stream the client never opened (§5.1): above the last one it opened, or an even id (ours,
   * and we never push). Stream 0 is the connection, not a stream.
   */
  isIdle(id: number): boolean {
    return id !== 0 && (id > this.lastId || id % 2 === 0)
  }

  /**
   * How a client stream no longer open came to be closed (§5.1), for a frame that arrives on it:
   * dropped by us (what the client sent before it knew is discarded); `closed` otherwise, by
   * END_STREAM both ways or the client's own RST_STREAM, so nothing of its can be in flight; or
   * `unknown`: never opened (an id it skipped, §5.1.1), or too long ago to tell.
   */
  private closedAs(id: number): 'dropped' | 'closed' | 'unknown' {
    if (this.dropped.has(id)) return 'dropped'
    if (id <= this.forgottenBelow || id > this.lastId || id % 2 === 0) return 'unknown'
    const sk = this.skipped
    for (let i = 0; i < sk.length; i += 2) if (id >= sk[i]! && id <= sk[i + 1]!) return 'unknown'
    return 'closed'
  }

  /** A header block, decoded already (the HPACK state is the connection's), on a client stream no longer open (§5.1 "closed"). */
  headersOnClosed(id: number): void {
    switch (this.closedAs(id)) {
      case 'dropped':
        // Sent before the client saw our RST_STREAM (§5.1) or GOAWAY (§6.8): discarded, and counted like resets. Trailers end
        // the stream: a reset still held for it would name a closed one.
        this.out.cancelSoon(id)
        return this.floods.reset('header blocks on streams we dropped')
      case 'closed':
        // END_STREAM both ways, or the client's RST_STREAM: it knew the stream closed when it sent this. §5.1 names a connection error STREAM_CLOSED.
        throw connectionError(H2Code.STREAM_CLOSED, `HEADERS on closed stream ${id} (RFC 9113 §5.1)`)
      case 'unknown':
        // Never opened: a new stream's id must be above all before it (§5.1.1). Or closed so long ago
        // that the client has opened many streams since: a sign it knows (§5.1 allows PROTOCOL_ERROR then).
        throw connectionError(H2Code.PROTOCOL_ERROR, `HEADERS on stream ${id}, below the last one opened (RFC 9113 §5.1.1)`)
    }
  }

  /**
   * DATA of `length` bytes (padding included) on a stream: false if it is not one we dropped
   * (recently). In flight after our RST_STREAM or GOAWAY can be at most what the stream's window
   * allowed then: we credit nothing more to a closed stream (§6.9), and a client that ended its
   * side has nothing to send. Beyond that no race explains it, only a client making us drop DATA
   * for ever: ENHANCE_YOUR_CALM.
   */
  /** Whether DATA of `length` bytes on `id` fits its window: an open stream's, or what one we dropped may still have on its way. */
  mayTake(id: number, length: number): boolean {
    const s = this.open.get(id)
    if (s !== undefined) return !s.remoteEnded && length <= s.recvWindow
    return length <= (this.dropped.get(id) ?? -1)
  }

  dataAfterDrop(id: number, length: number): boolean {
    const left = this.dropped.get(id)
    if (left === undefined) return false
    if (length > left) throw enhanceYourCalm('DATA beyond the window of a stream we dropped')
    this.dropped.set(id, left - length)
    return true
  }

  /**
   * DATA on a stream not open, its length charged to the connection window already (§6.9): the
   * credit goes back. A connection error on an idle stream (§5.1); dropped on one we dropped,
   * within dataAfterDrop's bound; else a stream error STREAM_CLOSED (§6.1).
   */
  dataNotOpen(h: FrameHeader, p: Uint8Array, halfClosed: ServerStream | undefined): void {
    this.flow.creditConnection(h.length)
    const id = h.streamId
    if (halfClosed) throw streamError(id, H2Code.STREAM_CLOSED, 'DATA after END_STREAM (RFC 9113 §5.1)')
    if (this.isIdle(id)) throw connectionError(H2Code.PROTOCOL_ERROR, 'DATA on an idle stream (RFC 9113 §5.1)')
    if (!this.dataAfterDrop(id, h.length)) throw streamError(id, H2Code.STREAM_CLOSED, 'DATA on a closed stream (RFC 9113 §5.1)')
    if (h.flags & Flag.END_STREAM) this.out.cancelSoon(id) // closed both ways now: a reset held for it would name a closed stream (§5.1)
    // Counted as on an open stream, END_STREAM or not: it ends nothing here.
    const bodyBytes = stripPadding(h, p).byteLength
    if (bodyBytes === 0) this.floods.empty('empty DATA frames on streams we dropped')
    this.floods.dataOverhead(h.length, bodyBytes)
  }

  sendRst(id: number, code: number): void {
    this.out.push(rstStreamFrame(id, code))
    this.drop(id)
  }

  /**
   * RST_STREAM(NO_ERROR) for a stream answered before its request ended (§8.1): what the client
   * still sends is dropped from now on; the reset itself goes a moment later, not in the answer's
   * write (Output.pushSoon says why).
   */
  resetAfterAnswer(id: number): void {
    this.drop(id)
    this.out.pushSoon(rstStreamFrame(id, H2Code.NO_ERROR), id)
  }

  /**
   * What the client sent on `id` before it learnt we dropped the stream (our RST_STREAM, or our
   * GOAWAY naming a lower id: §5.1, §6.8) is discarded from now on, within dataAfterDrop's bound.
   */
  drop(id: number): void {
    if (this.dropped.has(id)) return
    // A stream not open: the one being opened (refused, malformed, past a GOAWAY: its body may be on its way), or one long closed.
    const s = this.open.get(id)
    this.dropped.set(id, s ? (s.remoteEnded ? 0 : Math.max(0, s.recvWindow)) : id === this.lastId ? this.streamInitialWindowBytes : 0)
    if (this.dropped.size > RECENT_DROPS) this.dropped.delete(this.dropped.keys().next().value!)
  }

  /** END_STREAM from the client. */
  remoteEnd(s: ServerStream): void {
    this.flow.released(s) // it sends no more: what its window grew by serves the others
    s.receiveEnd()
    if (s.localEnded) this.close(s, undefined)
  }

  /** Our END_STREAM is queued: trailers go out now; the stream closes if the client is done too. */
  localDone(s: ServerStream): void {
    // A client that reads nothing: the stream ends once its last frame can go out (the output's
    // pump calls this again), so it still counts against SETTINGS_MAX_CONCURRENT_STREAMS and bodiless
    // answers (HEAD, 204, 304) cannot pile up unread without bound, as Go's server and nginx hold theirs.
    if (this.out.waitingForDrain && !s.closed) return this.out.schedule(s)
    if (s.trailers) {
      const t = s.trailers
      s.trailers = undefined
      this.out.push(headerFrames(s.id, this.encoder.encode(t), true, this.out.peerMaxFrame), false)
    }
    if (s.closed) return
    // The response is complete before the request: ask the client to stop sending (§8.1).
    if (!s.remoteEnded) this.resetAfterAnswer(s.id)
    this.close(s, undefined)
  }

  close(s: ServerStream, code: CloseCode): void {
    if (s.closed) return
    this.open.delete(s.id)
    this.out.unschedule(s)
    this.flow.taken(s.finish(code)) // unread body bytes are dropped with the stream
    this.flow.released(s)
    if (this.open.size === 0) this.out.idle()
    this.onClosed()
  }

  /**
   * A stream error (§5.4.2): RST_STREAM, and it counts like a reset the client sent (a variant of
   * rapid reset); a request already handed on and not yet answered also counts as one the client
   * cancelled ("MadeYouReset", CVE-2025-8671: the client makes us reset it, the origin's work is lost alike).
   */
  failed(err: Http2Error): void {
    // RST_STREAM must not name an idle stream (§6.4): an error there (a PRIORITY frame of the
    // wrong size or depending on itself) is the connection's.
    if (this.isIdle(err.streamId)) throw connectionError(err.h2Code, err.message)
    const s = this.open.get(err.streamId)
    this.sendRst(err.streamId, err.h2Code)
    if (s) this.close(s, err.h2Code)
    this.floods.reset('stream errors')
    if (s?.dispatched && !s.responseStarted) this.floods.abandon()
  }

  /**
   * A request head above the header-list cap: 431, without the owner (RFC 9113 §10.5.1, RFC 6585
   * §5); counted like a refused stream. The owner is told first, with the fields decoded before
   * the cap, and the fields it gives back (its request id) go with the 431.
   */
  headTooLarge(id: number, fields: HeaderField[]): void {
    const extra = this.tell({ why: 'head-too-large', status: 431, request: undefined, owner: undefined, fields, dispatched: false, detail: HEAD_TOO_LARGE })
    this.answer431(id, extra)
  }

  /**
   * Request trailers above the header-list cap: the request is cut, never handed on as whole
   * without them (its body's reader errors, so the upstream sees it cut). 431 as for a head, if
   * no answer began; else a stream error. Either way counted as a request the client made us
   * drop, as for other stream errors (failed()). The owner is told first, and the stream carries
   * it (`refused`) as it closes: for the request path, a refusal, not a client gone.
   */
  trailersTooLarge(s: ServerStream): void {
    const answered = s.responseStarted
    const refused: Refused = { why: 'trailers-too-large', status: answered ? 0 : 431, request: s.request, owner: s.owner, fields: undefined, dispatched: s.dispatched, detail: TRAILERS_TOO_LARGE }
    const extra = this.tell((s.refused = refused))
    if (answered) return this.failed(streamError(s.id, H2Code.PROTOCOL_ERROR, TRAILERS_TOO_LARGE))
    this.answer431(s.id, extra)
    // Both sides have ended; closed with a code all the same, for the body's reader and the owner.
    this.close(s, H2Code.CANCEL)
    if (s.dispatched) this.floods.abandon()
  }

  /**
   * A request whose body's length differs from its content-length (§8.1.1): malformed, and
   * returned as the stream error (PROTOCOL_ERROR) the caller throws: no answer is sent. Unlike a
   * malformed head it is a request the client made, with a bad body, as HTTP/1.1's malformed
   * chunked body is: the owner is told (status 400, what a malformed request earns, RFC 9110
   * §15.5.1; 0 once an answer began), and the stream, when one is open, carries it as it closes.
   */
  bodyLengthDiffers(id: number, request: H2Request, s: ServerStream | undefined): Http2Error {
    const refused: Refused = { why: 'body-length', status: s?.responseStarted ? 0 : 400, request, owner: s?.owner, fields: undefined, dispatched: s?.dispatched ?? false, detail: BODY_LENGTH }
    if (s) s.refused = refused
    this.tell(refused)
    return streamError(id, H2Code.PROTOCOL_ERROR, BODY_LENGTH)
  }

  /**
   * The request of a header list, checked (request.ts toRequest). A malformed one (§8.1.1) is the
   * stream error thrown (PROTOCOL_ERROR: reset, not answered), and is told to the owner first
   * (status 400, what a malformed request earns; nothing is sent), as bodyLengthDiffers does.
   */
  checkedRequest(id: number, names: readonly string[], values: readonly string[]): H2Request {
    try {
      return toRequest(id, names, values)
    } catch (err) {
      const fields = names.map((n, i): HeaderField => [n, values[i]!])
      this.tell({ why: 'malformed', status: 400, request: undefined, owner: undefined, fields, dispatched: false, detail: (err as Error).message })
      throw err
    }
  }

  /** The 431, with the owner's fields (filtered as any response's: request.ts responseFields). */
  private answer431(id: number, extra: RefusedFields): void {
    // The proxy's own answer, as its HTTP/1.1 431: never stored, dated (RFC 9110 §6.6.1).
    const own: HeaderField[] = [['content-length', '0'], ['cache-control', 'no-store'], ['date', httpDateNow()]]
    const fields: HeaderField[] = extra ? responseFields(431, [...own, ...extra]) : [[':status', '431'], ...own]
    this.out.push(headerFrames(id, this.encoder.encode(fields), true, this.out.peerMaxFrame))
    this.floods.reset('refused requests')
  }

  private tell(r: Refused): RefusedFields {
    try {
      return this.onRefused?.(r)
    } catch (err) {
      this.ownerFault(err)
    }
  }

  /** The connection is gone: every stream ends with `code`. */
  abortAll(code: number): void {
    for (const s of [...this.open.values()]) {
      this.open.delete(s.id)
      s.finish(code)
    }
  }
}
