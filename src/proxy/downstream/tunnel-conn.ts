/**
 * A client connection seen as a runtime Conn, for the upgrade tunnel that takes it over: writes
 * go through the connection's write queue, reads are paused and resumed on its socket, and its
 * close reaches the tunnel's handlers once.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'bun'
import { NOOP_HANDLERS, type Conn, type ConnHandlers } from '../../runtime/socket.ts'
import type { ReplyWriter } from './reply-writer.ts'

/** What the tunnel needs of the connection it takes over. */
export interface TunnelOwner {
  readonly writer: Pick<ReplyWriter, 'write' | 'endWhenFlushed' | 'unsentBytes'>
  destroy(): void
  readonly isClosed: boolean
}

export class TunnelConn implements Conn {
  handlers: ConnHandlers = NOOP_HANDLERS
  closed = false
  readonly createdAtMonoMs = performance.now()
  readonly timings = { startAt: 0, connectAt: 0, tlsAt: undefined }
  constructor(
    private readonly sock: Socket<unknown>,
    readonly remoteAddress: string,
    private readonly owner: TunnelOwner,
  ) {}
  write(data: Uint8Array | string): boolean {
    return this.owner.writer.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
  }
  pause(): void {
    this.sock.pause()
  }
  resume(): void {
    this.sock.resume()
  }
  end(): void {
    if (!this.owner.isClosed) this.owner.writer.endWhenFlushed()
  }
  destroy(): void {
    this.owner.destroy()
  }
  get unsentBytes(): number {
    return this.owner.writer.unsentBytes
  }
  tlsInfo() {
    return undefined
  }
  markClosed(err: Error | undefined): void {
    if (this.closed) return
    this.closed = true
    this.handlers.close(err)
  }
}
