/**
 * Pure response-header rewrites that hide the upstream's own address from clients, as nginx's
 * proxy_redirect, proxy_cookie_domain and proxy_cookie_path do: Location, Content-Location and
 * Refresh URLs, and the Domain and Path attributes of Set-Cookie. The rules come from the
 * upstream's config (fields.ts); which headers are relayed at all is headers.ts's business.
 * No I/O; table-tested in test/proxy/rewrite.test.ts.
 */
import type { RedirectRule, ResolvedUpstream, RewritePair } from '../config/schema.ts'
import { bytesEqualLower } from '../http1/chars.ts'
import type { RawFields } from '../http1/response-head.ts'
import { trustedForwarding } from './headers.ts'
import type { HeaderReader } from './message.ts'

/** One upstream's rules, built once per config generation. */
export interface ResponseRewriter {
  /** The upstream as the proxy dials it: what a "default" rule recognises. */
  readonly scheme: 'http' | 'https'
  readonly host: string
  readonly port: number
  readonly redirect: readonly RedirectRule[]
  readonly cookieDomain: readonly RewritePair[]
  readonly cookiePath: readonly RewritePair[]
}

/** What the handler knows of how the client reached us. */
export interface ClientView {
  tls: boolean
  /** The request's headers: Host, and from a trusted peer X-Forwarded-Proto and -Host. */
  headers: HeaderReader
  /** Whether the direct peer is in trusted_proxies. */
  trustedPeer: boolean
}

/** The rules of one upstream, or undefined when it has none (then there is nothing to do). */
export function responseRewriterFor(u: ResolvedUpstream): ResponseRewriter | undefined {
  if (u.redirectRewrites.length === 0 && u.cookieDomainRewrites.length === 0 && u.cookiePathRewrites.length === 0) return undefined
  return {
    scheme: u.scheme,
    host: u.host.toLowerCase(),
    port: u.port,
    redirect: u.redirectRewrites,
    cookieDomain: u.cookieDomainRewrites,
    cookiePath: u.cookiePathRewrites,
  }
}

/**
 * Whether a response with these fields (an upstream's head, still as bytes) has any the rules
 * could rewrite; most have none, and their fields are then forwarded as they came.
 */
export function rewrites(raw: RawFields, rw: ResponseRewriter): boolean {
  const { bytes, spans } = raw
  const cookies = rw.cookieDomain.length > 0 || rw.cookiePath.length > 0
  const redirects = rw.redirect.length > 0
  for (let i = 0; i < spans.length; i += 4) {
    const from = spans[i]!
    const to = spans[i + 1]!
    const len = to - from
    if (len === 8) {
      if (redirects && bytesEqualLower(bytes, from, to, 'location')) return true
    } else if (len === 16) {
      if (redirects && bytesEqualLower(bytes, from, to, 'content-location')) return true
    } else if (len === 7) {
      if (redirects && bytesEqualLower(bytes, from, to, 'refresh')) return true
    } else if (len === 10) {
      if (cookies && bytesEqualLower(bytes, from, to, 'set-cookie')) return true
    }
  }
  return false
}

/**
 * Rewrites, in place, the response headers relayed to a client. Most responses carry none of
 * the four headers: the names are told apart by length before any lower-casing.
 */
export function rewriteResponseHeaders(headers: [string, string][], rw: ResponseRewriter, client: ClientView): void {
  let origin: string | null | undefined // the client's scheme://host, worked out on first need
  const clientOrigin = () => (origin === undefined ? (origin = clientOriginOf(client)) : origin)
  const cookies = rw.cookieDomain.length > 0 || rw.cookiePath.length > 0
  for (let i = 0; i < headers.length; i++) {
    const [rawName, value] = headers[i]!
    const len = rawName.length
    if (len !== 8 && len !== 16 && len !== 7 && len !== 10) continue
    const name = rawName.toLowerCase()
    let next = value
    if (name === 'location' || name === 'content-location') {
      if (rw.redirect.length > 0) next = rewriteUrl(value, rw, clientOrigin)
    } else if (name === 'refresh') {
      if (rw.redirect.length > 0) next = rewriteRefresh(value, rw, clientOrigin)
    } else if (name === 'set-cookie' && cookies) {
      next = rewriteSetCookie(value, rw)
    }
    // A new pair, not an edit: the pairs may be shared with the upstream's parsed head.
    if (next !== value) headers[i] = [rawName, next]
  }
}

/**
 * The URL the client used, as scheme://host: the scheme it reached us with and its Host header;
 * behind a trusted proxy, what that proxy says in X-Forwarded-Proto and X-Forwarded-Host (the
 * same values the upstream is told). null when unknown (an HTTP/1.0 request without Host).
 */
