/**
 * The config reference, as data: every key of every table, its kind, default and meaning.
 * resolve.ts validates against these tables, --help prints their defaults, and the README's
 * config reference is generated from them (scripts/config-doc.ts), so the three never drift.
 */

export type FieldKind =
  // "250ms", "30s", "5m"; 0 means off where the doc says so, and is refused where `positive`. At
  // most MAX_TIMER_MS (a timer's limit: past it setTimeout fires at once), but where `untimed`:
  // a value only compared with clocks, never waited on.
  // Where `minMs`: 0 (off) or at least that (a value that would keep the process busy doing it).
  | { type: 'duration'; positive?: boolean; untimed?: boolean; minMs?: number }
  | { type: 'size' } // "64KiB", "1MB", or an integer of bytes
  | { type: 'int'; min: number; max?: number }
  | { type: 'bool' }
  // "off" (none) is one of its values where `off`; a file's or a directory's path where `path` (NUL refused; the kind is checked at start by tls-files.ts and config-paths.ts).
  | { type: 'string'; off?: boolean; path?: boolean }
  | { type: 'hostport'; off?: boolean } // "host:port", "[::1]:port", or "off" (no listener) where `off`
  | { type: 'list' } // list of strings
  | { type: 'enum'; values: readonly string[] }
  // "FROM TO" pairs (a string or a list of them), resolved to { from, to }; plus the listed
  // keywords: "off" (alone: no rules) and, where allowed, "default".
  | { type: 'rewrites'; keywords: readonly ('off' | 'default')[] }

export interface Field {
  /** snake_case TOML key. */
  key: string
  /** camelCase property in the resolved shape. */
  prop: string
  kind: FieldKind
  /** Default, in the file's units; undefined means unset. */
  default: string | number | boolean | readonly string[] | undefined
  doc: string
  /** Never printed back (proxy check shows only that it is set). */
  secret?: boolean
  /** Not applied on Deno (its server has no such option): `proxy check` there says so beside the value. */
  bunOnly?: boolean
  /**
   * What "" (an empty string) for this key is told, where it is not "remove the key to leave it
   * unset" with what unset means (the doc's "Default: …"): a required key, or one whose unset
   * state the doc does not spell. "" is never taken as unset.
   */
  empty?: string
}

/** How an admin token is written, said when one is refused. */
export const TOKEN_HOW = 'leave it out for none, or use printable ASCII, e.g. the output of `openssl rand -hex 32`'


const d = (key: string, prop: string, def: string, doc: string): Field => ({ key, prop, kind: { type: 'duration' }, default: def, doc })
/** A duration that must be more than 0: a zero would fail every request, or spin. */
const dp = (key: string, prop: string, def: string, doc: string): Field => ({ key, prop, kind: { type: 'duration', positive: true }, default: def, doc })
/** A duration never waited on by a timer (an age or a window compared with the clock): any length. */
const du = (key: string, prop: string, def: string, doc: string): Field => ({ key, prop, kind: { type: 'duration', untimed: true }, default: def, doc })
/** Both: more than 0, and never waited on by a timer (a deadline a sweep checks, or a delay its user caps at a timer's limit). */
const dpu = (key: string, prop: string, def: string, doc: string): Field => ({ key, prop, kind: { type: 'duration', positive: true, untimed: true }, default: def, doc })

