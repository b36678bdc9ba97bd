/**
 * The admin listener: /healthz, /readyz, /status (JSON) and /metrics (Prometheus text). It binds
 * loopback by default, is a separate listener from the proxied port, and can require a bearer
 * token. Request metrics come from metrics.ts; pool and resolver state are read at request time
 * through the server's read-only view (view.ts).
 */
import { daysLeft } from '../../acme/schedule.ts'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { ResolvedAdmin } from '../../config/schema.ts'
import { listenError } from '../../lib/listen-error.ts'
import { listen, type Listener } from '../../runtime/listener.ts'
import { VERSION } from '../../version.ts'
import { esc, type RequestMetrics } from './metrics.ts'
import { cidrContains, parseCidr } from '../../lib/cidr.ts'
import { hostPort } from '../../lib/net.ts'
import { hostWithoutPort } from '../headers.ts'
import type { AddressStats } from '../upstream/address-state.ts'
import type { ProxyView, UpstreamView } from './view.ts'
import type { EdgeCache } from '../cache/cache.ts'

export interface AdminDeps {
  proxy: () => ProxyView
  metrics: RequestMetrics
  /** performance.now() at start: uptime_s is a duration, on the monotonic clock. */
  startedAtMonoMs: number
  /** Worker label for metrics when several processes run. */
  worker?: string
  /** More Prometheus lines from other parts (automatic HTTPS: certificate days left). */
  extraMetrics?: (out: string[]) => void
  /** The edge cache, when on: /status, /metrics and DELETE /cache. */
  cache?: EdgeCache
  /** Automatic HTTPS, when on: /status's `acme`, and /readyz's words while no certificate exists (every handshake fails). */
  tls?: { status(): Record<string, unknown>; notReady(): string | undefined }
  /** Where the config file set the address (ResolvedConfig.fileKeys), for the error when it cannot be bound. */
  setAt?: string
}

export class AdminServer {
  private listener: Listener | undefined

  constructor(
    private cfg: ResolvedAdmin,
    private readonly deps: AdminDeps,
  ) {}

  /** Whether `next` listens where this does (its token may differ): then retoken() applies it, no socket changes. */
  listensAs(next: ResolvedAdmin): boolean {
    return JSON.stringify(this.cfg.listen) === JSON.stringify(next.listen)
  }

  /** A reload's admin settings for the same address (listensAs): the token, from the next request on. */
  retoken(next: ResolvedAdmin): void {
    this.cfg = next
  }

  start(): this {
    this.listener = listenAdmin(this.cfg, (req) => this.handle(req), this.deps.setAt)
    return this
  }

  get url(): string | undefined {
    return adminUrl(this.listener)
  }

  handle(req: Request): Response {
    const door = admit(req, this.cfg)
    if (door instanceof Response) return door
    const res = this.answer(req, door.url)
    return door.probeOnly ? probeWithoutDetails(res, door.url.pathname) : res
  }

