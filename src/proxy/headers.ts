/**
 * Pure header rules for both directions: hop-by-hop removal (RFC 9110 §7.6.1), the
 * X-Forwarded-* family (trusted peers append, anyone else is replaced), Via (§7.6.3), the
 * request id, and the Host header sent upstream. No I/O; table-tested in test/proxy/headers.test.ts.
 */
import type { ForwardedLines } from '../http1/request-encode.ts'
import { HeadHeaders, type RequestHead } from '../http1/request-head.ts'
import { putLatin1 } from '../lib/bytes.ts'
import { bracketedIpv6, bracketHost, hostPort } from '../lib/net.ts'
import type { HeaderReader } from './message.ts'

/**
 * A client's address as the proxy forwards (X-Forwarded-For) and logs it: an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), which is how a dual-stack [::] listener sees an
 * IPv4 client, is the IPv4 address it stands for, as on a 0.0.0.0 listener. Once per connection.
 */
export function clientAddress(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.', 7) ? ip.slice(7) : ip
}

/** Always hop-by-hop, plus whatever a Connection header lists (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
])

/**
 * Headers we set ourselves upstream; the client's copies are dropped or merged. With them go the
 * client's spellings of our names with '_' for '-' (X_Forwarded_For): CGI, PHP and WSGI servers
 * read both as HTTP_X_FORWARDED_FOR, so a client could put its own value beside ours (nginx drops
 * every name with '_' by default; only these are dropped here).
 */
