/**
 * A raw HTTP/2 client on a TLS listener (ALPN h2) for integration tests: frames are built by hand
 * (including ones a real client would never send), and the server's frames are read back, header
 * blocks decoded. The session-level twin over an in-memory transport is test/http2/support/raw-client.ts.
 */
import { connect, type TLSSocket } from 'node:tls'
import { frame, Flag, FrameType, PREFACE, settingsFrame } from '../../src/http2/frames.ts'
import { HpackDecoder, HpackEncoder, type HeaderField } from '../../src/http2/hpack.ts'
import { FrameSplitter } from '../http2/support/frame-splitter.ts'
import type { RxFrame } from '../http2/support/raw-client.ts'
import type { Harness } from './harness.ts'

export class RawH2Tls {
  readonly frames: RxFrame[] = []
  closed = false
  private readonly enc = new HpackEncoder(4096)
  private readonly dec = new HpackDecoder(65_536, 1 << 20)

  private constructor(private readonly sock: TLSSocket) {
    const rx = new FrameSplitter()
    sock.on('data', (d: Buffer) =>
      rx.push(d, (h, payload) => {
        const f: RxFrame = { type: h.type, flags: h.flags, streamId: h.streamId, payload }
        if (h.type === FrameType.HEADERS) f.headers = this.dec.decode(payload).fields
        this.frames.push(f)
      }),
    )
    sock.on('close', () => (this.closed = true))
    sock.on('error', () => {})
  }

  /** Connects, checks that h2 was negotiated, and sends the preface with an empty SETTINGS. Closed with the harness. */
  static async connect(h: Harness, port: number, ca: string): Promise<RawH2Tls> {
    const sock = connect({ host: '127.0.0.1', port, ca, servername: 'proxy.test', ALPNProtocols: ['h2'] })
    h.track(() => void sock.destroy())
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve())
      sock.once('error', reject)
    })
    if (sock.alpnProtocol !== 'h2') throw new Error(`ALPN chose ${sock.alpnProtocol}, not h2`)
    const c = new RawH2Tls(sock)
    c.send(PREFACE, settingsFrame([]))
    return c
  }

  /** Drops the connection (no GOAWAY, no close_notify). */
  destroy(): void {
    this.sock.destroy()
  }

  send(...parts: Uint8Array[]): void {
    for (const p of parts) this.sock.write(p)
  }

  /** A HEADERS frame (END_HEADERS) with `fields` coded by a real HPACK encoder. */
  headers(streamId: number, fields: HeaderField[], endStream: boolean): Uint8Array {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, this.enc.encode(fields))
  }

  /** A request head for https://proxy.test`path`. */
  request(streamId: number, method: string, path: string, extra: HeaderField[] = [], endStream = true): Uint8Array {
    return this.headers(streamId, [[':method', method], [':scheme', 'https'], [':authority', 'proxy.test'], [':path', path], ...extra], endStream)
  }

  data(streamId: number, bytes: Uint8Array | string, endStream = false): Uint8Array {
    return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes)
  }

  /**
   * Sends `bytes` of body on `streamId` in DATA frames of at most `frameBytes`, within the windows
   * the server gave (its SETTINGS_INITIAL_WINDOW_SIZE and WINDOW_UPDATEs, stream and connection),
   * as a real client does: waits for credit up to `timeoutMs` in all, then throws. With `end`, the
   * last frame carries END_STREAM.
   */
  async sendBody(streamId: number, bytes: number, end: boolean, frameBytes = 10_000, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let sent = 0
    const credit = (id: number) => {
      let n = id === 0 ? 65_535 : this.initialWindow()
      for (const f of this.frames) if (f.type === FrameType.WINDOW_UPDATE && f.streamId === id) n += new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0) & 0x7fffffff
      return n
    }
    while (sent < bytes) {
      const room = Math.min(credit(0) - this.connectionSent, credit(streamId) - (this.streamSent.get(streamId) ?? 0), frameBytes, bytes - sent)
      if (room <= 0) {
        if (Date.now() > deadline) throw new Error(`no window credit for stream ${streamId} after ${sent} of ${bytes} bytes`)
        await Bun.sleep(5)
        continue
      }
      this.send(this.data(streamId, new Uint8Array(room).fill(0x61), end && sent + room === bytes))
      sent += room
      this.connectionSent += room
      this.streamSent.set(streamId, (this.streamSent.get(streamId) ?? 0) + room)
    }
  }

  private connectionSent = 0
  private readonly streamSent = new Map<number, number>()

  /** The server's SETTINGS_INITIAL_WINDOW_SIZE (65,535 until its SETTINGS came). */
  private initialWindow(): number {
    const s = this.frames.find((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0)
    for (let i = 0; s && i + 6 <= s.payload.byteLength; i += 6) {
      const v = new DataView(s.payload.buffer, s.payload.byteOffset + i)
      if (v.getUint16(0) === 4) return v.getUint32(2)
    }
    return 65_535
  }

  /** The :status of each HEADERS frame on `streamId`, interim ones included, in order. */
  statuses(streamId: number): string[] {
    return this.frames.filter((f) => f.type === FrameType.HEADERS && f.streamId === streamId).map((f) => f.headers?.find(([n]) => n === ':status')?.[1] ?? '')
  }

  /** Field `name` of the final response head on `streamId` (the last HEADERS with a :status of 200 or more). */
  headerOf(streamId: number, name: string): string | undefined {
    const heads = this.frames.filter((f) => f.type === FrameType.HEADERS && f.streamId === streamId && Number(f.headers?.find(([n]) => n === ':status')?.[1]) >= 200)
    return heads.at(-1)?.headers?.find(([n]) => n === name)?.[1]
  }

  /** Whether the server ended `streamId` (END_STREAM or RST_STREAM). */
  ended(streamId: number): boolean {
    return this.frames.some((f) => f.streamId === streamId && ((f.flags & Flag.END_STREAM) !== 0 || f.type === FrameType.RST_STREAM))
  }

  bodyOf(streamId: number): string {
    return this.frames
      .filter((f) => f.type === FrameType.DATA && f.streamId === streamId)
      .map((f) => Buffer.from(f.payload).toString('latin1'))
      .join('')
  }

  /** The RST_STREAM error codes received on `streamId`. */
  resets(streamId: number): number[] {
    return this.frames.filter((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId).map((f) => new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0))
  }

  goaway(): number | undefined {
    const g = this.frames.find((f) => f.type === FrameType.GOAWAY)
    return g ? new DataView(g.payload.buffer, g.payload.byteOffset).getUint32(4) : undefined
  }
}
