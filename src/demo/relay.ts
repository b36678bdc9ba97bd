/**
 * A user-space "far network" for the demo: a TCP relay that delays every chunk by a one-way
 * delay in each direction, so that anything needing a round trip (the TLS handshake, each
 * request) pays the RTT. The TCP handshake with the relay itself is local: CONNECT cannot be
 * slowed this way (that needs tc netem in a network namespace).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface RelayOptions {
  host: string
  port: number
  targetHost: string
  targetPort: number
  oneWayDelayMs: number
}

export class DelayRelay {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  connections = 0

  constructor(private readonly opts: RelayOptions) {}

  get port(): number {
    const a = this.server?.address()
    return a && typeof a === 'object' ? a.port : 0
  }

  async start(): Promise<this> {
    const server = createServer((client) => this.relay(client))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, this.opts.host, () => resolve())
    })
    this.server = server
    return this
  }

  private relay(client: Socket): void {
    this.connections++
    const upstream = connect(this.opts.targetPort, this.opts.targetHost)
    for (const s of [client, upstream]) {
      this.sockets.add(s)
      s.setNoDelay(true)
      s.on('close', () => this.sockets.delete(s))
      s.on('error', () => {})
    }
    const later = (fn: () => void) => setTimeout(fn, this.opts.oneWayDelayMs)
    client.on('data', (d) => later(() => upstream.writable && upstream.write(d)))
    upstream.on('data', (d) => later(() => client.writable && client.write(d)))
    client.on('end', () => later(() => upstream.end()))
    upstream.on('end', () => later(() => client.end()))
    client.on('close', () => later(() => upstream.destroy()))
    upstream.on('close', () => later(() => client.destroy()))
  }

  /** Stops accepting and cuts every relayed connection (a node that went away). */
  close(): void {
    this.server?.close()
    this.server = undefined
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }
}
