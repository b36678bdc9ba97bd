/**
 * TLS whose certificate can change while the listener stays open, for Bun.listen. Measured on
 * Bun 1.4.5 (see the README, "Automatic HTTPS"): TCPSocketListener.reload({ tls }) is accepted
 * but ignored; Bun.listen refuses a `tls` array (no SNI list, unlike Bun.serve); `tls: {}`
 * listens in plain text. What works is a plain listener whose open() calls
 * socket.upgradeTLS({ tls, socket }) as the server side, with the certificate current at that
 * moment: new connections get the new certificate and open ones keep theirs, with no listener
 * swap. Until a certificate exists, a connection's first bytes (its ClientHello) are answered
 * with a fatal TLS alert, so clients report a TLS failure rather than a reset or a hang; how many
 * such connections may wait for their ClientHello is bounded (the listener's max_connections
 * counts only connections that reached it, which these have not). Plain HTTP sent to this port
 * (http://host:443/) is answered with a plain-text 400 that says to use https, as nginx does:
 * the plain socket still sees the first bytes, and a request line cannot begin a TLS record.
 */
import type { Socket, SocketHandler } from 'bun'
import { SERVER_CIPHERS } from './tls-policy.ts'

export type CertSource = () => { cert: string; key: string } | undefined

/**
 * TLS alert record (RFC 8446 §5.1, §6): content type alert (21), legacy version 3.3, length 2,
 * fatal (2), internal_error (80). Go's crypto/tls (so Caddy) sends internal_error too when it
 * has no certificate; clients show e.g. "tlsv1 alert internal error".
 */
const NO_CERTIFICATE_ALERT = Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50)
/** How long a connection that has not sent its ClientHello is kept while there is no certificate. */
const NO_CERTIFICATE_WAIT_S = 10
/** Most connections waiting that way at once; a newcomer beyond it is closed at accept. */
const MAX_WAITING_NO_CERTIFICATE = 64

const PLAIN_HTTP_BODY = '400 a plain HTTP request was sent to this HTTPS port; use https://\n'
/** nginx's "The plain HTTP request was sent to HTTPS port", in the proxy's words; the connection closes. */
const PLAIN_HTTP_ANSWER = new TextEncoder().encode(
  `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${PLAIN_HTTP_BODY.length}\r\nconnection: close\r\n\r\n${PLAIN_HTTP_BODY}`,
)

/**
 * Whether a connection's first bytes are plain HTTP rather than TLS: a request line begins with
 * a method, a token (RFC 9110 §9.1) whose first letter is in practice A-Z, where a TLS record
 * begins with its content type (20-24, RFC 8446 §5.1) and an SSLv2-format hello with 0x80 or more.
 */
function isPlainHttp(first: Uint8Array): boolean {
  return first.length > 0 && first[0]! >= 0x41 && first[0]! <= 0x5a
}

/**
 * Wraps the handlers of a TLS listener so that the listener itself is opened without `tls`:
 * each accepted connection is upgraded with `source()`'s certificate and then served by
 * `handlers` exactly as if the listener had been opened with that certificate.
 */
export function perConnectionTls<T>(handlers: SocketHandler<T>, source: CertSource, opts: { onRefused?: () => void; alpn?: string; maxWaiting?: number } = {}): SocketHandler<boolean> {
  // The raw socket's data: true until its first bytes have been looked at (plain HTTP is
  // answered; a connection in `waiting` is refused for want of a certificate). Measured: after
  // upgradeTLS the raw socket's data() still sees the bytes, encrypted ones included, so it
  // must ignore them once it has looked.
  const maxWaiting = opts.maxWaiting ?? MAX_WAITING_NO_CERTIFICATE
  const waiting = new Set<Socket<boolean>>()
  return {
    binaryType: 'buffer',
    open(raw: Socket<boolean>) {
      const pem = source()
      raw.data = true
      if (!pem) {
        if (waiting.size >= maxWaiting) {
          raw.data = false
          return void raw.end()
        }
        waiting.add(raw)
        raw.timeout(NO_CERTIFICATE_WAIT_S)
        return
      }
      raw.upgradeTLS<T>({ tls: { cert: pem.cert, key: pem.key, ciphers: SERVER_CIPHERS, ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}) } as { cert: string; key: string }, socket: handlers })
    },
    data(raw: Socket<boolean>, chunk: Uint8Array) {
      if (!raw.data) return
      raw.data = false
      const wasWaiting = waiting.delete(raw)
      // The TLS side, given the same bytes, fails its handshake without a word (BoringSSL's
      // HTTP_REQUEST error); this answer goes out first, on the plain socket.
      if (isPlainHttp(chunk)) return void raw.end(PLAIN_HTTP_ANSWER)
      if (!wasWaiting) return
      opts.onRefused?.()
      raw.end(NO_CERTIFICATE_ALERT)
    },
    timeout(raw: Socket<boolean>) {
      if (!waiting.delete(raw)) return
      raw.data = false
      raw.end()
    },
    close(raw: Socket<boolean>) {
      waiting.delete(raw)
    },
    error() {},
  }
}
