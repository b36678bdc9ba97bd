/**
 * A reply from a stored response. Its list of fields is what a reply from the store always
 * carries: the stored fields but Age, Content-Length, X-Request-Id and Cache-Status, then this
 * reply's Age, Content-Length, X-Request-Id and Cache-Status (reply.ts answerFromStore). The
 * stored part is the same on every hit, so it is encoded once per stored response, and the
 * HTTP/1.1 writer copies it (encodeHead) with this reply's own lines, and HTTP/2 codes its HPACK
 * block from it (h2Head: the names lower-cased and the fields HTTP/2 drops left out once per
 * stored response); anyone else (the runtime listeners) asks for `headers` and gets the list, and
 * from then on the list is used.
 */
import { headEnd, isBodiless, putHeadEnd, sharedEncodedHead, type EncodedHead } from '../../http1/response-encode.ts'
import { statusText as defaultStatusText } from '../../http1/status-text.ts'
import type { HeadSource, HpackEncoder } from '../../http2/hpack.ts'
import { CONNECTION_SPECIFIC } from '../../http2/request.ts'
import { putFieldLine, putLatin1 } from '../../lib/bytes.ts'
import { httpDateNow } from '../../lib/clock.ts'
import type { ProxyReply } from '../message.ts'
import type { Headers_ } from './policy.ts'

/** The stored fields every reply carries unchanged, encoded, and what the writer needs to know of them. */
interface StoredBlock {
  kept: (readonly [string, string])[]
  /** "name: value\r\n" for each of `kept`. */
  bytes: Uint8Array
  hasDate: boolean
  /** The stored Cache-Status values, joined (ours goes after them). */
  prior: string | undefined
  /** No field the writer treats apart (Connection, Transfer-Encoding): the copy is exact. */
  plain: boolean
  /** `kept` as HTTP/2 sends them (http2/request.ts responseFields): lower-case names, no connection-specific field or TE; made at the first HTTP/2 hit. */
  h2: { names: string[]; values: string[] } | undefined
}

/** Per stored field list (a stored response's, never changed once stored). */
const blocks = new WeakMap<Headers_, StoredBlock>()

function blockOf(stored: Headers_): StoredBlock {
  const known = blocks.get(stored)
  if (known) return known
  const kept: (readonly [string, string])[] = []
  let prior: string | undefined
  let hasDate = false
  let plain = true
  let size = 0
  for (const pair of stored) {
    const lower = pair[0].toLowerCase()
    if (lower === 'age' || lower === 'content-length' || lower === 'x-request-id') continue
    if (lower === 'cache-status') {
      prior = prior === undefined ? pair[1] : `${prior}, ${pair[1]}`
      continue
    }
    if (lower === 'date') hasDate = true
    if (lower === 'connection' || lower === 'transfer-encoding') plain = false
    kept.push(pair)
    size += pair[0].length + pair[1].length + 4
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const [name, value] of kept) at = putFieldLine(bytes, at, name, value)
  const block = { kept, bytes, hasDate, prior, plain, h2: undefined }
  blocks.set(stored, block)
  return block
}

/** A plain block's fields as responseFields sends them (a plain block has no Connection field, so none is dropped by one). */
function h2Fields(block: StoredBlock): { names: string[]; values: string[] } {
  const names: string[] = []
  const values: string[] = []
  for (const [name, value] of block.kept) {
    const lower = name.toLowerCase()
    if (CONNECTION_SPECIFIC.has(lower) || lower === 'te' || lower.charCodeAt(0) === 58) continue
    names.push(lower)
    values.push(value)
  }
  return { names, values }
}

export class StoredReply implements ProxyReply, HeadSource {
  private pairs: [string, string][] | undefined
  /** h2Head's whole body length. */
  private wholeLength: number | undefined

  constructor(
    public status: number,
    public statusText: string,
    private readonly stored: Headers_,
    private readonly ageS: string,
    /** The stored body's length (the Content-Length this reply lists), when known. */
    private readonly bodyLength: number | undefined,
    private readonly requestId: string,
    /** Our Cache-Status entry (formatCacheStatus). */
    private readonly ours: string,
    public body: ProxyReply['body'],
  ) {}

  /** The list: stored fields (but the four), Age, Content-Length (not on a 204), X-Request-Id, Cache-Status. */
  get headers(): [string, string][] {
    if (this.pairs) return this.pairs
    const block = blockOf(this.stored)
    const out = block.kept.slice() as [string, string][]
    out.push(['age', this.ageS])
    if (this.listedLength !== undefined) out.push(['content-length', this.listedLength])
    out.push(['x-request-id', this.requestId], ['cache-status', this.cacheStatus(block)])
    return (this.pairs = out)
  }
  set headers(list: [string, string][]) {
    this.pairs = list
  }

