/**
 * Keys that can have no effect with the rest of a config: `[acme]` keys without `domains`, TLS
 * keys on an http:// upstream, `[cache]` keys with the cache off. Set in a file or by a flag, each
 * is warned of by `check` and at `serve`'s start and reloads, naming where it was set (until the
 * eighteenth round of outside reviews `[acme] http_listen` without `domains` passed check without
 * a word and nothing listened there); `check`'s printout writes them as comments, so that a file
 * kept from it (check > full.toml) sets none of them. Pure.
 */
import type { ResolvedConfig } from './schema.ts'

/** Where `keyPath` was set ("proxy.toml:7: acme.http_listen", "(flags): --acme-http-listen"), or undefined when it has its default. */
export type SetAt = (keyPath: string) => string | undefined

/** A key of no effect: its table ("acme", "cache", "server", or an upstream's name), its TOML key, and why. */
export interface InertKey {
  table: 'acme' | 'cache' | 'server' | { upstream: string }
  key: string
  why: string
}

const ACME_KEYS = ['http_listen', 'email', 'directory', 'ca_file', 'state_dir']
const UPSTREAM_TLS_KEYS = ['tls_server_name', 'ca_file', 'insecure']
const HEALTH_KEYS = ['health_interval', 'health_timeout']
const HTTP2_KEYS = ['http2', 'http2_max_concurrent_streams']
const CACHE_KEYS = ['max_object_size', 'stale_if_error']

type Parts = Pick<ResolvedConfig, 'acme' | 'upstreams' | 'cache'> & { server: Pick<ResolvedConfig['server'], 'tlsCertFile'> }

/** An inert key's table as check's printout heads it: "acme", "cache", "server", or "upstream.NAME". */
export function inertTable(k: InertKey): string {
  return typeof k.table === 'string' ? k.table : `upstream.${k.table.upstream}`
}

/** Every key that has no effect in `config`, set or not. */
export function inertKeys(config: Parts, opts: { deno?: boolean } = {}): InertKey[] {
  const out: InertKey[] = []
  if (config.acme.domains.length === 0) {
    const why = 'automatic HTTPS is off (acme.domains is empty), so no HTTP-01 listener or https redirect runs; list the names in acme.domains, or drop the [acme] keys'
    // http_listen = "off" says what happens anyway. Set beside one's own certificate, it was meant as nginx's port-80 server.
    const redirect = config.server.tlsCertFile !== undefined ? `${why}; for a redirect to https in front of tls_cert, set server.http_redirect_listen instead` : why
    for (const key of ACME_KEYS) if (key !== 'http_listen' || config.acme.httpListen !== undefined) out.push({ table: 'acme', key, why: key === 'http_listen' ? redirect : why })
  }
  for (const u of Object.values(config.upstreams)) {
    if (u.scheme === 'http') for (const key of UPSTREAM_TLS_KEYS) out.push({ table: { upstream: u.name }, key, why: `${u.url} is plain http; give an https:// url for TLS to the upstream` })
    if (u.healthPath === undefined) for (const key of HEALTH_KEYS) out.push({ table: { upstream: u.name }, key, why: 'no health_path is set, so no active health check runs; set health_path, e.g. "/healthz"' })
  }
  // (Not the admin token with admin.listen = "off": with --workers a reload keeps the supervisor's
  // admin listening, and its token applies; the second opinion found the warning's advice opened it.)
  // HTTP/2 is offered by ALPN on a TLS listener only (the own certificate or automatic HTTPS);
  // on Deno, Deno.serve offers it (h2c in cleartext too) whatever the keys say.
  const plain = config.server.tlsCertFile === undefined && config.acme.domains.length === 0
  const h2Why = opts.deno
    ? 'on Deno, Deno.serve offers HTTP/2 (h2 by ALPN, h2c in cleartext) whatever the setting; it has no option for it'
    : plain
      ? 'the listener is plain HTTP (no tls_cert, no acme.domains), and HTTP/2 is offered by ALPN over TLS only'
      : undefined
  if (h2Why !== undefined) for (const key of HTTP2_KEYS) out.push({ table: 'server', key, why: h2Why })
  if (config.cache.maxBytes === 0) for (const key of CACHE_KEYS) out.push({ table: 'cache', key, why: 'the cache is off (cache.max_size is 0); set max_size, e.g. "256MiB", to turn it on' })
  return out
}

/** One line per key a file or flag set to no effect. `upstreamPrefixes`: each upstream's key path ("upstream", or "upstream.NAME"). */
export function ineffectiveKeys(config: Parts, upstreamPrefixes: Record<string, string>, setAt: SetAt, opts: { deno?: boolean } = {}): string[] {
  const out: string[] = []
  for (const k of inertKeys(config, opts)) {
    const table = typeof k.table === 'string' ? k.table : (upstreamPrefixes[k.table.upstream] ?? inertTable(k))
    const at = setAt(`${table}.${k.key}`)
    if (at !== undefined) out.push(`${at}: has no effect: ${k.why}`)
  }
  return out
}
