/**
 * A raw-socket HTTP/1.1 origin for front-door tests: it records each request exactly as the
 * bytes arrived (request line, header lines, body), so a test can see whether a proxy kept the
 * target byte for byte, which a Bun.serve origin cannot show (it normalises the URL). It answers
 * "<method> <target>" with a Content-Length, decodes Content-Length and chunked bodies, and
 * accepts a WebSocket upgrade (RFC 6455 §4.2.2), then records every byte of the tunnel. A test
 * may answer (or not) itself (`start(answer)`), and reach each connection it accepted, in order.
 * Loopback only; close() ends the server and every connection.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'

export interface RawRequest {
  method: string
  target: string
  version: string
  /** Header lines as received, "Name: value". */
  headers: string[]
  body: string
  /** Bytes received after a 101, latin1. */
  tunnel: string
}

/** A test's own answer to a request (instead of "<method> <target>"): it writes to `socket`, or ends it, or does nothing. */
export type RawAnswer = (req: RawRequest, socket: Socket) => void

export class RawOrigin {
  readonly requests: RawRequest[] = []
  /** Every connection accepted, in order (closed ones too). */
  readonly accepted: Socket[] = []
  private readonly server: Server
  private readonly sockets = new Set<Socket>()

  private constructor(readonly port: number, server: Server, private readonly answer: RawAnswer | undefined) {
    this.server = server
  }

  static start(answer?: RawAnswer): Promise<RawOrigin> {
    return new Promise((resolve, reject) => {
      let origin: RawOrigin
      const server = createServer((s) => origin.serve(s))
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        origin = new RawOrigin((server.address() as { port: number }).port, server, answer)
        resolve(origin)
      })
    })
  }

  header(req: RawRequest, name: string): string | undefined {
    const prefix = `${name.toLowerCase()}:`
    const line = req.headers.find((l) => l.toLowerCase().startsWith(prefix))
    return line?.slice(prefix.length).replace(/^[ \t]+|[ \t]+$/g, '')
  }

  close(): void {
    for (const s of this.sockets) s.destroy()
    this.server.close()
  }

  private serve(s: Socket): void {
    this.accepted.push(s)
    this.sockets.add(s)
    s.on('close', () => this.sockets.delete(s))
    s.on('error', () => {})
    let buf = ''
    let tunnel: RawRequest | undefined
    s.on('data', (d) => {
      if (tunnel) {
        tunnel.tunnel += d.toString('latin1')
        return
      }
      buf += d.toString('latin1')
      // Bounded: every pass either consumes a whole request or waits for more bytes.
      for (let guard = 0; guard < 64; guard++) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const lines = buf.slice(0, end).split('\r\n')
        const [method = '', target = '', version = ''] = lines[0]!.split(' ')
        const req: RawRequest = { method, target, version, headers: lines.slice(1), body: '', tunnel: '' }
        let rest = buf.slice(end + 4)
        const length = this.header(req, 'content-length')
        if (length !== undefined) {
          const n = Number(length)
          if (rest.length < n) return
          req.body = rest.slice(0, n)
          rest = rest.slice(n)
        } else if (this.header(req, 'transfer-encoding')?.toLowerCase() === 'chunked') {
          const decoded = decodeChunked(rest)
          if (!decoded) return
          req.body = decoded.body
          rest = rest.slice(decoded.used)
        }
        buf = rest
        this.requests.push(req)
        const key = this.header(req, 'sec-websocket-key')
        if (this.header(req, 'upgrade')?.toLowerCase() === 'websocket' && key) {
          const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
          tunnel = req
          req.tunnel = buf
          buf = ''
          return
        }
        if (this.answer) {
          this.answer(req, s)
          continue
        }
        const body = `${method} ${target}`
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`, 'latin1')
      }
    })
  }
}

/** A whole chunked body at the start of `s`, or undefined while incomplete (trailers ignored). */
function decodeChunked(s: string): { body: string; used: number } | undefined {
  let pos = 0
  let body = ''
  for (let guard = 0; guard < 10_000; guard++) {
    const eol = s.indexOf('\r\n', pos)
    if (eol < 0) return undefined
    const size = Number.parseInt(s.slice(pos, eol), 16)
    if (size === 0) {
      const end = s.indexOf('\r\n\r\n', eol)
      return end < 0 ? undefined : { body, used: end + 4 }
    }
    if (s.length < eol + 2 + size + 2) return undefined
    body += s.slice(eol + 2, eol + 2 + size)
    pos = eol + 2 + size + 2
  }
  return undefined
}
