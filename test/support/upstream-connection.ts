/**
 * One upstream HTTP/1.1 connection for exchange tests, dialled to a loopback port, with the
 * closers a test file runs after each test (the connection's own, and any server the test adds),
 * and a plain GET to send on it.
 */
import { afterEach } from 'bun:test'
import { Http1Connection } from '../../src/proxy/upstream/connection.ts'
import { dial } from '../../src/runtime/socket.ts'

/** Closers run after each test of the file that called this; `connection` dials 127.0.0.1:port. */
export function upstreamConnections(): { closers: (() => void)[]; connection: (port: number) => Promise<Http1Connection> } {
  const closers: (() => void)[] = []
  afterEach(() => {
    for (const c of closers.splice(0)) c()
  })
  const connection = async (port: number) => {
    const conn = await dial({ address: '127.0.0.1', port, tls: undefined, connectTimeoutMs: 2000 })
    const c = new Http1Connection(conn, () => {})
    closers.push(() => c.destroy())
    return c
  }
  return { closers, connection }
}

/** A GET of / for origin.test, without a body. */
export const GET_REQUEST = { method: 'GET', target: '/', headers: [['host', 'origin.test']] as [string, string][], body: null, bodyLength: undefined, maxBodyBytes: 0 }