export const SERVER_FIELDS: readonly Field[] = [
  { key: 'listen', prop: 'listen', kind: { type: 'hostport' }, default: '0.0.0.0:8080', doc: 'Address the proxy listens on.' },
  { key: 'tls_cert', prop: 'tlsCertFile', kind: { type: 'string', path: true }, default: undefined, doc: 'PEM certificate chain: terminate TLS on the listener (needs tls_key).', empty: 'is empty; remove it to leave it unset (the listener then serves plain HTTP), or give the path of a PEM certificate chain' },
  { key: 'tls_key', prop: 'tlsKeyFile', kind: { type: 'string', path: true }, default: undefined, doc: 'PEM private key for tls_cert.', empty: 'is empty; remove it to leave it unset (with tls_cert: the listener then serves plain HTTP), or give the path of the PEM private key' },
  { key: 'http_redirect_listen', prop: 'httpRedirectListen', kind: { type: 'hostport', off: true }, default: 'off', doc: 'A plain-HTTP listener (e.g. "0.0.0.0:80") that answers every request with a 308 to the same host and target over https on the proxy\'s TLS listener (its port left out when it is 443), as nginx\'s `listen 80; return 301 https://$host$request_uri;`: for a listener with its own tls_cert (with acme.domains, acme.http_listen does it). "off": none. Read at start (a reload keeps the one running).' },
  { key: 'listener', prop: 'listener', kind: { type: 'enum', values: ['auto', 'own', 'runtime'] }, default: 'auto', doc: 'HTTP/1.1 server for clients. own: the proxy\'s strict HTTP/1.1 server on raw sockets (Bun only), with client_header_timeout, client_body_timeout, max_connections, pipelining, protocol upgrades and Content-Length kept on streamed responses. runtime: Deno.serve (Deno only). auto: own on Bun, runtime on Deno.' },
  { key: 'max_body_size', prop: 'maxBodyBytes', kind: { type: 'size' }, default: '0', doc: 'Largest request body accepted (413 beyond). 0 means no limit: bodies stream.' },
  { key: 'max_header_size', prop: 'maxHeaderBytes', kind: { type: 'size' }, default: '16KiB', doc: 'Largest request head (request line and headers) accepted; 431 beyond. From 1KiB to 1MiB. On Deno too for HTTP/1.1; over HTTP/2 Deno.serve also refuses a header list past about 16 KiB itself.' },
  { key: 'max_concurrent_requests', prop: 'maxConcurrentRequests', kind: { type: 'int', min: 0 }, default: 0, doc: 'Most client requests served at once, per worker (streaming ones count until they end; an upgrade request is refused at the limit too, but neither it nor its tunnel counts: max_connections bounds those); beyond it, 503 with Retry-After and the connection closed. 0 means no limit.' },
  { key: 'http2', prop: 'http2', kind: { type: 'bool' }, default: true, doc: 'Offer HTTP/2 to clients by ALPN on a TLS listener (RFC 9113), beside HTTP/1.1 on the same port; WebSockets stay on HTTP/1.1. false: HTTP/1.1 only. Plain-text listeners speak HTTP/1.1 (on Deno, Deno.serve offers HTTP/2 by ALPN and h2c in cleartext whatever this says).' },
  { key: 'http2_max_concurrent_streams', prop: 'http2MaxConcurrentStreams', kind: { type: 'int', min: 1, max: 10000 }, default: 128, doc: 'Most requests in flight on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM, which clients retry. From 1 to 10000. Not on Deno (Deno.serve\'s HTTP/2 keeps its own).', bunOnly: true },
  { key: 'max_connections', prop: 'maxConnections', kind: { type: 'int', min: 0 }, default: 0, doc: 'Most open client connections, per worker; a connection beyond it gets 503 with Retry-After and is closed. 0 means none but the one the open-files limit sets (see Limits). Not on Deno (its server does not expose connections).', bunOnly: true },
  { ...dpu('client_header_timeout', 'clientHeaderTimeoutMs', '10s', 'Time a client has to send a whole request head, from its first byte (or from connecting); 408 and close beyond. Not on Deno (Deno.serve has none).'), bunOnly: true },
  { ...du('client_body_timeout', 'clientBodyTimeoutMs', '60s', 'Longest wait for the next bytes of a request body while the proxy is ready for them; 408 (or an aborted upstream request) and close beyond (over HTTP/2 the stream ends, the connection serves on). 0 means none. Not on Deno.'), bunOnly: true },
  { ...du('send_timeout', 'sendTimeoutMs', '60s', 'Longest time a client may take no bytes of a response while some wait for it (its connection full, or its HTTP/2 stream or connection window closed) before the response is cut and logged CLIENT_SEND_TIMEOUT, as nginx\'s send_timeout; frees the upstream connection and the request\'s slot. Each drain of its socket (or DATA frame sent on its stream) restarts it. Not on Deno. 0 means none.'), bunOnly: true },
  { ...du('keepalive_timeout', 'keepaliveTimeoutMs', '75s', 'How long an idle client keep-alive connection is held open. Not on Deno (Deno.serve 2.9 has no such option and holds an idle connection until its client closes it).'), bunOnly: true },
  d('drain_timeout', 'drainTimeoutMs', '30s', 'On SIGTERM/SIGINT/SIGQUIT, how long in-flight requests get to finish before the process exits.'),
  { key: 'trim_interval', prop: 'trimIntervalMs', kind: { type: 'duration', minMs: 1000 }, default: '60s', doc: 'How often each process gives back the pages of its own executable and libraries that it mapped and may not use now (start-up\'s, the JIT compiler\'s): the clean, read-only ones are unmapped (they stay in the page cache; one used again is mapped again at its next use), so RSS counts what the proxy runs, not all it ever ran. The first trim is right after the listener opens. 0 means never; otherwise at least 1s (a trim takes the event loop 2-8 ms). Linux on Bun only.', bunOnly: true },
  { key: 'trusted_proxies', prop: 'trustedProxies', kind: { type: 'list' }, default: [], doc: 'CIDRs whose X-Forwarded-* headers are trusted and appended to; from anyone else they are replaced. Written as meant: no bits past the prefix ("10.0.0.0/8", not "10.0.0.1/8"), and an IPv4 range as IPv4 ("::ffff:10.0.0.0/8" is ::/8: refused). An IPv6 range shorter than /96 holds IPv6 clients only ("::/0" is every IPv6 client, no IPv4 one), as in nginx.' },
  { key: 'via', prop: 'via', kind: { type: 'string', off: true }, default: 'proxy', doc: 'Name this proxy gives itself in the Via field it adds to each request sent upstream ("1.1 proxy", after any Via the client sent; RFC 9110 §7.6.3 says a gateway MUST send one): a token, or host[:port]. "off" sends none. An nginx origin with gzip on and its default gzip_proxied off does not compress answers to requests that carry Via: set gzip_proxied any there, or via = "off".' },
  { key: 'default_upstream', prop: 'defaultUpstream', kind: { type: 'string' }, default: undefined, doc: 'Upstream used when no [[route]] matches. Default: the only upstream, or the one named "default".' },
]

