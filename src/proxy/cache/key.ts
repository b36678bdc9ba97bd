/**
 * The primary cache key (RFC 9111 §2): the target URI as scheme://host[:port]/path?query, with
 * the scheme and host lower-cased and a default port dropped (RFC 9110 §4.2.3), and a host's final
 * dot (the same DNS name, RFC 1034 §3.1; routing reads it so too). The path and query are kept as
 * sent: two spellings of one resource are two keys, never one key for two resources. Behind a trusted proxy, the scheme and host its X-Forwarded-Proto and -Host tell
 * the origin are in the key too.
 */
import type { HeaderReader } from '../message.ts'
import { isHostValue } from '../../http1/chars.ts'
import { trustedForwarding, withUnderscores } from '../headers.ts'

/**
 * The key of a request as the origin sees it. `trusted` is the request's fields when its peer is
 * in trusted_proxies: their X-Forwarded-Proto and X-Forwarded-Host then go upstream as they came
 * (headers.ts), and an origin builds its redirects and links from them, so they are keyed: the
 * scheme is the forwarded one (when it is http or https, as headers.ts passes it), and a
 * forwarded host other than Host is added after a "#" (no target has one; the key stays a URL
 * of the resource, for purge by prefix).
 */
export function requestKey(tls: boolean, host: string, target: string, trusted: HeaderReader | undefined): string {
  let scheme: 'http' | 'https' = tls ? 'https' : 'http'
  if (trusted === undefined) {
    // Requests repeat the last key (a connection's Host and target come back as the same strings: lib/bytes.ts RepeatedStrings): not made again.
    if (host === last.host && target === last.target && tls === last.tls) return last.key
    const key = cacheKey(scheme, host, target)
    last.tls = tls
    last.host = host
    last.target = target
    last.key = key
    return key
  }
  // Read as headers.ts forwards them: a field the request's Connection lists is hop-by-hop and
  // not passed on (the origin is sent the proxy's own), so it keys nothing (until the second
  // opinion of the eighteenth round of outside reviews it was keyed all the same).
  const { proto, host: forwardedHost } = trustedForwarding(trusted)
  scheme = proto ?? scheme
  const key = cacheKey(scheme, host, target)
  if (forwardedHost === null) return key
  // Compared as authorities (case, the scheme's default port): "example.com:443" over https is Host "example.com".
  const forwarded = normalizeAuthority(scheme, forwardedHost)
  return forwarded === normalizeAuthority(scheme, host) ? key : `${key}${FORWARDED_HOST}${forwarded}`
}

/** The last key requestKey made for an untrusted peer, and what it was made of. */
const last = { tls: false, host: '', target: '', key: cacheKey('http', '', '') }

const FORWARDED_HOST = '#x-forwarded-host='

/** A key without its forwarded-host suffix (requestKey): the key of the URL alone. */
export function urlKeyOf(key: string): string {
  const at = key.indexOf('#')
  return at < 0 ? key : key.slice(0, at)
}

/** The forwarded host a key's suffix names (requestKey), normalized as an authority; undefined without one. */
export function forwardedHostOf(key: string): string | undefined {
  const at = key.indexOf(FORWARDED_HOST)
  return at < 0 ? undefined : key.slice(at + FORWARDED_HOST.length)
}

/**
 * Whether `key` (requestKey's) holds `host` as it is: the authority after the scheme is the Host
 * the origin is sent, not a normal form of it (lower case, without a final dot or the default
 * port). Normalizing only shortens or lower-cases, so a prefix compare is enough.
 */
export function keyedAsSent(key: string, host: string): boolean {
  return key.startsWith(host, key.indexOf('://') + 3)
}

/**
 * Fields with which frameworks let a request stand for another method or URL (Symfony and IIS
 * read X-Original-URL and X-Rewrite-URL as the path; many read X-HTTP-Method-Override and its
 * kin as the method). The key does not cover them, so a request carrying one could have a page of
 * its choosing stored under the URL everyone asks for: its answer is neither stored nor shared.
 * Each with every '-' spelled '_' too: CGI, PHP and WSGI read X_HTTP_Method_Override as the same
 * variable (until the eighteenth round of outside reviews such a spelling was stored).
 */
const OVERRIDES = withUnderscores(['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override'])

export function overridesTarget(headers: HeaderReader): boolean {
  for (const name of OVERRIDES) if (headers.get(name) !== null) return true
  return false
}

export function cacheKey(scheme: 'http' | 'https', host: string, target: string): string {
  return `${scheme}://${normalizeAuthority(scheme, host)}${target}`
}

function normalizeAuthority(scheme: string, host: string): string {
  let h = host.toLowerCase()
  const defaultPort = scheme === 'https' ? ':443' : ':80'
  if (h.endsWith(defaultPort)) h = h.slice(0, -defaultPort.length)
  // An empty port is the default one (RFC 3986 §6.2.3): "a:" is "a".
  else if (h.charCodeAt(h.length - 1) === 0x3a) h = h.slice(0, -1)
  // One final dot of a DNS name: "example.com." is "example.com" (RFC 1034 §3.1), as routing reads it (routes.ts) and nginx's $host.
  if (h.charCodeAt(h.length - 1) === 0x2e) return h.slice(0, -1)
  const colon = h.lastIndexOf(':')
  return colon > 0 && h.charCodeAt(colon - 1) === 0x2e && h.charCodeAt(0) !== 0x5b ? h.slice(0, colon - 1) + h.slice(colon) : h
}

/**
 * An absolute URL given to the admin purge, in key form; undefined when it is not http(s).
 * Parsed by hand so that the path is not normalized (dot segments, percent-encoding).
 */
export function keyFromUrl(url: string): string | undefined {
  const m = /^(https?):\/\/([^/?#]+)([^#]*)$/i.exec(url.trim())
  // The authority a Host could be ("http://[::1" is none: it was taken, and purged nothing with a 200).
  if (!m || !isHostValue(m[2]!)) return undefined
  const scheme = m[1]!.toLowerCase() as 'http' | 'https'
  const rest = m[3] === '' ? '/' : m[3]!.startsWith('?') ? `/${m[3]}` : m[3]!
  return cacheKey(scheme, m[2]!, rest)
}
