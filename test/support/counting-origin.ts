/**
 * A raw-socket HTTP/1.1 origin on loopback that counts request heads and hands each one's socket
 * to the test (`answer(socket, n)`, n counting from 1), so a test can answer, hold, reset or
 * close each request as it likes. Every socket and the server are closed with the harness.
 */
import { createServer, type Socket } from 'node:net'
import type { Harness } from './harness.ts'

export async function countingOrigin(h: Harness, answer: (s: Socket, n: number) => void): Promise<{ port: number; requests: () => number }> {
  let n = 0
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let head = ''
    s.on('data', (d) => {
      if (head.includes('\r\n\r\n')) return
      head += d.toString('latin1')
      if (head.includes('\r\n\r\n')) answer(s, ++n)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  h.track(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { port: (server.address() as { port: number }).port, requests: () => n }
}
