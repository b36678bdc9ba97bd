/**
 * TLS sessions kept to offer again when dialling an upstream address (resumption, RFC 8446
 * §2.2 tickets and RFC 5077 / session IDs in TLS 1.2), as nginx's proxy_ssl_session_reuse
 * does by default: a resumed handshake skips the certificate's bytes and checks, and in TLS 1.2
 * a round trip, which a far-region proxy pays each time its pool opens a connection across the
 * ocean (a cold pool, an address change, max_connection_age). One cache per upstream pool, so a
 * session is offered only under the trust settings it was made with (a resumed handshake does
 * not check the certificate again); keyed by address and port. The newest session per key wins
 * (TLS 1.3 tickets are single-use by intent, RFC 8446 §C.4). Bounded: the oldest key goes first.
 */
export class TlsSessionCache {
  private readonly sessions = new Map<string, Uint8Array>()

  constructor(private readonly maxEntries = 256) {}

  get(key: string): Uint8Array | undefined {
    return this.sessions.get(key)
  }

  set(key: string, session: Uint8Array): void {
    this.sessions.delete(key)
    this.sessions.set(key, session)
    if (this.sessions.size > this.maxEntries) this.sessions.delete(this.sessions.keys().next().value!)
  }

  /** A key's session failed or was refused: it is not offered again (only `session`, when given: not a newer one kept since). */
  forget(key: string, session?: Uint8Array): void {
    if (session === undefined || this.sessions.get(key) === session) this.sessions.delete(key)
  }

  get size(): number {
    return this.sessions.size
  }
}