export function clientOriginOf(client: ClientView): string | null {
  let proto = client.tls ? 'https' : 'http'
  let host = client.headers.get('host')
  if (client.trustedPeer) {
    // As the upstream is told and the cache keys it (headers.ts trustedForwarding): a list's last
    // member, nothing from a field the request's Connection lists.
    const fwd = trustedForwarding(client.headers)
    if (fwd.proto !== undefined) proto = fwd.proto
    if (fwd.host && HOST_VALUE.test(fwd.host)) host = fwd.host
  }
  return host ? `${proto}://${host}` : null
}

/** A single Host value (RFC 9110 §7.2): reg-name or IPv4, or [IPv6], and an optional port. No list. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+;=-]+)(?::\d*)?$/

/**
 * One Location or Content-Location value. A relative reference (RFC 9110 §10.2.2 allows them)
 * is resolved by the client against the URL it used, so it already points at us: it is never
 * touched by "default". Only explicit FROM TO pairs may match one.
 */
export function rewriteUrl(value: string, rw: ResponseRewriter, clientOrigin: () => string | null): string {
  for (const rule of rw.redirect) {
    if (rule === 'default') {
      const rest = restAfterUpstreamOrigin(value, rw)
      if (rest === undefined) continue
      const origin = clientOrigin()
      if (origin === null) return value
      return origin + rest
    }
    if (value.startsWith(rule.from)) return rule.to + value.slice(rule.from.length)
  }
  return value
}

/**
 * When `value` is an absolute URL at the upstream itself (same scheme, host and port, RFC 3986
 * §6.2.2.1 and §6.2.3: scheme and host compare case-insensitively, an absent or empty port is
 * the scheme's default), the part after its authority: path, query and fragment, as written.
 */
function restAfterUpstreamOrigin(value: string, rw: ResponseRewriter): string | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/.exec(value)
  if (!m || m[1]!.toLowerCase() !== rw.scheme) return undefined
  const authority = m[2]!
  if (authority.includes('@')) return undefined // userinfo: not a URL the proxy dials
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority)
  if (!hp) return undefined
  const rawHost = hp[1]!.startsWith('[') ? hp[1]!.slice(1, -1) : hp[1]!
  const port = hp[2] ? Number(hp[2]) : rw.scheme === 'https' ? 443 : 80
  if (rawHost.toLowerCase() !== rw.host || port !== rw.port) return undefined
  return value.slice(m[0].length)
}

/** Refresh: "5; url=http://origin/next" (HTML's shared declarative refresh syntax); only the URL changes. */
export function rewriteRefresh(value: string, rw: ResponseRewriter, clientOrigin: () => string | null): string {
  const m = /^([^;,]*[;,]\s*url\s*=\s*)(["']?)(.*?)(\2\s*)$/is.exec(value)
  if (!m) return value
  const url = rewriteUrl(m[3]!, rw, clientOrigin)
  return url === m[3] ? value : `${m[1]}${m[2]}${url}${m[4]}`
}

/**
 * Set-Cookie's Domain and Path attributes (RFC 6265 §5.2.3, §5.2.4); the rest of the line is
 * kept byte for byte. Domain: FROM matches the whole value, case-insensitively, a leading dot
 * ignored (as §5.2.3 ignores it). Path: FROM is a prefix, case-sensitive as paths are.
 */
export function rewriteSetCookie(value: string, rw: ResponseRewriter): string {
  const parts = value.split(';')
  let changed = false
  for (let i = 1; i < parts.length; i++) {
    const m = /^(\s*)(domain|path)(\s*=\s*)(.*?)(\s*)$/i.exec(parts[i]!)
    if (!m) continue
    const attr = m[2]!.toLowerCase()
    const old = m[4]!
    const next = attr === 'domain' ? rewriteDomain(old, rw.cookieDomain) : rewritePath(old, rw.cookiePath)
    if (next !== old) {
      parts[i] = `${m[1]}${m[2]}${m[3]}${next}${m[5]}`
      changed = true
    }
  }
  return changed ? parts.join(';') : value
}

function rewriteDomain(domain: string, rules: readonly RewritePair[]): string {
  const dot = domain.startsWith('.') ? '.' : ''
  const bare = domain.slice(dot.length).toLowerCase()
  for (const r of rules) {
    if (bare === r.from.replace(/^\./, '').toLowerCase()) return dot + r.to.replace(/^\./, '')
  }
  return domain
}

function rewritePath(path: string, rules: readonly RewritePair[]): string {
  for (const r of rules) if (path.startsWith(r.from)) return r.to + path.slice(r.from.length)
  return path
}
