/**
 * Network names as text: an Address (an IP of some family), host:port formatting with IPv6
 * brackets (RFC 3986 §3.2.2), IPv6 literals in one form, and comparing two authorities. Every place that prints, builds or
 * compares an authority uses these.
 */

import { isIP } from 'node:net'

/** One IP address of an upstream, as the resolver found it. */
export interface Address {
  address: string
  family: 4 | 6
}

/** A host as it goes in an authority: IPv6 literals in brackets. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/**
 * An IPv6 literal, bare or in brackets, as a URL's host has it: in brackets, lower-case and in
 * its shortest form (RFC 5952: "[0:0::1]" is "[::1]"); undefined when `text` is none (or has a
 * zone, which a Host header cannot carry).
 */
export function bracketedIpv6(text: string): string | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (isIP(bare) !== 6 || bare.includes('%')) return undefined
  return new URL(`http://[${bare}]/`).hostname
}

/**
 * A host name less one final dot: "api.example." names the same DNS name as "api.example" (RFC
 * 1034 §3.1, RFC 3986 §3.2.2); nginx drops it before choosing a server, curl before sending it as
 * SNI (RFC 6066 §3: without a trailing dot). "a.." keeps one dot: no DNS name.
 */
export function withoutFinalDot(host: string): string {
  return host.charCodeAt(host.length - 1) === 0x2e ? host.slice(0, -1) : host
}

/** "host:port", with IPv6 literals in brackets. */
export function hostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`
}

/**
 * Whether two authorities (host[:port]) name the same one for `scheme`: without case, and with
 * the scheme's default port (80 for http, 443 for https) or an empty one ("a:") the same as none
 * (RFC 9110 §4.2.3, RFC 3986 §6.2.3).
 */
export function sameAuthority(a: string, b: string, scheme: string): boolean {
  const port = scheme.toLowerCase() === 'https' ? ':443' : ':80'
  return withoutPort(a.toLowerCase(), port) === withoutPort(b.toLowerCase(), port)
}

function withoutPort(authority: string, port: string): string {
  if (authority.endsWith(port)) return authority.slice(0, -port.length)
  return authority.charCodeAt(authority.length - 1) === 0x3a ? authority.slice(0, -1) : authority
}
