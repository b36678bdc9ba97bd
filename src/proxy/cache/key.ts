/**
 * The primary cache key (RFC 9111 §2): the target URI as scheme://host[:port]/path?query, with
 * the scheme and host lower-cased and a default port dropped (RFC 9110 §4.2.3). The path and
 * query are kept as sent: two spellings of one resource are two keys, never one key for two
 * resources.
 */

export function cacheKey(scheme: 'http' | 'https', host: string, target: string): string {
  return `${scheme}://${normalizeAuthority(scheme, host)}${target}`
}

function normalizeAuthority(scheme: string, host: string): string {
  const h = host.toLowerCase()
  const defaultPort = scheme === 'https' ? ':443' : ':80'
  return h.endsWith(defaultPort) ? h.slice(0, -defaultPort.length) : h
}

/**
 * An absolute URL given to the admin purge, in key form; undefined when it is not http(s).
 * Parsed by hand so that the path is not normalized (dot segments, percent-encoding).
 */
export function keyFromUrl(url: string): string | undefined {
  const m = /^(https?):\/\/([^/?#]+)([^#]*)$/i.exec(url.trim())
  if (!m) return undefined
  const scheme = m[1]!.toLowerCase() as 'http' | 'https'
  const rest = m[3] === '' ? '/' : m[3]!.startsWith('?') ? `/${m[3]}` : m[3]!
  return cacheKey(scheme, m[2]!, rest)
}