export const UPSTREAM_FIELDS: readonly Field[] = [
  { key: 'url', prop: 'url', kind: { type: 'string' }, default: undefined, doc: 'Origin: http://host[:port] or https://host[:port]; a bare host[:port] means http. Required.', empty: 'is empty; it is required: set the origin, e.g. url = "https://origin.example.com"' },
  { key: 'host_header', prop: 'hostHeader', kind: { type: 'string' }, default: undefined, doc: "Fixed Host header sent upstream, as host[:port] (RFC 9110 §7.2). Default: the client's Host is kept." },
  { key: 'tls_server_name', prop: 'tlsServerName', kind: { type: 'string' }, default: undefined, doc: 'SNI and certificate name for an https upstream. Default: the host in url.' },
  { key: 'ca_file', prop: 'caFile', kind: { type: 'string', path: true }, default: undefined, doc: "PEM CA bundle that verifies the upstream's certificate. Default: the system's roots." },
  { key: 'insecure', prop: 'insecure', kind: { type: 'bool' }, default: false, doc: "Skip verifying the upstream's certificate (its CA, name and dates). For testing only: serve warns at start and at each reload while it is set." },
  dp('connect_timeout', 'connectTimeoutMs', '5s', 'Time to open a TCP (and TLS) connection to one upstream address.'),
  dp('header_timeout', 'headerTimeoutMs', '60s', 'Time from sending the request to receiving the response head (504 beyond). While a streamed request body is still coming and no response has begun, also the longest silence of the client between its pieces (408 beyond).'),
  du('idle_timeout', 'idleTimeoutMs', '5m', 'Longest silence while streaming a response body before the exchange is aborted, and longest silence both ways in an upgrade tunnel (WebSocket) before it is closed. 0 means none.'),
  { key: 'resolvers', prop: 'resolvers', kind: { type: 'list' }, default: [], doc: 'DNS servers as ip[:port]. Default: the system configuration (/etc/resolv.conf, /etc/hosts).' },
  { key: 'family', prop: 'family', kind: { type: 'enum', values: ['auto', 'ipv4', 'ipv6'] }, default: 'auto', doc: 'Address families to use: ipv4 (A records), ipv6 (AAAA), or auto (both: requests are spread over the addresses of both families, as over several of one).' },
  dp('resolve_interval', 'resolveIntervalMs', '30s', 'Re-resolve interval for answers without a TTL (hosts file, IP literal).'),
  du('resolve_min_ttl', 'resolveMinTtlMs', '5s', 'Shortest time an answer is kept, whatever its TTL.'),
  dpu('resolve_max_ttl', 'resolveMaxTtlMs', '5m', 'Longest time an answer is kept, whatever its TTL.'),
  dp('resolve_timeout', 'resolveTimeoutMs', '2s', 'Time one DNS query may take before the next server is tried (sent again once halfway through: a lost datagram costs half of it, not a failed lookup). serve waits for an upstream\'s first answer before it listens, up to twice this for each DNS server in resolvers (UDP, then TCP after a truncated answer; 3 servers when resolvers is unset), less when DNS fails sooner; it starts anyway after that.'),
  du('stale_grace', 'staleGraceMs', '24h', 'How long the last good addresses are kept when DNS fails (SERVFAIL, timeout, NXDOMAIN, empty).'),
  du('max_connection_age', 'maxConnectionAgeMs', '5m', 'Pooled upstream connections older than this are closed when idle, so the pool follows DNS changes. 0 means no limit.'),
  { key: 'max_idle_per_address', prop: 'maxIdlePerAddress', kind: { type: 'int', min: 0 }, default: 1024, doc: 'Idle keep-alive connections kept per upstream address.' },
  du('pool_idle_timeout', 'poolIdleTimeoutMs', '50s', 'An idle pooled upstream connection is closed after this long, or one second before the idle time its upstream says it keeps one (`Keep-Alive: timeout=N`, as Node.js servers send; half of it for `timeout=1`, none for `timeout=0`), whichever comes first, so that the proxy, not the upstream, ends an idle connection: a request sent as the upstream closes it is lost (a GET is retried, a POST cannot be). The default is under the 60 s idle timeout of AWS load balancers (ALB, Classic ELB), which send no Keep-Alive field.'),
  { key: 'max_conns_per_address', prop: 'maxConnsPerAddress', kind: { type: 'int', min: 0 }, default: 0, doc: 'Most concurrent connections to one upstream address, upgrade tunnels (WebSockets) included; requests beyond it wait for a free one, an upgrade closes an idle one or is refused 503 at once. 0 means no limit.' },
  { key: 'retries', prop: 'retries', kind: { type: 'int', min: 0, max: 10 }, default: 2, doc: 'Extra attempts on another address after a connect failure, when the request can be replayed safely. From 0 to 10.' },
  d('retry_timeout', 'retryTimeoutMs', '10s', 'Total time spent on retries of one request.'),
  { key: 'fail_threshold', prop: 'failThreshold', kind: { type: 'int', min: 1 }, default: 1, doc: 'Consecutive connect failures that eject an address.' },
  dp('eject_time', 'ejectBaseMs', '1s', 'First ejection time of a failing address; after it a half-open probe (one request) decides: each failed probe doubles the time, up to eject_max_time. Requests that fail while the address is already ejected do not extend it.'),
  dp('eject_max_time', 'ejectMaxMs', '30s', 'Longest ejection time of a failing address; at least eject_time.'),
  { key: 'health_path', prop: 'healthPath', kind: { type: 'string' }, default: undefined, doc: 'Active health check: GET this path on every address (also those from DNS); a failure or a status other than 2xx/3xx takes the address out until a check passes. When every address is out, requests still go to them (fail open, as Envoy does below its panic threshold; /readyz answers 503 meanwhile). An address DNS adds later is checked at once and takes traffic once that check passes. Default: passive checks only.' },
  dp('health_interval', 'healthIntervalMs', '10s', 'Interval between active health checks.'),
  dp('health_timeout', 'healthTimeoutMs', '2s', 'Time one active health check may take.'),
  {
    key: 'proxy_redirect',
    prop: 'redirectRewrites',
    kind: { type: 'rewrites', keywords: ['default', 'off'] },
    default: 'default',
    doc: 'Rewrites Location, Content-Location and Refresh in responses, as nginx\'s proxy_redirect. "default": an absolute URL at the upstream itself (its scheme, host and port as dialled) gets the scheme and Host the client used; relative ones and URLs elsewhere are left alone. "FROM TO": a URL starting with FROM gets TO instead of it. "off": none. A list may hold pairs and "default"; the first that matches applies.',
  },
  {
    key: 'proxy_cookie_domain',
    prop: 'cookieDomainRewrites',
    kind: { type: 'rewrites', keywords: ['off'] },
    default: 'off',
    doc: 'Rewrites the Domain attribute of Set-Cookie, as nginx\'s proxy_cookie_domain: "FROM TO" pairs; FROM matches the whole domain, case-insensitively, a leading dot ignored.',
  },
  {
    key: 'proxy_cookie_path',
    prop: 'cookiePathRewrites',
    kind: { type: 'rewrites', keywords: ['off'] },
    default: 'off',
    doc: 'Rewrites the Path attribute of Set-Cookie, as nginx\'s proxy_cookie_path: "FROM TO" pairs; a path starting with FROM gets TO instead of it.',
  },
  { key: 'prewarm', prop: 'prewarmConnections', kind: { type: 'int', min: 0, max: 64 }, default: 0, doc: 'Connections (TCP and TLS) opened ahead of traffic to each new address. From 0 to 64.' },
]