const FORWARDING = new Set(withUnderscores(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id', 'host', 'content-length', 'via']))

/**
 * What a client that is not a trusted proxy may not say about itself either: fields that
 * frameworks and load balancers read as the client's address, scheme, port, host or URL (Rack
 * reads X-Forwarded-Scheme, -Ssl and -Port, Symfony -Prefix and -Port and X-Original-URL,
 * Tornado X-Scheme before X-Forwarded-Proto, Mojolicious X-Forwarded-HTTPS, WebLogic
 * WL-Proxy-Client-IP, Envoy X-Forwarded-Client-Cert, Jetty X-Proxied-Https, Proxy-Ssl-Id and
 * Proxy-Auth-Cert as "the client came over TLS", many apps X-Real-IP as nginx sets it). The
 * proxy sets none of them, so an origin that trusts it would take a client's own; from a trusted
 * peer they pass, as its X-Forwarded-* do.
 */
const SPOOFABLE = [
  'x-real-ip', 'x-client-ip', 'client-ip', 'true-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-original-forwarded-for', 'x-forwarded', 'forwarded-for',
  'x-remote-addr', 'x-remote-ip', 'x-originating-ip', 'wl-proxy-client-ip', 'proxy-client-ip', 'x-envoy-external-address',
  'x-forwarded-port', 'x-forwarded-scheme', 'x-forwarded-protocol', 'x-forwarded-ssl', 'x-url-scheme', 'front-end-https', 'x-scheme', 'x-forwarded-https', 'x-arr-ssl', 'wl-proxy-ssl',
  'x-proxied-https', 'proxy-ssl-id', 'proxy-auth-cert',
  'x-forwarded-client-cert', 'x-forwarded-prefix', 'x-forwarded-server', 'x-original-host', 'x-host', 'x-original-url', 'x-original-uri', 'x-rewrite-url', 'x-forwarded-uri',
]
const FORWARDING_UNTRUSTED = new Set([...FORWARDING, ...withUnderscores(SPOOFABLE)])

/** Each name, and every spelling of it with some of its '-' as '_'. */
export function withUnderscores(names: readonly string[]): string[] {
  return names.flatMap((name) => name.split('-').reduce<string[]>((spellings, part, i) => (i === 0 ? [part] : spellings.flatMap((s) => [`${s}-${part}`, `${s}_${part}`])), []))
}

export interface ForwardContext {
  /** The direct peer's IP. */
  clientIp: string
  /** Whether the direct peer is in trusted_proxies: its X-Forwarded-* are kept and appended to. */
  trustedPeer: boolean
  /** "http" or "https": how the client reached us. */
  proto: 'http' | 'https'
  /** The Host header the client sent (already validated by the listener), or the upstream's authority where it sent none (HTTP/1.0). */
  clientHost: string
  /** false: the client sent no Host (HTTP/1.0), so no X-Forwarded-Host says it used one (the upstream's own authority). */
  clientSentHost?: boolean
  /** Fixed upstream Host, or undefined to keep the client's. */
  hostOverride: string | undefined
  requestId: string
  /** This proxy's Via entry for the request ("1.1 proxy": the client's protocol and server.via), or undefined for none. */
  via?: string
  /** The client connection's own X-Forwarded-* lines, where its listener keeps them (ForwardingLines). */
  forwarding?: ForwardingLines
}

/**
 * A client connection's X-Forwarded-For, -Proto and -Host lines, encoded once and given again
 * while the connection's Host repeats: for a peer that is not trusted they depend on nothing
 * else (its own X-Forwarded-* are dropped). One per connection, made by its listener.
 */
export class ForwardingLines {
  private host: string | undefined
  private ip = ''
  private proto = ''
  private bytes = new Uint8Array(0)
  /** The same lines as the ForwardedLines of a head sent from its list (no client lines): made again with them, never changed. */
  private alone: ForwardedLines = { bytes: NO_BYTES, ranges: NO_RANGES, own: this.bytes }

  of(ctx: ForwardContext): Uint8Array {
    // A request without Host (HTTP/1.0) has no X-Forwarded-Host: its key is one no Host can be.
    const host = ctx.clientSentHost === false ? '' : ctx.clientHost
    if (host !== this.host || ctx.clientIp !== this.ip || ctx.proto !== this.proto) {
      this.host = host
      this.ip = ctx.clientIp
      this.proto = ctx.proto
      // What addForwarding sends for such a peer, as lines.
      const lines = `x-forwarded-for: ${this.ip}\r\nx-forwarded-proto: ${this.proto}\r\n${host === '' ? '' : `x-forwarded-host: ${host}\r\n`}`
      this.bytes = new Uint8Array(lines.length)
      putLatin1(this.bytes, 0, lines)
    }
    return this.bytes
  }

  /** of(ctx) as the only lines of a head (upstreamRequestFields), one object while they repeat: a request keeps its own. */
  linesOf(ctx: ForwardContext): ForwardedLines {
    const own = this.of(ctx)
    if (this.alone.own !== own) this.alone = { bytes: NO_BYTES, ranges: NO_RANGES, own }
    return this.alone
  }
}

/**
 * The fields a Connection value (lower-case, lines joined) names beyond the always-hop-by-hop set:
 * hop-by-hop for this message too (RFC 9110 §7.6.1); undefined when none (the usual keep-alive).
 */
export function listedByConnection(connection: string): string[] | undefined {
  if (connection === '' || connection === 'keep-alive') return undefined
  let listed: string[] | undefined
  for (const t of connectionTokens(connection) ?? []) if (!HOP_BY_HOP.has(t)) (listed ??= []).push(t)
  return listed
}

/** Names listed in Connection (lower-case), which are hop-by-hop for this message. */
export function connectionTokens(connectionValue: string | null): Set<string> | undefined {
  if (!connectionValue) return undefined
  const set = new Set<string>()
  for (const t of connectionValue.split(',')) {
    const name = t.trim().toLowerCase()
    if (name) set.add(name)
  }
  return set
}

/**
 * Request headers to send upstream, in the client's order, minus hop-by-hop ones, plus Host,
 * X-Forwarded-* and X-Request-Id. Content-Length and Transfer-Encoding are framing and are set
 * by the transport.
 */
export function upstreamRequestHeaders(incoming: HeaderReader, ctx: ForwardContext): [string, string][] {
  const listed = connectionTokens(incoming.get('connection'))
  return addForwarding(clientFields(incoming, ctx, listed), incoming, ctx, listed)
}

/**
 * The same fields for an exchange (encodeRequestHead): where the connection keeps its
 * X-Forwarded-* lines (an untrusted peer's), those go as `lines.own`, after Host and before the
 * client's fields (nginx's order for the fields it sets), and only X-Request-Id is added to the list.
 */
export function upstreamRequestFields(incoming: HeaderReader, ctx: ForwardContext, into: UpstreamFields = { headers: [], lines: undefined }): UpstreamFields {
  if (ctx.trustedPeer || ctx.forwarding === undefined) {
    into.headers = upstreamRequestHeaders(incoming, ctx)
    into.lines = undefined
    return into
  }
  const listed = connectionTokens(incoming.get('connection'))
  const headers = clientFields(incoming, ctx, listed)
  addVia(headers, incoming, ctx, listed)
  headers.push(['x-request-id', ctx.requestId])
  into.headers = headers
  into.lines = ctx.forwarding.linesOf(ctx)
  return into
}

/**
 * The fields of a request sent upstream, as an OutgoingRequest carries them: a list, and lines
 * copied as they came. The functions that make them fill `into` (the request path's outgoing
 * request itself: no object made for them) or a new one.
 */
export interface UpstreamFields {
  headers: [string, string][]
  lines?: ForwardedLines | undefined
}

/**
 * Host, then the client's fields that go upstream. A parsed head's are read by index (no closure
 * made, and a value is decoded only when its field goes on); anything else through forEach.
 */
function clientFields(incoming: HeaderReader, ctx: ForwardContext, listed: Set<string> | undefined): [string, string][] {
  const out: [string, string][] = [['host', ctx.hostOverride ?? ctx.clientHost]]
  const trusted = ctx.trustedPeer
  if (incoming instanceof HeadHeaders) {
    for (let i = 0; i < incoming.count; i++) {
      const name = incoming.nameAt(i)
      if (isForwarded(name, listed, trusted)) out.push([name, incoming.valueAt(i)])
    }
    return out
  }
  incoming.forEach((value, name) => {
    if (isForwarded(name, listed, trusted)) out.push([name, value])
  })
  return out
}

const NO_BYTES = new Uint8Array(0)
const NO_RANGES: readonly number[] = []

/** The connection's X-Forwarded-* lines, for a peer that is not trusted; undefined otherwise. */
function ownLines(ctx: ForwardContext): Uint8Array | undefined {
  return ctx.trustedPeer || ctx.forwarding === undefined ? undefined : ctx.forwarding.of(ctx)
}

/** Whether the client's field `name` (lower-case) goes upstream as it came: not hop-by-hop, not listed in Connection, not one the proxy sets itself, nor (from a peer that is not trusted) one that says where the client is (SPOOFABLE). */
function isForwarded(name: string, listed: Set<string> | undefined, trusted: boolean): boolean {
  return !HOP_BY_HOP.has(name) && !(trusted ? FORWARDING : FORWARDING_UNTRUSTED).has(name) && !listed?.has(name)
}

/**
 * The same for a head the own listener parsed: the client's lines that upstreamRequestHeaders
 * would keep are copied as they came (`lines`, runs of whole lines of `head.bytes`: the name's
 * case and the spacing around the value are the client's, where the list path writes the name in
 * lower case and one space before the trimmed value; nginx keeps the case and trims), without a
 * string made of their values; `headers` holds Host, which the lines follow, then X-Forwarded-*
 * and X-Request-Id.
 */
export function upstreamRequestLines(incoming: HeaderReader, head: RequestHead, ctx: ForwardContext, into: UpstreamFields = { headers: [], lines: undefined }): UpstreamFields & { lines: ForwardedLines } {
  const listed = connectionTokens(incoming.get('connection'))
  const { names, spans } = head
  const ranges: number[] = []
  for (let i = 0; i < names.length; i++) {
    if (!isForwarded(names[i]!, listed, ctx.trustedPeer)) continue
    const start = spans[4 * i]!
    const next = spans[4 * i + 3]!
    // Consecutive kept lines are one range.
    if (ranges.length > 0 && ranges[ranges.length - 1] === start) ranges[ranges.length - 1] = next
    else ranges.push(start, next)
  }
  const host: [string, string][] = [['host', ctx.hostOverride ?? ctx.clientHost]]
  const own = ownLines(ctx)
  const out = into as UpstreamFields & { lines: ForwardedLines }
  if (own === undefined) {
    out.headers = addForwarding(host, incoming, ctx, listed)
    out.lines = { bytes: head.bytes, ranges }
    return out
  }
  addVia(host, incoming, ctx, listed)
  host.push(['x-request-id', ctx.requestId])
  out.headers = host
  out.lines = { bytes: head.bytes, ranges, own }
  return out
}

/**
 * Appends X-Forwarded-For, -Proto, -Host, Forwarded (from a trusted peer) and X-Request-Id to
 * `out`. A trusted peer's fields that its Connection lists are hop-by-hop for this message (RFC
 * 9110 §7.6.1): not appended to, as if absent.
 */
function addForwarding(out: [string, string][], incoming: HeaderReader, ctx: ForwardContext, listed: Set<string> | undefined): [string, string][] {
  const priorFor = prior(incoming, ctx, listed, 'x-forwarded-for')
  out.push(['x-forwarded-for', priorFor ? `${priorFor}, ${ctx.clientIp}` : ctx.clientIp])
  out.push(['x-forwarded-proto', forwardedProto(prior(incoming, ctx, listed, 'x-forwarded-proto')) ?? ctx.proto])
  const priorHost = prior(incoming, ctx, listed, 'x-forwarded-host')
  if (priorHost !== null || ctx.clientSentHost !== false) out.push(['x-forwarded-host', priorHost ?? ctx.clientHost])
  const fwd = prior(incoming, ctx, listed, 'forwarded')
  if (fwd) out.push(['forwarded', fwd])
  addVia(out, incoming, ctx, listed)
  out.push(['x-request-id', ctx.requestId])
  return out
}

/**
 * The scheme a trusted peer's X-Forwarded-Proto says its client used: its last member (the one
 * the peer itself wrote; a balancer that adds its line after the client's, "https, http" or two
 * lines, vouches for that one only) when that is http or https, in lower case; undefined
 * otherwise, and the proxy's own scheme goes instead. The origin is sent that one value, and the
 * cache keys that scheme (key.ts). Until the eighteenth round of outside reviews a list was
 * replaced by the proxy's own scheme; its first fix took the first member, which a client behind
 * such a balancer writes itself (second opinion).
 */
export function forwardedProto(value: string | null): 'http' | 'https' | undefined {
  if (value === null) return undefined
  const last = value.slice(value.lastIndexOf(',') + 1).replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase()
  return last === 'https' || last === 'http' ? last : undefined
}

/**
 * What a trusted peer's X-Forwarded-Proto and X-Forwarded-Host say, read as they are forwarded
 * (addForwarding): a field the request's Connection lists is not passed on, so it says nothing;
 * the scheme by forwardedProto. The one reading for the cache key (key.ts) and the client's
 * origin in rewritten redirects (rewrite.ts): read apart, a redirect the origin built from one
 * value was stored under a key made from another (second opinion, eighteenth round).
 */
export function trustedForwarding(incoming: HeaderReader): { proto: 'http' | 'https' | undefined; host: string | null } {
  const listed = connectionTokens(incoming.get('connection'))
  return {
    proto: forwardedProto(listed?.has('x-forwarded-proto') ? null : incoming.get('x-forwarded-proto')),
    host: listed?.has('x-forwarded-host') ? null : incoming.get('x-forwarded-host'),
  }
}

/** A trusted peer's value of the forwarding field `name`, unless its Connection lists it; null from anyone else. */
function prior(incoming: HeaderReader, ctx: ForwardContext, listed: Set<string> | undefined, name: string): string | null {
  return ctx.trustedPeer && !listed?.has(name) ? incoming.get(name) : null
}

/**
 * Appends Via (RFC 9110 §7.6.3): the client's Via lines as one list, then this proxy's entry
 * (a gateway MUST send one in each request it forwards, after those before it); with server.via
 * "off", the client's as they came. The client's lines are never copied as they came (FORWARDING).
 */
function addVia(out: [string, string][], incoming: HeaderReader, ctx: ForwardContext, listed: Set<string> | undefined): void {
  const prior = listed?.has('via') ? null : incoming.get('via')
  const own = ctx.via
  if (prior === null) {
    if (own !== undefined) out.push(['via', own])
  } else out.push(['via', own === undefined ? prior : `${prior}, ${own}`])
}

/** Lengths of the response header names clientResponseHeaders may drop; others skip the lower-casing. */
const DROPPABLE_LENGTHS = new Set([...HOP_BY_HOP, 'x-request-id', 'content-length'].map((n) => n.length))

/** Response headers to send to the client: hop-by-hop removed, X-Request-Id added. */
export function clientResponseHeaders(upstream: readonly (readonly [string, string])[], requestId: string, keepContentLength: boolean): [string, string][] {
  // Names a Connection header lists beyond the fixed hop-by-hop set (rare): then every name is checked.
  let listed: Set<string> | undefined
  for (const [name, value] of upstream) {
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const t of connectionTokens(value) ?? []) if (!HOP_BY_HOP.has(t)) (listed ??= new Set()).add(t)
    }
  }
  const out: [string, string][] = []
  for (const pair of upstream) {
    const name = pair[0]
    if (listed !== undefined || DROPPABLE_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower) || listed?.has(lower) || lower === 'x-request-id') continue
      if (lower === 'content-length' && !keepContentLength) continue
    }
    out.push(pair as [string, string])
  }
  out.push(['x-request-id', requestId])
  return out
}

