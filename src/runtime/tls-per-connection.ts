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
 * counts only connections that reached it, which these have not).
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

/**
 * Wraps the handlers of a TLS listener so that the listener itself is opened without `tls`:
 * each accepted connection is upgraded with `source()`'s certificate and then served by
 * `handlers` exactly as if the listener had been opened with that certificate.
 */
export function perConnectionTls<T>(handlers: SocketHandler<T>, source: CertSource, opts: { onRefused?: () => void; alpn?: string; maxWaiting?: number } = {}): SocketHandler<boolean> {
  // The raw socket's data: true while it waits to be refused for want of a certificate (counted
  // in `waiting`). Measured: after upgradeTLS the raw socket's data() still sees the encrypted
  // bytes, so it must ignore them.
  const maxWaiting = opts.maxWaiting ?? MAX_WAITING_NO_CERTIFICATE
  let waiting = 0
  const stopWaiting = (raw: Socket<boolean>) => {
    if (!raw.data) return
    raw.data = false
    waiting--
  }
  return {
    binaryType: 'buffer',
    open(raw: Socket<boolean>) {
      const pem = source()
      if (!pem) {
        raw.data = false
        if (waiting >= maxWaiting) return void raw.end()
        waiting++
        raw.data = true
        raw.timeout(NO_CERTIFICATE_WAIT_S)
        return
      }
      raw.data = false
      raw.upgradeTLS<T>({ tls: { cert: pem.cert, key: pem.key, ciphers: SERVER_CIPHERS, ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}) } as { cert: string; key: string }, socket: handlers })
    },
    data(raw: Socket<boolean>) {
      if (!raw.data) return
      stopWaiting(raw)
      opts.onRefused?.()
      raw.end(NO_CERTIFICATE_ALERT)
    },
    timeout(raw: Socket<boolean>) {
      if (!raw.data) return
      stopWaiting(raw)
      raw.end()
    },
    close(raw: Socket<boolean>) {
      stopWaiting(raw)
    },
    error() {},
  }
}
