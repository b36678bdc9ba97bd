/**
 * Values that name a place or are shown back: the upstream URL (taken as written, RFC 3986), a
 * listen host:port (and whether one takes another's port), a DNS resolver ip[:port], and show(),
 * which writes a value in a config error as TOML would, on one line. resolve.ts validates the
 * config with them.
 */
import { isIP } from 'node:net'
import { TomlDateTime, TomlFloat } from './load.ts'
import type { HostPort } from './schema.ts'

/** A DNS name as SNI carries one (RFC 6066 §3) and an upstream URL may name: LDH labels, "_" allowed, a final dot. */
export const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/

/** Parses an upstream URL. Returns an error message (string) when it is not usable. */
export function parseUpstreamUrl(raw: string): { scheme: 'http' | 'https'; host: string; port: number } | string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  let u: URL
  try {
    u = new URL(withScheme)
  } catch {
    return `${show(raw)} is not a URL; ${bracketsHint(withScheme) ?? 'use http://host[:port] or https://host[:port]'}`
  }
  const scheme = u.protocol.slice(0, -1)
  if (scheme !== 'http' && scheme !== 'https') return `scheme "${scheme}" is not supported; use http or https`
  if (u.pathname !== '/' || u.search || u.hash) return `${show(raw)} has a path or query; give only scheme://host[:port]`
  if (u.username || u.password) return `${show(raw)} has credentials; they are not supported in the upstream URL`
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  if (!host) return `${show(raw)} has no host`
  // The URL parser (WHATWG) drops spaces, tabs and line breaks, and reads "010.0.0.1" as 8.0.0.1
  // (octal), "127.1" and "0x7f.0.0.1" as 127.0.0.1: an address other than the one written. RFC 3986
  // has neither: no whitespace in a URI, and an IPv4 address is four decimal octets (§3.2.2).
  if (/[\x00-\x20\x7f]/.test(raw)) return `${show(raw)} has a space or control character; give only scheme://host[:port]`
  const written = /^[a-z][a-z0-9+.-]*:\/\/([^:/?#]*)/i.exec(withScheme)?.[1]
  if (isIP(host) === 4 && written !== host) return `${show(written)} is not an IPv4 address as RFC 3986 writes one (four decimal numbers, no leading zeros), and the URL parser would dial ${host}; write the address meant, e.g. "10.0.0.1"`
  // What the parser drops without a word: an empty query or fragment ("host?", "host/#"), an
  // empty userinfo ("@host"); and what it decodes: "h%2eexample" is dialled as h.example.
  const after = withScheme.slice(withScheme.indexOf('//') + 2)
  if (/[?#]/.test(after)) return `${show(raw)} has a path or query; give only scheme://host[:port]`
  if (after.includes('@')) return `${show(raw)} has credentials; they are not supported in the upstream URL`
  if (written?.includes('%')) return `${show(raw)} has a percent-encoded host, which the URL parser decodes to ${show(host)}; write the host as it is`
  // fe80::/10 is reachable only through a named interface, which a URL cannot carry (RFC 6874's
  // "%25eth0" is refused by the URL parser): every connect would fail after check said ok.
  if (isIP(host) === 6 && isLinkLocal(host)) return `${show(raw)}: a link-local address (fe80::/10) needs an interface zone, which an upstream URL cannot carry; use the origin's global or unique-local address, or its DNS name`
  if (isIP(host) === 0 && !DNS_NAME_RE.test(host)) return `${show(raw)}: ${show(host)} is not a DNS name or an IP address; use e.g. "https://origin.example.com"`
  // "host:" with nothing after the colon: the parser takes the scheme's port without a word.
  if (/:\/?$/.test(after)) return `${show(raw)} has a colon but no port; give the port ("${scheme}://${u.host}:8080") or leave the colon out for ${scheme === 'https' ? 443 : 80}`
  if (u.port === '0') return `${show(raw)} has port 0, which cannot be dialled; give the origin's port, e.g. "${scheme}://${u.host.replace(/:0$/, '')}:8080"`
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80
  return { scheme, host, port }
}

/** For "http://::1:8080", the URL with the IPv6 address in brackets (RFC 3986 §3.2.2); undefined for other mistakes. */
function bracketsHint(url: string): string | undefined {
  const [, scheme, authority] = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#[\]]*)$/i.exec(url) ?? []
  const port = /:(\d{1,5})$/.exec(authority ?? '')
  const fixed = port && isIP(authority!.slice(0, port.index)) === 6 ? `[${authority!.slice(0, port.index)}]:${port[1]}` : isIP(authority ?? '') === 6 ? `[${authority}]` : undefined
  return fixed && `an IPv6 address goes in brackets; use "${scheme}${fixed}"`
}

/** "1.2.3.4", "1.2.3.4:5353", "[::1]:53", "::1" -> { host, port }. */
export function parseResolverAddress(raw: string): HostPort | undefined {
  if (isIP(raw)) return { host: raw, port: 53 }
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(raw) ?? /^([^:]+):(\d+)$/.exec(raw)
  if (!m || !isIP(m[1]!)) return undefined
  const port = Number(m[2])
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined
}

/** "0.0.0.0:8080", "[::1]:8080", ":8080" (all interfaces), "localhost:8080". Port 0 picks a free port. */
export function parseHostPort(raw: string): HostPort | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(raw) ?? /^([^:[\]]*):(\d+)$/.exec(raw)
  if (!m) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  const host = m[1] === '' ? '0.0.0.0' : m[1]!
  // In brackets an IPv6 address; otherwise an IPv4 address or a name (letters, digits, '.', '-'
  // and '_' as container service names have; digits and dots alone, as in 999.1.1.1, must make
  // an IPv4 address: a name is never all digits).
  if (raw.startsWith('[') ? isIP(host) !== 6 || zoneProblem(host) !== undefined : !(isIP(host) === 4 || (/^[A-Za-z0-9._-]+$/.test(host) && looseIpv4(host) === undefined))) return undefined
  return { host, port }
}

/** Whether an IPv6 address (without a zone) is link-local, fe80::/10 (RFC 4291 §2.5.6). */
export function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address)
}

