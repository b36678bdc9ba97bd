/**
 * An upstream's answer on its way to a client, its header fields still in the bytes they came in
 * (http1/response-head.ts keeps their offsets). The HTTP/1.1 client writer copies the field lines
 * it keeps from those bytes (encodeHead): no string per field, no list, no joined head; an HTTP/2
 * client's HPACK block is coded from them too (h2Head). Any other reader (the runtime listeners,
 * rewrites, the cache) asks for `headers` and gets the list clientResponseHeaders makes, and from
 * then on both writers use that list.
 */
import { bytesEqualLower, NameTable } from '../http1/chars.ts'
import { headEnd, isBodiless, putHeadEnd, sharedEncodedHead, type EncodedHead } from '../http1/response-encode.ts'
import type { RawFields, ResponseHead } from '../http1/response-head.ts'
import { statusText as defaultStatusText } from '../http1/status-text.ts'
import type { HeadSource, HpackEncoder } from '../http2/hpack.ts'
import { COMMON_RESPONSE_NAMES } from '../http2/hpack-table.ts'
import { putFieldLine, putLatin1, putRange } from '../lib/bytes.ts'
import { httpDateNow } from '../lib/clock.ts'
import { clientResponseHeaders, HOP_BY_HOP, listedByConnection } from './headers.ts'
import type { ProxyReply } from './message.ts'
import type { IncomingResponse } from './upstream/exchange-shapes.ts'

/** Names clientResponseHeaders drops (besides Content-Length, which depends). */
const DROPPED = new NameTable([...HOP_BY_HOP, 'x-request-id'])

/** Which fields are kept, per encodeHead call (one at a time: the event loop runs one). */
let kept = new Uint8Array(64)

export class ForwardedReply implements ProxyReply, HeadSource {
  status: number
  private pairs: [string, string][] | undefined
  private reason: string | undefined
  /** h2Head's whole body length. */
  private wholeLength: number | undefined
  private bodyValue: Uint8Array | ReadableStream<Uint8Array> | null

  constructor(
    private readonly head: ResponseHead,
    private readonly raw: RawFields,
    private readonly requestId: string,
    /** clientResponseHeaders' keepContentLength. */
    private readonly keepLength: boolean,
    body: Uint8Array | ReadableStream<Uint8Array> | null,
    /** An answer whose small whole body is still in the upstream's read (IncomingResponse.wholeIn): `body` is asked of it when first read. */
    private inRead?: IncomingResponse,
  ) {
    this.status = head.status
    this.bodyValue = body
  }

  get body(): Uint8Array | ReadableStream<Uint8Array> | null {
    const r = this.inRead
    if (r !== undefined) {
      this.inRead = undefined
      this.bodyValue = r.body
    }
    return this.bodyValue
  }
  set body(body: Uint8Array | ReadableStream<Uint8Array> | null) {
    this.inRead = undefined
    this.bodyValue = body
  }

  get statusText(): string {
    return this.reason ?? this.head.statusText
  }
  set statusText(text: string) {
    this.reason = text
  }

  get headers(): [string, string][] {
    return (this.pairs ??= clientResponseHeaders(this.head.headers, this.requestId, this.keepLength))
  }
  set headers(list: [string, string][]) {
    this.pairs = list
  }

  /**
   * The head planResponseHead would write for this reply (and `body` after it, when whole), its
   * kept field lines copied from the upstream's bytes as they came (runs of whole lines: the name's
   * case and the spacing around the value are the upstream's, as nginx's copy keeps the case);
   * undefined where that copy might not be exact: the list was asked for (and may have been
   * changed), the reason phrase was set, or the status changed or is below 100.
   */
  encodeHead(method: string, minor: number, closeAsked: boolean, body: Uint8Array | undefined): EncodedHead | undefined {
    return this.encode(method, minor, closeAsked, body, 0, body === undefined ? 0 : body.byteLength)
  }