export const ROUTE_FIELDS: readonly Field[] = [
  { key: 'host', prop: 'host', kind: { type: 'string' }, default: undefined, doc: 'Match the request host exactly (an IPv6 address in brackets, as in the Host header: "[2001:db8::1]"), or a suffix with "*.example.com", or ".example.com" for example.com and any name under it (as nginx reads server_name .example.com); case, the port and a final dot ("api.example.com.") do not count. Default: any host.' },
  { key: 'path_prefix', prop: 'pathPrefix', kind: { type: 'string' }, default: undefined, doc: 'Match paths that start with this prefix, both in normal form: "%61" is "a" (unreserved characters only) and dot segments are removed, so "/x/../api/" and "/%61pi/" match "/api/" (RFC 3986 §6.2.2); a path that takes another route once its slashes are merged and its escapes decoded (as nginx reads "/x//../api/") is refused with 400. The request goes upstream as it came. What a path cannot hold raw (non-ASCII, a space, "{", "|"; a "%" that starts no escape) is matched %-encoded, as requests carry it, whether a request sends it raw or encoded ("/café/" is "/caf%C3%A9/"); "?", "#", a backslash or a control character is refused. Default: any path.' },
  { key: 'upstream', prop: 'upstream', kind: { type: 'string' }, default: undefined, doc: 'Name of the [upstream.NAME] that serves the match. Required.', empty: 'is empty; it is required: name an [upstream.NAME]' },
  { key: 'cache', prop: 'cache', kind: { type: 'bool' }, default: true, doc: 'false: requests this route matches bypass the edge cache (never answered from it, never stored). Has effect only when [cache] max_size is set.' },
]

