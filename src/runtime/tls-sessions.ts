/**
 * TLS sessions kept to offer again when dialling an upstream address (resumption, RFC 8446
 * §2.2 tickets and RFC 5077 / session IDs in TLS 1.2), as nginx's proxy_ssl_session_reuse
 * does by default: a resumed handshake skips the certificate's bytes and checks, and in TLS 1.2
 * a round trip, which a far-region proxy pays each time its pool opens a connection across the
 * ocean (a cold pool, an address change, max_connection_age). One cache per upstream pool, so a
 * session is offered only under the trust settings it was made with (a resumed handshake does
 * not check the certificate again); keyed by address and port. The newest session per key wins
 * (TLS 1.3 tickets are single-use by intent, RFC 8446 §C.4). Bounded: the oldest key goes first.
 * A dial that offered a session and failed (a peer or middlebox that cuts resumed handshakes)
 * turns resumption off for that key for a while (`pausedMs`), so new connections do not
 * alternate between a full handshake that works and a resumed one that fails.
 */
import { monoNow } from '../lib/clock.ts'

export class TlsSessionCache {
  private readonly sessions = new Map<string, Uint8Array>()
  /** Keys whose resumed handshake failed, and until when (monoNow) nothing is kept or offered for them. */
  private readonly paused = new Map<string, number>()

  constructor(
    private readonly maxEntries = 256,
    private readonly pausedMs = 10 * 60_000,
  ) {}

  get(key: string): Uint8Array | undefined {
    return this.sessions.get(key)
  }

  set(key: string, session: Uint8Array): void {
    if (this.paused.size > 0 && this.isPaused(key)) return
    this.sessions.delete(key)
    this.sessions.set(key, session)
    if (this.sessions.size > this.maxEntries) this.sessions.delete(this.sessions.keys().next().value!)
  }

  /** A key's session failed or was refused: it is not offered again. */
  forget(key: string): void {
    this.sessions.delete(key)
  }

  /** A dial that offered this key's session failed: it goes, and the key keeps no session for pausedMs. */
  refused(key: string): void {
    this.sessions.delete(key)
    this.paused.set(key, monoNow() + this.pausedMs)
    // Bounded like the sessions: the oldest pause goes first.
    if (this.paused.size > this.maxEntries) this.paused.delete(this.paused.keys().next().value!)
  }

  private isPaused(key: string): boolean {
    const until = this.paused.get(key)
    if (until === undefined) return false
    if (monoNow() < until) return true
    this.paused.delete(key)
    return false
  }

  get size(): number {
    return this.sessions.size
  }
}