  /**
   * encodeHead with the whole body after the head, copied from the upstream's read where it still
   * is (no array made for the body alone); undefined where encodeHead would be, or when the body
   * is not there (not whole in that read, or already asked for as `body`).
   */
  encodeWhole(method: string, minor: number, closeAsked: boolean): EncodedHead | undefined {
    const r = this.inRead
    if (r === undefined || r.wholeIn === undefined) return undefined
    return this.encode(method, minor, closeAsked, r.wholeIn, r.wholeFrom!, r.wholeTo!)
  }

  /** The head and `body`[from, to) after it (none: streamed). */
  private encode(method: string, minor: number, closeAsked: boolean, body: Uint8Array | undefined, from: number, to: number): EncodedHead | undefined {
    if (!this.untouched) return undefined
    const { bytes, spans, statusLineEnd, end: rawEnd } = this.raw
    const listed = this.listed()
    const status = this.status
    const noBody = isBodiless(method, status)
    const streamed = body === undefined
    const fields = spans.length >> 2
    if (kept.length < fields) kept = new Uint8Array(fields * 2)
    const reason = statusLineEnd > 13 ? '' : `${status} ${defaultStatusText(status)}`
    // "HTTP/1.1 " + "SSS reason" + CRLF
    let size = 9 + (reason === '' ? statusLineEnd - 9 : reason.length) + 2
    let hasDate = false
    let hasLength = false
    for (let f = 0; f < fields; f++) {
      const ns = spans[4 * f]!
      const ne = spans[4 * f + 1]!
      const n = ne - ns
      let keep = 1
      if (this.drops(ns, ne, listed)) keep = 0
      else if (isLength(bytes, ns, ne)) {
        // Written only for a stream or a bodiless answer (a whole body gets its own).
        hasLength = true
        if (!streamed && !noBody) keep = 0
      } else if (n === 4 && bytesEqualLower(bytes, ns, ne, 'date')) hasDate = true
      kept[f] = keep
      // The whole line: up to the next one's start, or to the end and a CRLF.
      if (keep === 1) size += (f + 1 < fields ? spans[4 * f + 4]! : rawEnd + 2) - ns
    }
    // The one value that stands for the upstream's lines where they are not passed on as they came.
    const announced = this.keepLength && (streamed || noBody) && this.raw.announcedLength !== undefined ? String(this.raw.announcedLength) : ''
    if (announced !== '') {
      hasLength = true
      size += 18 + announced.length
    }
    const end = headEnd(hasDate, noBody, streamed ? undefined : to - from, hasLength, minor, closeAsked)
    size += 16 + this.requestId.length + end.size
    const bodyBytes = body !== undefined && !noBody ? to - from : 0
    const out = new Uint8Array(size + bodyBytes)
    let at = putLatin1(out, 0, 'HTTP/1.1 ')
    at = reason === '' ? putRange(out, at, bytes, 9, statusLineEnd) : putLatin1(out, at, reason)
    at = crlf(out, at)
    // Each run of kept lines in one copy.
    for (let f = 0; f < fields; ) {
      if (kept[f] === 0) {
        f++
        continue
      }
      const from = spans[4 * f]!
      while (f < fields && kept[f] === 1) f++
      // The last line's CRLF is not in `bytes` when the head was copied out of a large read.
      if (f < fields) at = putRange(out, at, bytes, from, spans[4 * f]!)
      else at = crlf(out, putRange(out, at, bytes, from, rawEnd))
    }
    if (announced !== '') at = putFieldLine(out, at, 'content-length', announced)
    putHeadEnd(out, putFieldLine(out, at, 'x-request-id', this.requestId), end, undefined)
    // The body last, in the array's last bytes (its size is exact).
    if (bodyBytes > 0) {
      if (from === 0 && to === body!.byteLength) out.set(body!, size)
      else putRange(out, size, body!, from, to)
    }
    return sharedEncodedHead(out, end)
  }