const REQUEST_ID = /^[A-Za-z0-9._:\-]{1,200}$/

/**
 * Keeps a client's X-Request-Id when it is short and plain; otherwise makes a new one. One the
 * client's Connection lists is hop-by-hop (RFC 9110 §7.6.1): meant for no one past this hop.
 */
export function requestIdFor(headers: { get(name: string): string | null }): string {
  const incoming = headers.get('x-request-id')
  if (!incoming || !REQUEST_ID.test(incoming)) return crypto.randomUUID()
  const connection = headers.get('connection')
  return connection !== null && connectionTokens(connection)?.has('x-request-id') ? crypto.randomUUID() : incoming
}

/** The Host header without a port, lower-case, for route matching; an IPv6 literal in its shortest form ("[::1]"). */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    const literal = end > 0 ? host.slice(0, end + 1) : host
    return bracketedIpv6(literal) ?? literal.toLowerCase()
  }
  const colon = host.indexOf(':')
  return (colon >= 0 ? host.slice(0, colon) : host).toLowerCase()
}

/**
 * The upstream's own authority, for a Host header when the client sent none (HTTP/1.0) and for
 * health checks: host, with the port unless it is the scheme's default (RFC 9110 §7.2).
 */
export function upstreamAuthority(u: { host: string; port: number; scheme: 'http' | 'https' }): string {
  return u.port === (u.scheme === 'https' ? 443 : 80) ? bracketHost(u.host) : hostPort(u.host, u.port)
}

/**
 * The Upgrade protocols a tunnel may ask the upstream for: never h2c (RFC 9113 §3.1 retired the
 * HTTP/1.1 upgrade to HTTP/2; a proxy that tunnelled it would hand the client a raw connection to
 * the origin). Undefined when nothing else is asked: the request is then served as plain HTTP/1.1,
 * its Upgrade and Connection fields dropped as hop-by-hop.
 */
export function withoutH2c(upgrade: string): string | undefined {
  if (!/h2c/i.test(upgrade)) return upgrade
  // By its name, whatever version it is given ("h2c/2" is h2c too): names compare case-insensitively (RFC 9110 §7.8).
  const rest = upgrade.split(',').map((p) => p.trim()).filter((p) => p !== '' && p.split('/', 1)[0]!.trim().toLowerCase() !== 'h2c')
  return rest.length > 0 ? rest.join(', ') : undefined
}