export const CACHE_FIELDS: readonly Field[] = [
  { key: 'max_size', prop: 'maxBytes', kind: { type: 'size' }, default: '0', doc: 'Turns on the shared edge cache (RFC 9111) with this much memory for stored responses, per worker; the least recently used are evicted beyond it. 0 means off.' },
  { key: 'max_object_size', prop: 'maxObjectBytes', kind: { type: 'size' }, default: '8MiB', doc: 'Largest response body stored; larger ones stream through uncached, never buffered whole. At most max_size (a larger value is refused; the default is lowered to a smaller max_size).' },
  du('stale_if_error', 'staleIfErrorMs', '0', 'How long past its freshness a stored response may answer when the origin fails (no connection, or 500, 502, 503, 504) if the response sets no stale-if-error itself (RFC 5861). must-revalidate, proxy-revalidate, s-maxage and no-cache still forbid it. 0 means off.'),
]

export const ADMIN_FIELDS: readonly Field[] = [
  { key: 'listen', prop: 'listen', kind: { type: 'hostport', off: true }, default: '127.0.0.1:9090', doc: 'Admin listener (/metrics, /status, /healthz, /readyz), or "off". Loopback by default. With --workers N the supervisor serves it, merged over all workers (a reload does not move it then).' },
  { key: 'token', prop: 'token', kind: { type: 'string' }, default: undefined, secret: true, doc: 'When set, admin requests need "Authorization: Bearer <token>" (/healthz and /readyz answer without it, their status and no details). Printable ASCII (e.g. openssl rand -hex 32); an empty one is refused, not taken as none.', empty: `is empty, which would leave the admin endpoints open; ${TOKEN_HOW}` },
]

