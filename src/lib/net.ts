/**
 * Network names as text: an Address (an IP of some family) and host:port formatting with IPv6
 * brackets (RFC 3986 §3.2.2). Every place that prints or builds an authority uses these.
 */

/** One IP address of an upstream, as the resolver found it. */
export interface Address {
  address: string
  family: 4 | 6
}

/** A host as it goes in an authority: IPv6 literals in brackets. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** "host:port", with IPv6 literals in brackets. */
export function hostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`
}
