/**
 * HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): an incremental decoder that feeds on socket
 * chunks and hands out body slices without copying (trailers are read, bounded, and dropped), and
 * the encoder of one chunk. Pure:
 * no I/O, so it is table-tested directly.
 */

import { bytesToFill, concatBytes } from '../lib/bytes.ts'
import { TCHAR } from './chars.ts'

const enum State {
  Size,
  SizeLineEnd,
  Data,
  DataCr,
  DataLf,
  Trailer,
  Done,
}

/** A chunk-size line longer than this is an attack, not a chunk size. */
const MAX_LINE_BYTES = 4096

/**
 * Most field lines in a trailer section. HAProxy reads trailers with its header parser, whose
 * tune.http.maxhdr is 101 by default (the start line and 100 fields); Envoy caps a section at 100
 * too. Trailers in use (grpc-status, a checksum, Server-Timing) are a handful.
 */
export const MAX_TRAILER_LINES = 100

/**
 * The trailer section's size limit when the caller gives none: 16 KiB, the default of
 * max_header_size, which the listener applies to request heads (config/fields.ts).
 */
export const DEFAULT_MAX_TRAILER_BYTES = 16 * 1024

export class ChunkedDecodeError extends Error {
  override name = 'ChunkedDecodeError'
}

export class ChunkedDecoder {
  private state = State.Size
  private size = 0
  private sizeDigits = 0
  private lineBytes = 0
  private remaining = 0
  private trailerLineBytes = 0
  private trailerCr = false
  /** Whether the trailer line being read is still in its field name (no colon yet). */
  private trailerInName = true
  /** Bytes of the trailer section read so far (its line ends too), and its field lines. */
  private trailerBytes = 0
  private trailerLines = 0
  /** The chunk-size line after the digits (extensions), checked when its CR arrives. */
  private ext = ''
  /** The data slices of the input being fed, gathered for one emit. */
  private first: Uint8Array | undefined
  private more: Uint8Array[] | undefined

  /**
   * `maxTrailerBytes` bounds the whole trailer section (its field lines, their CRLFs and the empty
   * line that ends it): the request head's limit for a client's body, the response head's for an
   * upstream's. Dropped as the trailers are, without a bound a peer could send field lines for
   * ever on one message, which would then never end (nor time out: bytes keep coming).
   */
  constructor(private readonly maxTrailerBytes = DEFAULT_MAX_TRAILER_BYTES) {}

  get done(): boolean {
    return this.state === State.Done
  }

  /**
   * Decodes as much of `input` as belongs to the body. Calls `emit` with the data in it, if any:
   * a view of `input` for each chunk's data of VIEW_MIN_BYTES or more, and the data of smaller
   * chunks between them gathered into one buffer (a read of 1-byte chunks was 65,536 views and
   * queue entries per 64 KiB, ~100 heap bytes per body byte: a client's memory and CPU attack;
   * nginx too decodes into a buffer the size of the data). Until the thirty-fourth session all of
   * a read's data went into one buffer: a read holding the end of one large chunk and the start of
   * the next was copied whole.
   * Returns the number of bytes consumed; anything after the final chunk is left unconsumed
   * (the caller treats it as a protocol error or the next response).
   */
  feed(input: Uint8Array, emit: (slice: Uint8Array) => void): number {
    let consumed: number
    try {
      consumed = this.decode(input)
    } finally {
      // What came before a framing error is handed on before the error is.
      const first = this.first
      const more = this.more
      this.first = undefined
      this.more = undefined
      if (first !== undefined) {
        if (more === undefined) emit(first)
        else emitGathered([first, ...more], emit)
      }
    }
    return consumed
  }

