/**
 * A hand-driven HTTP/2 client for session tests: it builds frames byte by byte (including ones a
 * real client would never send) and feeds them to a ServerSession over an in-memory transport,
 * then parses what the session wrote back.
 */
import { frame, FrameType, Flag, PREFACE, settingsFrame, type SettingsList } from '../../../src/http2/frames.ts'
import { HpackDecoder, HpackEncoder, type HeaderField } from '../../../src/http2/hpack.ts'
import type { Http2Limits } from '../../../src/http2/limits.ts'
import { ServerSession } from '../../../src/http2/session.ts'
import type { Refused } from '../../../src/http2/refused.ts'
import type { ServerStream } from '../../../src/http2/stream.ts'
import { concatBytes } from '../../../src/lib/bytes.ts'
import { FrameSplitter } from './frame-splitter.ts'

export interface RxFrame {
  type: number
  flags: number
  streamId: number
  payload: Uint8Array
  /** Decoded header block, for HEADERS. */
  headers?: HeaderField[]
  /** Which of the session's writes carried it (1, 2, ...). */
  write?: number
  /** performance.now() when it was written. */
  at?: number
}

export class RawClient {
  readonly session: ServerSession
  readonly requests: ServerStream[] = []
  /** What the session told its owner it refused itself (onRefused). */
  readonly refused: Refused[] = []
  readonly frames: RxFrame[] = []
  closed = false
  /** What write() returns: false simulates a client that stops reading. */
  writable = true
  bytesWritten = 0
  /** The session's writes so far. */
  writes = 0
  private readonly rx = new FrameSplitter()
  private readonly enc = new HpackEncoder(4096)
  private readonly dec = new HpackDecoder(65536, 1 << 20)
  now = 0

  constructor(opts: { limits?: Partial<Http2Limits>; onRequest?: (s: ServerStream) => void; onError?: (err: unknown) => void; onHeadTimeout?: () => void } = {}) {
    this.session = new ServerSession({
      write: (b) => {
        this.bytesWritten += b.byteLength
        this.writes++
        this.parse(b)
        return this.writable
      },
      close: () => {
        this.closed = true
      },
      onRequest: (s) => {
        this.requests.push(s)
        opts.onRequest?.(s)
      },
      onRefused: (r) => void this.refused.push(r),
      onError: opts.onError,
      onHeadTimeout: opts.onHeadTimeout,
      limits: opts.limits,
      now: () => this.now,
    })
  }

  /** Preface and an empty SETTINGS. */
  start(settings: SettingsList = []): this {
    this.send(PREFACE, settingsFrame(settings))
    return this
  }

  send(...parts: Uint8Array[]): void {
    this.session.receive(concatBytes(parts))
  }

  /** A HEADERS frame for a request (fields encoded with a real HPACK encoder). */
  headers(streamId: number, fields: HeaderField[], endStream = true): Uint8Array {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, this.enc.encode(fields))
  }

  get(streamId: number, path = '/', extra: HeaderField[] = [], endStream = true): Uint8Array {
    return this.headers(streamId, [[':method', endStream ? 'GET' : 'POST'], [':scheme', 'https'], [':authority', 'example.test'], [':path', path], ...extra], endStream)
  }

  data(streamId: number, bytes: Uint8Array, endStream = false): Uint8Array {
    return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, bytes)
  }

  /** Lets queued microtasks (the session's flush) run. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await Promise.resolve()
    await Bun.sleep(0)
  }

  ofType(type: number, streamId?: number): RxFrame[] {
    return this.frames.filter((f) => f.type === type && (streamId === undefined || f.streamId === streamId))
  }

  goaway(): { lastStreamId: number; code: number } | undefined {
    const g = this.ofType(FrameType.GOAWAY)[0]
    if (!g) return undefined
    const v = new DataView(g.payload.buffer, g.payload.byteOffset, g.payload.byteLength)
    return { lastStreamId: v.getUint32(0) & 0x7fffffff, code: v.getUint32(4) }
  }

  rstCode(streamId: number): number | undefined {
    const r = this.ofType(FrameType.RST_STREAM, streamId)[0]
    return r ? new DataView(r.payload.buffer, r.payload.byteOffset, 4).getUint32(0) : undefined
  }

  status(streamId: number): string | undefined {
    return this.ofType(FrameType.HEADERS, streamId)[0]?.headers?.find(([n]) => n === ':status')?.[1]
  }

  bodyOf(streamId: number): string {
    return this.ofType(FrameType.DATA, streamId).map((f) => Buffer.from(f.payload).toString('latin1')).join('')
  }

  private parse(b: Uint8Array): void {
    this.rx.push(b, (h, payload) => {
      const f: RxFrame = { type: h.type, flags: h.flags, streamId: h.streamId, payload, write: this.writes, at: performance.now() }
      if (h.type === FrameType.HEADERS) f.headers = this.dec.decode(payload).fields
      this.frames.push(f)
    })
  }
}