/**
 * Why an IPv6 listen address cannot be listened on for its zone (RFC 4007 §11: "%eth0" names
 * the link of a link-local address): a zone on any other address ("::1%lo", which the kernel
 * refuses), or a link-local address without one (no link to listen on). Undefined when right.
 */
export function zoneProblem(host: string): string | undefined {
  const at = host.indexOf('%')
  const address = at < 0 ? host : host.slice(0, at)
  if (at >= 0 && !isLinkLocal(address)) return `a zone ("${host.slice(at)}") belongs only on a link-local address (fe80::/10); write "[${address}]" without it`
  if (at < 0 && isLinkLocal(address)) return `a link-local address is listened on through one interface; add its zone, e.g. "[${address}%eth0]"`
  return undefined
}

/**
 * For a host that ends in a number ("0x7f.1", "127.1", "0177.0.0.1", "2130706433", "1.2.3.4."),
 * which the URL parser (WHATWG) and the system resolver (inet_aton) read as an IPv4 address,
 * though it is not one as RFC 3986 writes it (§3.2.2: four decimal octets): the address they
 * read, or "" where none (999.1.1.1). Undefined for a name, or an address written as one.
 */
export function looseIpv4(host: string): string | undefined {
  const last = host.replace(/\.$/, '').split('.').pop()!
  if (!/^(?:\d+|0x[0-9a-f]*)$/i.test(last) || isIP(host) === 4) return undefined
  try {
    const read = new URL(`http://${host}/`).hostname
    return isIP(read) === 4 ? read : ''
  } catch {
    return ''
  }
}

/** Why a loose IPv4 host (looseIpv4) is refused, ending with what to write, e.g. "; write \"127.0.0.1:80\"". */
export function looseIpv4Problem(host: string, read: string, fix: (address: string) => string): string {
  if (read === '') return `${show(host)} is not an IPv4 address (four decimal numbers from 0 to 255)`
  return `${show(host)} is not an IPv4 address as RFC 3986 writes one (four decimal numbers, no leading zeros), and would be read as ${read}; ${fix(read)}`
}

/** What of a shown value an error message quotes: a 3 MB value made a 3 MB log line at each reload. */
const SHOWN_MAX_CHARS = 200

/**
 * A value as TOML would write it, on one line: strings quoted with \", \\ and control characters
 * escaped; floats as floats (1.0, inf, nan); dates as written. For error messages: past
 * SHOWN_MAX_CHARS it is cut, and says how long it was.
 */
export function show(raw: unknown): string {
  const text = showWhole(raw)
  return text.length <= SHOWN_MAX_CHARS ? text : `${text.slice(0, SHOWN_MAX_CHARS)}... (${text.length} characters in all)`
}

function showWhole(raw: unknown): string {
  if (raw instanceof TomlDateTime || raw instanceof TomlFloat) return raw.text
  if (Array.isArray(raw)) return `[${raw.map(showWhole).join(',')}]`
  if (typeof raw === 'number' && !Number.isFinite(raw)) return Number.isNaN(raw) ? 'nan' : raw > 0 ? 'inf' : '-inf'
  return JSON.stringify(raw)
}

/**
 * Whether listening on `a` needs the port `b` holds: the same port (not "any") on the same host
 * ("localhost" is a loopback address), or a wildcard on either side: "::" holds it on every
 * address (dual stack), "0.0.0.0" on every IPv4 one (an IPv6 address beside it is free).
 */
export function takesPortOf(a: HostPort, b: HostPort): boolean {
  const loopback = (h: string) => h === '::1' || (isIP(h) === 4 && h.startsWith('127.'))
  const same = (x: string, y: string) => x === y || (x === 'localhost' && loopback(y)) || (y === 'localhost' && loopback(x))
  const covers = (wild: string, h: string) => wild === '::' || (wild === '0.0.0.0' && isIP(h) !== 6)
  return b.port !== 0 && a.port === b.port && (same(a.host, b.host) || covers(a.host, b.host) || covers(b.host, a.host))
}