export const LOG_FIELDS: readonly Field[] = [
  { key: 'access_log', prop: 'accessLog', kind: { type: 'string', off: true, path: true }, default: 'stdout', doc: 'Where access log lines go: stdout, stderr, off, or a file path.' },
  { key: 'format', prop: 'format', kind: { type: 'enum', values: ['json', 'text'] }, default: 'json', doc: 'Access log format: JSON lines, or readable text.' },
]


export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'

export const ACME_FIELDS: readonly Field[] = [
  { key: 'domains', prop: 'domains', kind: { type: 'list' }, default: [], doc: 'Automatic HTTPS: names to get one certificate for from an ACME CA (HTTP-01 challenges), served on the listener and renewed by the proxy; no tls_cert needed. Wildcards are not supported (they need DNS-01).' },
  { key: 'email', prop: 'email', kind: { type: 'string' }, default: undefined, doc: 'Contact address for the ACME account (the CA may send expiry warnings there).', empty: 'is empty; remove it to leave it unset (then the ACME account has no contact address), or give an e-mail address' },
  { key: 'directory', prop: 'directoryUrl', kind: { type: 'string' }, default: LETS_ENCRYPT_DIRECTORY, doc: "ACME directory URL. Let's Encrypt production by default; for testing use its staging directory, https://acme-staging-v02.api.letsencrypt.org/directory." },
  { key: 'ca_file', prop: 'caFile', kind: { type: 'string', path: true }, default: undefined, doc: "PEM bundle that verifies the ACME server's own HTTPS (private or test ACME servers). Default: the system's roots." },
  { key: 'http_listen', prop: 'httpListen', kind: { type: 'hostport', off: true }, default: '0.0.0.0:80', doc: 'Plain-HTTP listener that answers HTTP-01 challenges at /.well-known/acme-challenge/ and redirects every other request to https with 308, or "off" (then the CA must reach port 80 some other way).' },
  { key: 'state_dir', prop: 'stateDir', kind: { type: 'string', path: true }, default: undefined, doc: 'Directory for the ACME account key and the certificates (PEM; keys mode 0600), created if missing and shared by workers and restarts. Default: /var/lib/proxy as root, else $XDG_STATE_HOME/proxy or ~/.local/state/proxy.' },
]

/** Each table's fields, by the table's TOML name. */
export const TABLE_FIELDS = { server: SERVER_FIELDS, upstream: UPSTREAM_FIELDS, route: ROUTE_FIELDS, cache: CACHE_FIELDS, admin: ADMIN_FIELDS, log: LOG_FIELDS, acme: ACME_FIELDS } as const satisfies Record<string, readonly Field[]>

/**
 * Whether a key path names a secret field ("admin.token"; an upstream's keys as
 * "upstream.NAME.key"): its value is never written back, not even in a TOML syntax error.
 */
export function isSecretKeyPath(keyPath: string): boolean {
  const parts = keyPath.split('.')
  const key = parts[parts.length - 1]
  const fields = (TABLE_FIELDS as Record<string, readonly Field[]>)[parts[0]!.replace(/\[\d+\]$/, '')]
  return fields?.some((f) => f.secret === true && f.key === key) ?? false
}