  private answer(req: Request, url: URL): Response {
    const path = url.pathname
    switch (path) {
      case '/cache':
        return this.purge(req.method, url.searchParams)
      case '/healthz':
        return new Response('ok\n')
      case '/readyz': {
        const proxy = this.deps.proxy()
        // From the first moment of a drain: a load balancer must stop sending new traffic.
        if (proxy.draining) return new Response('not ready: draining\n', { status: 503 })
        // ?upstream=NAME asks about one; else the proxy is not ready only when no upstream can be
        // served: every instance sees the same dead origin, and a load balancer that took them all
        // out for one of several upstreams would cut the routes that were healthy too.
        const name = url.searchParams.get('upstream')
        const all = proxy.upstreams()
        const asked = name === null ? all : all.filter((u) => u.name === name)
        if (name !== null && asked.length === 0) return new Response(`no upstream named ${JSON.stringify(name)}; known: ${all.map((u) => u.name).join(', ')}\n`, { status: 404 })
        const notReady = asked.filter((u) => !u.pool.hasHealthyAddress())
        // No ACME certificate yet is said, not made a 503: taken out by a load balancer's or DNS
        // health check, a new instance would never see the CA's HTTP-01 request that brings it one.
        const why = [...notReady.map(whyNotReady), this.deps.tls?.notReady()].filter((w) => w !== undefined).join('; ')
        if (why === '') return new Response('ready\n')
        return notReady.length > 0 && notReady.length === asked.length ? new Response(`not ready: ${why}\n`, { status: 503 }) : new Response(`ready; but ${why}\n`)
      }
      case '/status':
        return Response.json(this.status())
      case '/metrics':
        return new Response(this.metrics(), { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } })
      default:
        return new Response('404 not found; try /status, /metrics, /healthz or /readyz\n', { status: 404 })
    }
  }

  /** DELETE /cache?url=<absolute URL> drops every variant of one key; ?prefix=<absolute URL prefix> every key under it. */
  private purge(method: string, params: URLSearchParams): Response {
    const cache = this.deps.cache
    if (method !== 'DELETE') return new Response('405 use DELETE /cache?url=<absolute URL> or DELETE /cache?prefix=<absolute URL prefix>\n', { status: 405, headers: { allow: 'DELETE' } })
    if (!cache) return new Response('404 the cache is off; turn it on with --cache SIZE or [cache] max_size\n', { status: 404 })
    const url = params.get('url')
    const prefix = params.get('prefix')
    const purged = url !== null ? cache.purgeUrl(url) : prefix !== null ? cache.purgePrefix(prefix) : undefined
    if (purged === undefined) return new Response('400 give ?url=<absolute http(s) URL> or ?prefix=<absolute http(s) URL prefix>, e.g. ?url=https://example.com/a?b=1 (URL-encoded)\n', { status: 400 })
    return Response.json({ purged })
  }

  status(): Record<string, unknown> {
    const proxy = this.deps.proxy()
    const upstreams: Record<string, unknown> = {}
    for (const { name, pool, source } of proxy.upstreams()) {
      const snap = source.snapshot()
      upstreams[name] = {
        url: pool.upstream.url,
        resolver: source.status?.() ?? { ready: snap.ready, stale: snap.stale, addresses: snap.addresses },
        connections_opened: pool.connectsTotal,
        tls_resumed: pool.tlsResumedTotal,
        addresses: pool.stats(),
      }
    }
    const cache = this.deps.cache?.status()
    const acme = this.deps.tls?.status()
    const cert = proxy.certificate
    const tls = cert ? { tls_certificate: { file: cert.file, not_after: new Date(cert.notAfterMs).toISOString(), days_left: Number(daysLeft(cert.notAfterMs, Date.now()).toFixed(3)) } } : {}
    return { version: VERSION, worker: this.deps.worker, pid: process.pid, uptime_s: Math.round((performance.now() - this.deps.startedAtMonoMs) / 1000), draining: proxy.draining, upstreams, ...tls, ...(cache ? { cache } : {}), ...(acme ? { acme } : {}) }
  }

  metrics(): string {
    const out: string[] = []
    const proxy = this.deps.proxy()
    this.deps.metrics.render(out)
    this.deps.extraMetrics?.(out)
    this.deps.cache?.renderMetrics(out)
    const gauge = (name: string, help: string, rows: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`)
      for (const [labels, v] of rows) out.push(`${name}{${labels}} ${v}`)
    }
    const addrRows = (fn: (s: AddressStats) => number) => {
      const rows: [string, number][] = []
      for (const { name, pool } of proxy.upstreams()) for (const s of pool.stats()) rows.push([`upstream="${esc(name)}",address="${esc(s.address)}"`, fn(s)])
      return rows
    }
    gauge('proxy_upstream_address_healthy', '1 when the address takes traffic.', addrRows((s) => (s.healthy ? 1 : 0)))
    gauge('proxy_upstream_address_in_flight', 'Requests in flight to the address.', addrRows((s) => s.in_flight))
    gauge('proxy_upstream_address_requests', 'Requests sent to the address since it appeared.', addrRows((s) => s.requests))
    gauge('proxy_upstream_address_failures', 'Connect failures of the address since it appeared.', addrRows((s) => s.failures))
    gauge('proxy_upstream_pool_open_connections', 'Open upstream connections (busy and idle).', addrRows((s) => s.open))
    gauge('proxy_upstream_pool_idle_connections', 'Idle pooled upstream connections.', addrRows((s) => s.idle))
    const conns: [string, number][] = proxy.upstreams().map((u) => [`upstream="${esc(u.name)}"`, u.pool.connectsTotal])
    out.push('# HELP proxy_upstream_connections_opened_total Upstream connections opened (TCP and, for https, TLS); a refused or failed dial is not one.', '# TYPE proxy_upstream_connections_opened_total counter')
    for (const [l, v] of conns) out.push(`proxy_upstream_connections_opened_total{${l}} ${v}`)
    out.push('# HELP proxy_upstream_tls_resumed_total Upstream connections whose TLS handshake resumed a kept session.', '# TYPE proxy_upstream_tls_resumed_total counter')
    for (const { name, pool } of proxy.upstreams()) out.push(`proxy_upstream_tls_resumed_total{upstream="${esc(name)}"} ${pool.tlsResumedTotal}`)
    const dns: { stale: [string, number][]; age: [string, number][]; addrs: [string, number][]; refresh: [string, number][] } = { stale: [], age: [], addrs: [], refresh: [] }
    for (const { name, source } of proxy.upstreams()) {
      const snap = source.snapshot()
      const l = `upstream="${esc(name)}"`
      dns.stale.push([l, snap.stale ? 1 : 0])
      dns.addrs.push([l, snap.addresses.length])
      const st = source.metrics?.()
      if (st) {
        if (st.answerAgeMs !== undefined) dns.age.push([l, st.answerAgeMs / 1000])
        for (const [result, n] of Object.entries(st.refreshes)) dns.refresh.push([`${l},result="${esc(result)}"`, n])
      }
    }
    gauge('proxy_dns_stale', '1 while DNS fails: the last good addresses are served until stale_grace ends, and none after it (proxy_dns_addresses 0).', dns.stale)
    gauge('proxy_dns_addresses', 'Addresses in the current answer.', dns.addrs)
    gauge('proxy_dns_answer_age_seconds', 'Age of the last good DNS answer.', dns.age)
    out.push('# HELP proxy_dns_refreshes_total DNS refreshes by result.', '# TYPE proxy_dns_refreshes_total counter')
    for (const [l, v] of dns.refresh) out.push(`proxy_dns_refreshes_total{${l}} ${v}`)
    const cert = proxy.certificate
    if (cert) gauge('proxy_tls_certificate_days_left', 'Days until the certificate served from tls_cert expires (negative: expired; a reload reads the files again).', [['', Number(daysLeft(cert.notAfterMs, Date.now()).toFixed(6))]])
    gauge('proxy_client_requests_in_flight', 'Client requests being served.', [['', proxy.pendingRequests]])
    const clientConns = proxy.clientConnections
    if (clientConns !== undefined) gauge('proxy_client_connections', 'Open client connections (listener = "own"; Bun.serve does not expose them).', [['', clientConns]])
    const tunnels = proxy.openTunnels
    if (tunnels !== undefined) gauge('proxy_open_tunnels', 'Client connections handed over to an upgrade (WebSocket and other protocols; listener = "own"): open tunnels, and upgrades waiting for or relaying the upstream\'s answer. Tunnel lifetimes are not in proxy_request_duration_seconds.', [['', tunnels]])
    out.push('# HELP proxy_client_requests_refused_total Requests the proxy answered itself without going upstream, by reason: malformed (refused by its request checks), overload (max_concurrent_requests), shutting_down, body_timeout (a stalled request body: client_body_timeout, or header_timeout where that wait ends first), and with listener = "own": connections (max_connections, or the open-files limit), header_timeout (client_header_timeout: the 408 for a head begun, and a connection that sent nothing in that time, closed without an answer).', '# TYPE proxy_client_requests_refused_total counter')
    for (const [reason, n] of Object.entries(proxy.refused)) out.push(`proxy_client_requests_refused_total{reason="${reason}"} ${n}`)
    const h2Errors = proxy.http2ConnectionErrors
    if (h2Errors) out.push('# HELP proxy_http2_connection_errors_total HTTP/2 client connections the proxy ended with GOAWAY and an error code (RFC 9113 §5.4.1), by code: PROTOCOL_ERROR and the like for a client that broke the protocol, ENHANCE_YOUR_CALM for one that made it work without progress (rapid resets, floods of SETTINGS, PING or empty frames), INTERNAL_ERROR for a fault of the proxy. Streams such a connection opened and reset at once never reach the access log. listener = "own" only.', '# TYPE proxy_http2_connection_errors_total counter', ...Object.entries(h2Errors).map(([code, n]) => `proxy_http2_connection_errors_total{code="${code}"} ${n}`))
    const text = out.join('\n') + '\n'
    return this.deps.worker ? text.replace(/^(proxy_\w+)\{/gm, `$1{worker="${esc(this.deps.worker)}",`).replace(/^(proxy_\w+) /gm, `$1{worker="${esc(this.deps.worker)}"} `) : text.replace(/\{\} /g, ' ')
  }

  async close(): Promise<void> {
    await this.listener?.stop(true)
    this.listener = undefined
  }
}

/**
 * Opens an admin listener (plain HTTP, small bodies) for `cfg.listen`, or none when it is off.
 * Throws E_LISTEN naming the flag to change. Used by a worker's admin and the supervisor's.
 */
export function listenAdmin(cfg: ResolvedAdmin, fetch: (req: Request) => Response | Promise<Response>, setAt?: string): Listener | undefined {
  const l = cfg.listen
  if (!l) return undefined
  try {
    return listen({ hostname: l.host, port: l.port, tls: undefined, idleTimeoutS: 30, maxRequestBodySize: 1024, fetch, onError: () => {} })
  } catch (err) {
    throw listenError('admin', l.host, l.port, err, undefined, setAt)
  }
}

export function adminUrl(listener: Listener | undefined): string | undefined {
  return listener ? `http://${hostPort(listener.hostname, listener.port)}` : undefined
}

/** Loopback however written: 127.0.0.0/8 (IPv4-mapped too: ::ffff:127.0.0.1) and ::1 (0:0:0:0:0:0:0:1 too). */
const LOOPBACK = [parseCidr('127.0.0.0/8')!, parseCidr('::1/128')!]

/**
 * The warning to log when the admin endpoints answer beyond loopback to anyone (an address other
 * than 127.0.0.0/8, ::1 or localhost, and no token); undefined otherwise.
 */
export function exposedAdminWarning(admin: { listen: { host: string; port: number } | undefined; token: string | undefined }): string | undefined {
  const host = admin.listen?.host
  if (host === undefined || admin.token) return undefined
  return isLoopback(host) ? undefined : `the admin endpoints listen on ${hostPort(host, admin.listen!.port)} without a token: anyone who reaches it can read /status and /metrics and purge the cache; set --admin-token (admin.token) or listen on 127.0.0.1`
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || LOOPBACK.some((c) => cidrContains(c, host))
}

/**
 * A 403 for a request whose Host does not name loopback, when the admin listens on loopback.
 * A web page the operator visits can have its own name re-resolved to 127.0.0.1 (DNS rebinding)
 * and then read /status and /metrics, and send DELETE /cache, as the same origin, with Host
 * naming the page's site; a client that really reaches a loopback listener names loopback
 * (127.0.0.1, [::1], localhost) or sends no Host at all (no browser does that). An admin beyond
 * loopback is not checked (a scraper may name it by any DNS name); its token is what guards it.
 * Part of admit(), the front door both admins share.
 */
export function refuseForeignHost(req: Request, listenHost: string | undefined, token: string | undefined): Response | undefined {
  const host = req.headers.get('host')
  // With a token, a rebinding page cannot send it: the check would only refuse a local reverse
  // proxy or scraper that names the admin otherwise (nginx's proxy_set_header Host $host).
  if (host === null || token !== undefined || listenHost === undefined || !isLoopback(listenHost)) return undefined
  let name = hostWithoutPort(host)
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1)
  else if (name.endsWith('.')) name = name.slice(0, -1)
  if (isLoopback(name)) return undefined
  return new Response('403 the admin listener is on loopback and answers only a Host naming loopback (127.0.0.1, [::1] or localhost), so that a web page cannot reach it by DNS rebinding; a reverse proxy in front of it must send Host: 127.0.0.1\n', { status: 403 })
}

/** One upstream with no healthy address, and why when DNS says (its last error: NXDOMAIN, a timeout ...). */
function whyNotReady(u: UpstreamView): string {
  const snap = u.source.snapshot()
  const dns = snap.lastError && snap.addresses.length === 0 ? ` (DNS: ${snap.lastError.code}: ${snap.lastError.message})` : ''
  return `no healthy address for upstream ${u.name}${dns}`
}

/**
 * The request's URL. Bun gives an absolute one when the request carried a Host, else the target
 * as sent ("/healthz": HTTP/1.0 allows no Host, and a bare health check may send none), which
 * new URL() throws on; it is read against a placeholder origin then. undefined when the Host
 * makes no URL ("[::1%25lo]", "a:99999"): the caller answers 400 (RFC 9112 §3.2), where the
 * throw had answered 500 "internal error", logged nowhere.
 */
function requestUrl(req: Request): URL | undefined {
  try {
    return new URL(req.url, 'http://admin.invalid')
  } catch {
    return undefined
  }
}

/** The answer to a request whose Host is no host[:port] (requestUrl). */
function badHost(): Response {
  return new Response('400 invalid Host: give host[:port], an IPv6 address in brackets without a zone, a port from 1 to 65535\n', { status: 400 })
}

/**
 * The admin's front door, shared with workers-admin.ts: a refusal (a foreign Host on loopback, no
 * token, a Host that makes no URL, a write to a read-only path), or the URL to answer. /healthz
 * and /readyz, which a load balancer's health check asks for, are answered without the token
 * (cloud health checks send no headers, and a 401 took every instance out of its balancer until
 * the eighteenth round of outside reviews), but then without details (probeOnly:
 * probeWithoutDetails) and without their query (?upstream=NAME's 404 or 503 told which
 * upstreams exist and how each fares).
 */
export function admit(req: Request, cfg: { listen?: { host: string } | undefined; token?: string | undefined }): Response | { url: URL; probeOnly: boolean } {
  const foreign = refuseForeignHost(req, cfg.listen?.host, cfg.token)
  if (foreign) return foreign
  const url = requestUrl(req)
  const tokenless = refuseWithoutToken(req, cfg.token)
  const probe = url?.pathname === '/healthz' || url?.pathname === '/readyz'
  if (tokenless && !probe) return tokenless
  if (!url) return badHost()
  const wrongMethod = refuseWrite(req, url.pathname)
  if (wrongMethod) return wrongMethod
  return tokenless ? { url: new URL(url.pathname, url), probeOnly: true } : { url, probeOnly: false }
}

/** A probe's answer for a request without the token (asked without its query): its status, and only ok / not ok (/healthz) or ready / not ready (/readyz). */
export function probeWithoutDetails(res: Response, path: string): Response {
  const word = path === '/healthz' ? 'ok' : 'ready'
  const body = res.status === 200 ? `${word}\n` : res.status === 503 ? `not ${word}\n` : `${res.status}\n`
  return new Response(body, { status: res.status })
}

/** A 401 when the admin token is set and `req` does not carry it. */
function refuseWithoutToken(req: Request, token: string | undefined): Response | undefined {
  if (!token || tokenMatches(req.headers.get('authorization'), token)) return undefined
  return new Response('401 admin token required\n', { status: 401, headers: { 'www-authenticate': 'Bearer' } })
}

/**
 * A 405 for a method the read-only endpoints do not take (all but /cache, which takes DELETE):
 * RFC 9110 §15.5.6, with Allow. A POST to /metrics is a mistake worth telling, not a read.
 */
function refuseWrite(req: Request, path: string): Response | undefined {
  if (path === '/cache' || req.method === 'GET' || req.method === 'HEAD') return undefined
  return new Response(`405 ${path} answers GET and HEAD only\n`, { status: 405, headers: { allow: 'GET, HEAD' } })
}

/** A token's SHA-256: 32 bytes whatever the token's length. */
function sha256(text: string): Uint8Array {
  return createHash('sha256').update(text).digest()
}

/**
 * Constant-time check of "Authorization: Bearer <token>" (the scheme's name in any case, RFC 9110
 * §11.1). The digests of both are compared, not the tokens: timingSafeEqual needs equal lengths,
 * and a check that returned early on a length mismatch told a client, by how soon its 401 came,
 * how long the token is. `digest` is for tests (that every check goes through it).
 */
export function tokenMatches(header: string | null, token: string, digest: (text: string) => Uint8Array = sha256): boolean {
  const m = header ? /^bearer +(.+)$/i.exec(header) : null
  const same = timingSafeEqual(digest(m ? m[1]! : ''), digest(token))
  return m !== null && same
}
