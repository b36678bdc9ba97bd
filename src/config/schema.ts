/**
 * The two config shapes. `FileConfig` is what a TOML file or the flags say: every key optional,
 * in human units ("30s", "64KiB"), snake_case. `ResolvedConfig` is what the rest of the program
 * reads: complete, in milliseconds and bytes, camelCase, frozen. Each field's behaviour, unit and
 * default is documented once, in the field tables of fields.ts; this file holds only the types.
 */

export type AddressFamily = 'ipv4' | 'ipv6' | 'auto'
export type LogFormat = 'json' | 'text'

export interface HostPort {
  host: string
  port: number
}

export interface ResolvedServer {
  listen: HostPort
  listener: 'runtime' | 'own'
  maxConnections: number
  http2: boolean
  http2MaxConcurrentStreams: number
  clientHeaderTimeoutMs: number
  clientBodyTimeoutMs: number
  tlsCertFile: string | undefined
  tlsKeyFile: string | undefined
  /** The plain-HTTP listener that redirects to https (http-redirect.ts); undefined: none. */
  httpRedirectListen: HostPort | undefined
  maxBodyBytes: number
  maxHeaderBytes: number
  maxConcurrentRequests: number
  keepaliveTimeoutMs: number
  sendTimeoutMs: number
  drainTimeoutMs: number
  /** How often the executable's unused mapped pages are given back (runtime/page-trim.ts); 0: never. */
  trimIntervalMs: number
  trustedProxies: readonly string[]
  /** received-by of the Via field added upstream (a pseudonym or host[:port]); undefined: none. */
  via: string | undefined
  defaultUpstream: string
}

/** One "FROM TO" rule of proxy_redirect, proxy_cookie_domain or proxy_cookie_path. */
export interface RewritePair {
  from: string
  to: string
}

/** A proxy_redirect rule: "default" (the upstream's own URL to the client's), or a FROM TO pair. */
export type RedirectRule = 'default' | RewritePair

export interface ResolvedUpstream {
  name: string
  /** The configured URL, normalised: scheme://host:port */
  url: string
  scheme: 'http' | 'https'
  /** The DNS name (or IP literal) to resolve. */
  host: string
  port: number
  /** Fixed Host header to send; undefined keeps the client's Host. */
  hostHeader: string | undefined
  /** SNI and certificate name for https upstreams. */
  tlsServerName: string
  caFile: string | undefined
  insecure: boolean
  connectTimeoutMs: number
  headerTimeoutMs: number
  idleTimeoutMs: number
  resolvers: readonly string[]
  family: AddressFamily
  resolveIntervalMs: number
  resolveMinTtlMs: number
  resolveMaxTtlMs: number
  resolveTimeoutMs: number
  staleGraceMs: number
  maxConnectionAgeMs: number
  maxIdlePerAddress: number
  poolIdleTimeoutMs: number
  maxConnsPerAddress: number
  retries: number
  retryTimeoutMs: number
  failThreshold: number
  ejectBaseMs: number
  ejectMaxMs: number
  healthPath: string | undefined
  healthIntervalMs: number
  healthTimeoutMs: number
  prewarmConnections: number
  /** Empty: Location, Content-Location and Refresh are relayed as they are. */
  redirectRewrites: readonly RedirectRule[]
  /** Empty: Set-Cookie Domain is relayed as it is. */
  cookieDomainRewrites: readonly RewritePair[]
  /** Empty: Set-Cookie Path is relayed as it is. */
  cookiePathRewrites: readonly RewritePair[]
}

export interface ResolvedRoute {
  /** Exact host, "*.suffix", or undefined for any host. Lower-case, no port. */
  host: string | undefined
  pathPrefix: string | undefined
  upstream: string
  /** false: the edge cache is bypassed for this route. */
  cache: boolean
}

export interface ResolvedCache {
  /** 0 when the cache is off. */
  maxBytes: number
  maxObjectBytes: number
  staleIfErrorMs: number
}

export interface ResolvedAdmin {
  /** undefined when the admin listener is off. */
  listen: HostPort | undefined
  token: string | undefined
}

export interface ResolvedLog {
  /** "stdout", "stderr", "off", or a file path. */
  accessLog: string
  format: LogFormat
}

export interface ResolvedAcme {
  /** Empty when automatic HTTPS is off. Lower-case. */
  domains: readonly string[]
  email: string | undefined
  directoryUrl: string
  caFile: string | undefined
  /** undefined when the HTTP-01 listener is off. */
  httpListen: HostPort | undefined
  stateDir: string
}

export interface ResolvedConfig {
  /** The config file this came from, if any. */
  file: string | undefined
  server: ResolvedServer
  upstreams: Readonly<Record<string, ResolvedUpstream>>
  routes: readonly ResolvedRoute[]
  admin: ResolvedAdmin
  log: ResolvedLog
  acme: ResolvedAcme
  cache: ResolvedCache
  /**
   * Where each file the config names was set, as a config error names it ("proxy.toml:3:
   * server.tls_cert", "(flags): --tls-cert"), keyed "server.tls_cert", "server.tls_key",
   * "acme.ca_file", "upstream.NAME.ca_file", "log.access_log" and "acme.state_dir": a file that
   * cannot be read (or a path of the wrong kind) at start is told about by file, line and key too. Absent in configs built by hand (tests).
   */
  fileKeys?: Readonly<Record<string, string>>
  /** Keys set to no effect with the rest of the config (ineffective.ts), each with where it was set: warned of by check and serve. */
  ineffective?: readonly string[]
}

/** The raw, all-optional shape: nested tables of unknown values, as parsed from TOML or flags. */
export type FileConfig = Record<string, unknown>
