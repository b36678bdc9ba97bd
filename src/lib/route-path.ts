/**
 * The normal forms of a request path that routes are matched in (proxy/routes.ts) and that the
 * config's check of routes never used compares prefixes in (config/resolve.ts): one place, so the
 * check reads a prefix as the router does.
 */

/**
 * A path in the normal form route prefixes are compared in (RFC 3986 §6.2.2, which RFC 9110
 * §4.2.3 applies to http URIs): percent-encoded unreserved characters decoded ("%61" is "a",
 * "%2e" is "."), then dot segments removed (RFC 3986 §5.2.4). "/%61pi/x" and "/web/../api/x"
 * are the same resource as "/api/x", which is how an origin that normalizes reads them (nginx
 * matches its locations so), so they take its route. Other escapes ("%2F", "%00") are kept, in
 * upper case: they are not the character they stand for. "*" and paths with no "%" and no "/."
 * are returned as they are.
 */
export function routePath(path: string): string {
  if (path.charCodeAt(0) !== 0x2f) return path
  const odd = NOT_PCHAR.test(path)
  if (!odd && !path.includes('%') && !path.includes('/.')) return path
  // What a path may not hold raw ('{', '"', '^', non-ASCII: RFC 3986 §3.3) stands for its escape, as browsers send it.
  if (odd) path = path.replace(NOT_PCHAR_ALL, encodeURIComponent)
  let decoded = ''
  let from = 0
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
      // A "%" that starts no escape is the character itself: "%25" (as "/100%25/" is written for it).
      decoded += `${path.slice(from, i)}%25`
      from = i + 1
      continue
    }
    const char = String.fromCharCode(Number.parseInt(hex, 16))
    // An unreserved character is itself; any other escape is kept, its hex digits in upper case
    // ("%2f" and "%2F" are one escape: RFC 3986 §6.2.2.1).
    decoded += path.slice(from, i) + (UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`)
    from = i + 3
  }
  decoded += path.slice(from)
  return withoutDotSegments(decoded)
}

/** remove_dot_segments (RFC 3986 §5.2.4): "." goes, ".." takes the segment before it; a last dot segment leaves a "/". */
function withoutDotSegments(path: string): string {
  const segments = path.split('/')
  const out: string[] = []
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!
    if (s === '.' || s === '..') {
      if (s === '..') out.pop()
      if (i === segments.length - 1) out.push('')
    } else out.push(s)
  }
  return `/${out.join('/')}`
}

/**
 * The same path as an origin that decodes every escape and merges slashes reads it (nginx does
 * before matching its locations: "/static//../account" and "/static/..%2Faccount" are its
 * "/account"), for the check that both readings take one route (Router.ambiguous).
 */
export function mergedPath(path: string): string {
  let decoded = path
  if (path.includes('%')) decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
  return withoutDotSegments(decoded.replace(/\/{2,}/g, '/'))
}

/** unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/
/** Not a path character (pchar or "/", RFC 3986 §3.3), "%" aside: what stands for its escape in the normal form. */
const NOT_PCHAR = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/
const NOT_PCHAR_ALL = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g

/**
 * A configured path prefix as requests carry it: what a path cannot hold raw (non-ASCII, a space,
 * "{", '"', "^", "|": RFC 3986 §3.3) %-encoded as UTF-8 with upper-case hex (§2.1), and a "%" that
 * starts no escape as "%25", so "/café/" matches what a browser sends for it ("/caf%C3%A9/"), as
 * nginx's `location /café/` matches the decoded path (a request with them raw is read the same way:
 * routePath). A problem instead for what no request's path holds: "?" or "#" (a query or fragment
 * is not matched), a backslash or a control character (refused with 400).
 */
export function prefixAsSent(prefix: string): string | { problem: string } {
  if (/[?#]/.test(prefix)) return { problem: `${JSON.stringify(prefix)} holds "?" or "#": routes match the path alone, never the query` }
  if (/[\\\x00-\x1f\x7f]/.test(prefix)) return { problem: `${JSON.stringify(prefix)} holds a backslash or a control character, which no request path may (they are refused with 400)` }
  return prefix.replace(NOT_PCHAR_ALL, encodeURIComponent).replace(/%(?![0-9A-Fa-f]{2})/g, '%25')
}
