/**
 * What of a config the client side's listener is made from (proxy/server.ts opens and reloads
 * it): which changes only a new listening socket can take (socketKey), which the own listener
 * takes in place (settingsKey, http1Settings, with the open-files budget), and the certificate
 * pair, read and checked.
 */
import type { ResolvedConfig } from '../config/schema.ts'
import { filesBudget, openFilesLimit } from '../runtime/open-files.ts'
import { loadTlsPair, type TlsPair } from '../runtime/tls-files.ts'
import type { Http1Settings } from './downstream/http1-listener.ts'
import { closeIdleUpstream, upstreamConnectionsOpen } from './upstream/address-state.ts'

/** What only a new listener socket can change: the address, the certificate pair, and whether h2 is offered by ALPN. */
export function socketKey(config: ResolvedConfig, tls: TlsPair | undefined): string {
  const s = config.server
  return JSON.stringify([s.listener, s.listen, tls?.cert, tls?.key, s.http2])
}

/** What the own listener takes in place (http1Settings), and the runtime front only with a new listener. */
export function settingsKey(config: ResolvedConfig): string {
  const s = config.server
  return JSON.stringify([s.keepaliveTimeoutMs, s.maxBodyBytes, s.clientHeaderTimeoutMs, s.clientBodyTimeoutMs, s.sendTimeoutMs, s.maxConnections, s.maxHeaderBytes, s.http2MaxConcurrentStreams])
}

export function http1Settings(config: ResolvedConfig): Http1Settings {
  const cfg = config.server
  // Read again at each reload: a limit raised on the running process (prlimit) then counts.
  const files = filesBudget(openFilesLimit())
  return {
    http2: cfg.http2 ? { maxConcurrentStreams: cfg.http2MaxConcurrentStreams, maxHeaderListBytes: cfg.maxHeaderBytes, idleTimeoutMs: cfg.keepaliveTimeoutMs, headTimeoutMs: cfg.clientHeaderTimeoutMs } : undefined,
    maxHeaderBytes: cfg.maxHeaderBytes,
    headerTimeoutMs: cfg.clientHeaderTimeoutMs,
    keepaliveTimeoutMs: cfg.keepaliveTimeoutMs,
    bodyTimeoutMs: cfg.clientBodyTimeoutMs,
    sendTimeoutMs: cfg.sendTimeoutMs,
    maxConnections: cfg.maxConnections,
    socketBudget: files?.budget,
    socketTrimAt: files?.trimAt,
    otherSockets: upstreamConnectionsOpen,
    freeSockets: closeIdleUpstream,
  }
}

/** The configured certificate pair, read and checked (runtime/tls-files.ts); undefined without TLS files. */
export function listenerTls(config: ResolvedConfig): TlsPair | undefined {
  const s = config.server
  const at = config.fileKeys ?? {}
  return s.tlsCertFile && s.tlsKeyFile ? loadTlsPair(s.tlsCertFile, s.tlsKeyFile, { cert: at['server.tls_cert'], key: at['server.tls_key'] }) : undefined
}