  /**
   * This answer as an HTTP/2 client gets it (lower-case names, ":status" first, RFC 9113 §8.2):
   * what responseFields would make of `headers` (with the body's Content-Length added after them,
   * for a whole body that has none), coded by the session's encoder straight from the upstream's
   * bytes (encodeWith). Undefined where the list must be used (as encodeHead).
   */
  h2Head(wholeBodyLength: number | undefined): HeadSource | undefined {
    if (!this.untouched) return undefined
    this.wholeLength = wholeBodyLength
    return this
  }

  /** HeadSource: the block encode() would code for the fields h2Head stands for, without making them. */
  encodeWith(encoder: HpackEncoder, headroom: number): Uint8Array {
    const { bytes, spans, end } = this.raw
    const listed = this.listed()
    // Each field's name and value are within the head's bytes, 12 more coded (as encode() counts);
    // ours: ":status", Content-Length twice at most, X-Request-Id, Date.
    encoder.begin(end + 3 * spans.length + this.requestId.length + 200, headroom)
    encoder.status(this.status)
    let hasLength = false
    let hasDate = false
    for (let i = 0; i < spans.length; i += 4) {
      const ns = spans[i]!
      const ne = spans[i + 1]!
      if (this.drops(ns, ne, listed)) continue
      if (isLength(bytes, ns, ne)) {
        // Not on a 304 (responseFields' rule for the list path, which this block must equal).
        if (this.status === 304) continue
        hasLength = true
      }
      const place = COMMON_NAMES.position(bytes, ns, ne)
      if (place === DATE_PLACE) hasDate = true
      if (place >= 0) encoder.common(place, bytes, spans[i + 2]!, spans[i + 3]!)
      else encoder.add(bytes.toString('latin1', ns, ne).toLowerCase(), bytes.toString('latin1', spans[i + 2]!, spans[i + 3]!))
    }
    if (this.keepLength && this.raw.announcedLength !== undefined && this.status !== 304) {
      encoder.add('content-length', String(this.raw.announcedLength))
      hasLength = true
    }
    encoder.add('x-request-id', this.requestId)
    // A proxy that forwards an answer without Date MUST add one (RFC 9110 §6.6.1), as encodeHead does.
    if (!hasDate) encoder.add('date', httpDateNow())
    if (this.wholeLength !== undefined && !hasLength && this.status !== 304) encoder.add('content-length', String(this.wholeLength))
    return encoder.end()
  }

  /**
   * Whether the copies are still exact: the list was not asked for (it may have been changed),
   * nor the reason phrase set, and the status is the upstream's (and 100 or more).
   */
  private get untouched(): boolean {
    return this.pairs === undefined && this.reason === undefined && this.status >= 100 && this.status === this.head.status
  }

  /** Fields a Connection field names beyond the hop-by-hop set: hop-by-hop for this message too (RFC 9110 §7.6.1). */
  private listed(): string[] | undefined {
    return listedByConnection(this.raw.connection)
  }

  /**
   * Whether clientResponseHeaders drops the field whose name is bytes[from, to): hop-by-hop, named
   * by Connection, X-Request-Id, or Content-Length when it is not kept (or not passed on as it
   * came: then announcedLength stands for it, as in the head's list).
   */
  private drops(from: number, to: number, listed: string[] | undefined): boolean {
    const bytes = this.raw.bytes
    if (DROPPED.find(bytes, from, to) !== undefined) return true
    if (listed !== undefined && listed.some((name) => bytesEqualLower(bytes, from, to, name))) return true
    return (!this.keepLength || !this.raw.lengthVerbatim) && isLength(bytes, from, to)
  }
}

function isLength(bytes: Uint8Array, from: number, to: number): boolean {
  return to - from === 14 && bytesEqualLower(bytes, from, to, 'content-length')
}

/** Response field names upstreams usually send, by their place in the list (the encoder's). */
const COMMON_NAMES = new NameTable(COMMON_RESPONSE_NAMES)
const DATE_PLACE = COMMON_RESPONSE_NAMES.indexOf('date')

function crlf(out: Uint8Array, at: number): number {
  out[at] = 0x0d
  out[at + 1] = 0x0a
  return at + 2
}