  private get listedLength(): string | undefined {
    // No Content-Length on a 204 (RFC 9110 §8.6).
    return this.bodyLength !== undefined && this.status !== 204 ? String(this.bodyLength) : undefined
  }

  private cacheStatus(block: StoredBlock): string {
    return block.prior === undefined ? this.ours : `${block.prior}, ${this.ours}`
  }

  /**
   * HTTP/2: the block the list path codes (h2-client.ts withDateAndLength, then responseFields)
   * coded without the list; undefined where the list must be used (asked for, so maybe changed;
   * a Connection or Transfer-Encoding field stored; a status below 200).
   */
  h2Head(wholeBodyLength: number | undefined): HeadSource | undefined {
    if (this.pairs !== undefined || this.status < 200 || !blockOf(this.stored).plain) return undefined
    this.wholeLength = wholeBodyLength
    return this
  }

  /** HeadSource: the list's fields in its order, then Date and Content-Length where withDateAndLength adds them. */
  encodeWith(encoder: HpackEncoder, headroom: number): Uint8Array {
    const block = blockOf(this.stored)
    const { names, values } = (block.h2 ??= h2Fields(block))
    const listed = this.listedLength
    const cacheStatus = this.cacheStatus(block)
    const notModified = this.status === 304
    // Each name and value's length + 12 (as encode() counts), for ours and the stored ones.
    encoder.begin(block.bytes.byteLength + 12 * names.length + this.ageS.length + this.requestId.length + cacheStatus.length + 300, headroom)
    encoder.status(this.status)
    for (let i = 0; i < names.length; i++) encoder.add(names[i]!, values[i]!)
    encoder.add('age', this.ageS)
    if (listed !== undefined && !notModified) encoder.add('content-length', listed)
    encoder.add('x-request-id', this.requestId)
    encoder.add('cache-status', cacheStatus)
    if (!block.hasDate) encoder.add('date', httpDateNow())
    if (this.wholeLength !== undefined && listed === undefined && !notModified) encoder.add('content-length', String(this.wholeLength))
    return encoder.end()
  }

  /**
   * The head planResponseHead writes for the list (and `body` after it, when whole), with the
   * stored part copied; undefined when the list was asked for (it may have changed) or the stored
   * fields hold one the writer treats apart.
   */
  encodeHead(method: string, minor: number, closeAsked: boolean, body: Uint8Array | undefined): EncodedHead | undefined {
    if (this.pairs !== undefined || this.status < 100) return undefined
    const block = blockOf(this.stored)
    if (!block.plain) return undefined
    const noBody = isBodiless(method, this.status)
    const streamed = body === undefined
    const listed = this.listedLength
    // The listed length stays where it is for a stream or a bodiless answer; a whole body gets its own, after Date.
    const inPlace = listed !== undefined && (streamed || noBody) ? listed : ''
    const status = String(this.status)
    const reason = this.statusText || defaultStatusText(this.status)
    const cacheStatus = this.cacheStatus(block)
    const end = headEnd(block.hasDate, noBody, body?.byteLength, listed !== undefined, minor, closeAsked)
    const size =
      9 + status.length + 1 + reason.length + 2 + block.bytes.byteLength + 7 + this.ageS.length + (inPlace === '' ? 0 : 18 + inPlace.length) + 16 + this.requestId.length +
      16 + cacheStatus.length + end.size
    const bodyBytes = !streamed && !noBody ? body.byteLength : 0
    const out = new Uint8Array(size + bodyBytes)
    // The status line in pieces (no string joined per reply).
    let at = putLatin1(out, putLatin1(out, 0, 'HTTP/1.1 '), status)
    out[at++] = 0x20
    at = putLatin1(out, at, reason)
    out[at++] = 0x0d
    out[at++] = 0x0a
    out.set(block.bytes, at)
    at = putFieldLine(out, at + block.bytes.byteLength, 'age', this.ageS)
    if (inPlace !== '') at = putFieldLine(out, at, 'content-length', inPlace)
    at = putFieldLine(out, at, 'x-request-id', this.requestId)
    at = putFieldLine(out, at, 'cache-status', cacheStatus)
    putHeadEnd(out, at, end, bodyBytes > 0 ? body : undefined)
    return sharedEncodedHead(out, end)
  }
}
