/**
 * The runtime's floor for bench-peers.ts: a bare byte relay on Bun.listen + Bun.connect, one
 * upstream connection per client connection, no HTTP parsing at all. No proxy built on Bun can
 * do less work per request, so its row shows how far the proxy is from the runtime's limit.
 *
 *   bun scripts/floor-relay.ts <listen-port> <upstream-port>
 *
 * Loopback only; runs until killed.
 */
import type { Socket } from 'bun'

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number)
if (!listenPort || !upstreamPort) {
  console.error('usage: bun scripts/floor-relay.ts <listen-port> <upstream-port>')
  process.exit(2)
}

interface Side {
  peer: Socket<Side> | undefined
  /** Bytes the peer did not take yet. */
  queue: Uint8Array[]
  pendingFromClient: Uint8Array[]
}

function send(to: Socket<Side>, from: Socket<Side>, data: Uint8Array): void {
  const q = to.data.queue
  if (q.length > 0) {
    q.push(data)
    return
  }
  const n = to.write(data)
  if (n < data.byteLength) {
    q.push(data.subarray(Math.max(0, n)))
    from.pause()
  }
}

function flush(s: Socket<Side>): void {
  const q = s.data.queue
  while (q.length > 0) {
    const head = q[0]!
    const n = s.write(head)
    if (n < head.byteLength) {
      q[0] = head.subarray(Math.max(0, n))
      return
    }
    q.shift()
  }
  s.data.peer?.resume()
}

Bun.listen<Side>({
  hostname: '127.0.0.1',
  port: listenPort,
  socket: {
    open(client) {
      client.data = { peer: undefined, queue: [], pendingFromClient: [] }
      void Bun.connect<Side>({
        hostname: '127.0.0.1',
        port: upstreamPort,
        socket: {
          open(up) {
            up.data = { peer: client, queue: [], pendingFromClient: [] }
            client.data.peer = up
            for (const b of client.data.pendingFromClient.splice(0)) send(up, client, b)
          },
          data(up, chunk) {
            send(client, up, chunk)
          },
          drain: flush,
          close() {
            client.end()
          },
          error() {
            client.end()
          },
        },
      }).catch(() => client.end())
    },
    data(client, chunk) {
      const up = client.data.peer
      if (up) send(up, client, chunk)
      else client.data.pendingFromClient.push(new Uint8Array(chunk))
    },
    drain: flush,
    close(client) {
      client.data.peer?.end()
    },
    error(client) {
      client.data.peer?.end()
    },
  },
})