  private decode(input: Uint8Array): number {
    let i = 0
    const n = input.length
    while (i < n && this.state !== State.Done) {
      switch (this.state) {
        case State.Size: {
          const c = input[i]!
          const v = this.lineBytes === this.sizeDigits ? hexValue(c) : -1
          if (v >= 0) {
            // By value, not by digit count: leading zeros are digits too (1*HEXDIG, RFC 9112 §7.1),
            // and the line's own limit bounds how many come. Sizes stay exact integers.
            if (this.size > MAX_SIZE_BEFORE_DIGIT) throw new ChunkedDecodeError('chunk size too large')
            this.size = this.size * 16 + v
            this.sizeDigits++
          } else if (c === 0x0d) {
            // What follows the size must be chunk extensions (or SP/HTAB only): "5 6" or
            // "5\xa0" would be read differently by a parser that stops at the first non-digit.
            if (this.ext !== '' && !CHUNK_EXT.test(this.ext)) throw new ChunkedDecodeError('invalid chunk extension (RFC 9112 §7.1.1)')
            this.ext = ''
            this.state = State.SizeLineEnd
          } else if (c === 0x0a) {
            throw new ChunkedDecodeError('bare LF in chunk size line')
          } else if (this.sizeDigits === 0) {
            throw new ChunkedDecodeError('invalid chunk size')
          } else {
            this.ext += String.fromCharCode(c)
          }
          if (++this.lineBytes > MAX_LINE_BYTES) throw new ChunkedDecodeError('chunk size line too long')
          i++
          break
        }
        case State.SizeLineEnd: {
          if (input[i] !== 0x0a) throw new ChunkedDecodeError('expected LF after chunk size')
          i++
          if (this.sizeDigits === 0) throw new ChunkedDecodeError('missing chunk size')
          if (this.size === 0) {
            this.state = State.Trailer
            this.trailerLineBytes = 0
            this.trailerInName = true
          } else {
            this.remaining = this.size
            this.state = State.Data
          }
          this.size = 0
          this.sizeDigits = 0
          this.lineBytes = 0
          break
        }
        case State.Data: {
          const take = Math.min(this.remaining, n - i)
          const slice = input.subarray(i, i + take)
          if (this.first === undefined) this.first = slice
          else (this.more ??= []).push(slice)
          i += take
          this.remaining -= take
          if (this.remaining === 0) this.state = State.DataCr
          break
        }
        case State.DataCr:
          if (input[i] !== 0x0d) throw new ChunkedDecodeError('expected CRLF after chunk data')
          this.state = State.DataLf
          i++
          break
        case State.DataLf:
          if (input[i] !== 0x0a) throw new ChunkedDecodeError('expected CRLF after chunk data')
          this.state = State.Size
          i++
          break
        case State.Trailer: {
          // Trailer section: field lines until an empty line, each ended by CRLF (RFC 9112 §7.1.2).
          // Dropped (we do not forward trailers), but read strictly, as a head's field lines are
          // (RFC 9112 §5): a bare CR or LF, obs-fold, a control character, a line without a colon
          // ("GET /x HTTP/1.1", "0"), a name that is not a token or whitespace before the colon
          // could end the message at a different byte in another parser (HAProxy refuses them too).
          const c = input[i]!
          i++
          if (++this.trailerBytes > this.maxTrailerBytes) throw new ChunkedDecodeError(`trailer section larger than ${this.maxTrailerBytes} bytes`)
          if (c === 0x0a) {
            if (!this.trailerCr) throw new ChunkedDecodeError('bare LF in trailer section')
            if (this.trailerLineBytes === 0) this.state = State.Done
            else if (this.trailerInName) throw new ChunkedDecodeError('trailer line without a colon (RFC 9112 §5: field-name ":" field-value)')
            else if (++this.trailerLines > MAX_TRAILER_LINES) throw new ChunkedDecodeError(`more than ${MAX_TRAILER_LINES} trailer field lines`)
            this.trailerLineBytes = 0
            this.trailerCr = false
            this.trailerInName = true
          } else if (this.trailerCr) {
            throw new ChunkedDecodeError('bare CR in trailer section')
          } else if (c === 0x0d) {
            this.trailerCr = true
          } else {
            if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new ChunkedDecodeError('control character in trailer section')
            if (this.trailerLineBytes === 0 && (c === 0x20 || c === 0x09)) throw new ChunkedDecodeError('obsolete line folding in trailer section')
            if (this.trailerInName) {
              if (c === 0x3a) {
                if (this.trailerLineBytes === 0) throw new ChunkedDecodeError('empty field name in trailer section')
                this.trailerInName = false
              } else if (c > 0x7f || TCHAR[c] === 0) {
                throw new ChunkedDecodeError('invalid field name in trailer section (a token, and no whitespace before the colon: RFC 9112 §5.1)')
              }
            }
            if (++this.trailerLineBytes > MAX_LINE_BYTES * 4) throw new ChunkedDecodeError('trailer too large')
          }
          break
        }
      }
    }
    return i
  }
}

/** A chunk's data this large goes on as a view of the read; smaller ones are gathered (feed). */
const VIEW_MIN_BYTES = 4096

/** Emits `slices` in order: each of VIEW_MIN_BYTES or more as it is, each run of smaller ones joined into one buffer. */
function emitGathered(slices: Uint8Array[], emit: (slice: Uint8Array) => void): void {
  let small: Uint8Array[] = []
  for (const slice of slices) {
    if (slice.byteLength < VIEW_MIN_BYTES) {
      small.push(slice)
      continue
    }
    if (small.length > 0) emit(small.length === 1 ? small[0]! : concatBytes(small))
    small = []
    emit(slice)
  }
  if (small.length > 0) emit(small.length === 1 ? small[0]! : concatBytes(small))
}

// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string
// (RFC 9112 §7.1.1, RFC 9110 §5.6.2, §5.6.4). Only SP and HTAB are whitespace; trailing SP/HTAB
// after the size is tolerated (nothing can read it as part of the size). No runaway backtracking:
// every repetition has to consume a ";", and the line is at most MAX_LINE_BYTES.
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+"
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"'
const CHUNK_EXT = new RegExp(`^(?:[ \\t]*;[ \\t]*${TOKEN}(?:[ \\t]*=[ \\t]*(?:${TOKEN}|${QUOTED}))?)*[ \\t]*$`)

/** The largest size another hex digit may follow and leave it at most 2^53-1. */
const MAX_SIZE_BEFORE_DIGIT = Math.floor((Number.MAX_SAFE_INTEGER - 15) / 16)

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}

/** The last chunk with no trailers: the end of a chunked body. */
export const LAST_CHUNK = new TextEncoder().encode('0\r\n\r\n')

/** One chunk of a chunked body (RFC 9112 §7.1): size line, data, CRLF, in one buffer. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = `${data.byteLength.toString(16)}\r\n`
  const out = bytesToFill(size.length + data.byteLength + 2)
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i)
  out.set(data, size.length)
  out[out.length - 2] = 13
  out[out.length - 1] = 10
  return out
}
