/**
 * An HTTPS/1.1 origin of one answer per connection, for tests of the upstream TLS dial: node:tls
 * with the given options, `onRequest` called with each connection's socket when its request
 * arrives (what a test records: SNI, ALPN, resumption), then "ok" and the close. Loopback only;
 * `track` gets what closes the server and every connection.
 */
import { createServer, type TlsOptions, type TLSSocket } from 'node:tls'

export async function oneAnswerTlsOrigin(options: TlsOptions, onRequest: (s: TLSSocket) => void, track: (close: () => void) => void): Promise<number> {
  const sockets = new Set<TLSSocket>()
  const server = createServer(options, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.once('data', () => {
      onRequest(s)
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
    })
  })
  server.on('tlsClientError', () => {})
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as { port: number }).port
}
