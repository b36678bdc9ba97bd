/**
 * What the admin endpoints may read of a running proxy: a narrow, read-only view (the server
 * implements it), so admin.ts never reaches into the server's internals.
 */
import type { AddressSource } from '../upstream/address-source.ts'
import type { AddressStats } from '../upstream/address-state.ts'

/** One upstream's origin side, as admin reads it. */
export interface UpstreamView {
  name: string
  pool: {
    readonly upstream: { readonly url: string }
    readonly connectsTotal: number
    readonly tlsResumedTotal: number
    hasHealthyAddress(): boolean
    stats(): AddressStats[]
  }
  source: Pick<AddressSource, 'snapshot' | 'status' | 'metrics'>
}

export interface ProxyView {
  upstreams(): UpstreamView[]
  /** Requests the proxy answered itself, by refusal reason. */
  readonly refused: Readonly<Record<string, number>>
  /** HTTP/2 connections the proxy ended with an error code, by its name (listener = "own"). */
  readonly http2ConnectionErrors?: Readonly<Record<string, number>>
  readonly pendingRequests: number
  /** Open client connections, where the listener can count them. */
  readonly clientConnections: number | undefined
  /** Open upgrade tunnels, where the listener can count them. */
  readonly openTunnels?: number | undefined
  /** A drain is under way: not ready for new traffic. */
  readonly draining: boolean
  /** The certificate served from tls_cert, and when it expires; undefined without one. */
  readonly certificate?: { file: string; notAfterMs: number } | undefined
}
