/**
 * The system's resolver configuration: name servers, the search list and options from
 * /etc/resolv.conf, and names from /etc/hosts. Pure parsers (and the search order of a name),
 * plus a loader that re-reads a file only when its mtime changed, so a changed hosts file is
 * honoured at the next refresh.
 */
import { readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import type { HostPort } from '../config/schema.ts'

export interface ResolvConf {
  servers: HostPort[]
  /** options timeout:N, in ms (glibc default 5 s). */
  timeoutMs: number
  attempts: number
  /** `search` (or `domain`, whichever comes last): domains tried after a name (lower-case, no trailing dot). */
  search: string[]
  /** options ndots:N (default 1, at most 15): a name with fewer dots is tried with the search domains first. */
  ndots: number
}

/** The most ndots may be (resolv.conf(5)). */
const MAX_NDOTS = 15

export function parseResolvConf(text: string): ResolvConf {
  const servers: HostPort[] = []
  let timeoutMs = 5000
  let attempts = 2
  let search: string[] = []
  let ndots = 1
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim()
    const [key, ...rest] = line.split(/\s+/)
    if (key === 'nameserver' && rest[0]) {
      const host = rest[0].split('%')[0]!
      if (isIP(host)) servers.push({ host, port: 53 })
    } else if (key === 'search' || key === 'domain') {
      // The last search or domain line wins (resolv.conf(5)); "." (the root) adds nothing.
      search = (key === 'domain' ? rest.slice(0, 1) : rest).map((d) => d.toLowerCase().replace(/\.$/, '')).filter((d) => d.length > 0)
    } else if (key === 'options') {
      for (const o of rest) {
        const m = /^(timeout|attempts|ndots):(\d+)$/.exec(o)
        if (m?.[1] === 'timeout') timeoutMs = Math.max(1, Number(m[2])) * 1000
        if (m?.[1] === 'attempts') attempts = Math.max(1, Number(m[2]))
        if (m?.[1] === 'ndots') ndots = Math.min(MAX_NDOTS, Number(m[2]))
      }
    }
  }
  // No nameserver line: the name server on the local machine (resolv.conf(5); glibc and musl
  // ask 127.0.0.1), not "no servers".
  if (servers.length === 0) servers.push(...LOCAL_SERVERS)
  return { servers, timeoutMs, attempts, search, ndots }
}

/** Where a system without nameserver lines (or without resolv.conf) sends its queries. */
export const LOCAL_SERVERS: readonly HostPort[] = [{ host: '127.0.0.1', port: 53 }]

/**
 * The names a lookup of `host` asks, in order (resolv.conf(5), as glibc's res_nsearch): a name
 * ending in a dot is absolute and asked alone; one with at least `ndots` dots is asked as it is
 * first, then with each search domain; one with fewer is asked with the search domains first.
 */
export function searchNames(host: string, conf: Pick<ResolvConf, 'search' | 'ndots'>): string[] {
  if (host.endsWith('.')) return [host.slice(0, -1)]
  const withDomains = conf.search.map((d) => `${host}.${d}`)
  const dots = host.split('.').length - 1
  return dots >= conf.ndots ? [host, ...withDomains] : [...withDomains, host]
}

/** name (lower-case) -> addresses, in file order. */
export function parseHosts(text: string): Map<string, { address: string; family: 4 | 6 }[]> {
  const map = new Map<string, { address: string; family: 4 | 6 }[]>()
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) continue
    const [address, ...names] = line.split(/\s+/)
    const family = isIP(address!.split('%')[0]!)
    if (family !== 4 && family !== 6) continue
    for (const name of names) {
      const key = name.toLowerCase().replace(/\.$/, '')
      const list = map.get(key) ?? []
      if (!list.some((a) => a.address === address)) list.push({ address: address!, family })
      map.set(key, list)
    }
  }
  return map
}

/** Reads a file through a parser, again only when its mtime changes. */
export class WatchedFile<T> {
  private mtimeMs = -1
  private value: T

  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly empty: T,
  ) {
    this.value = empty
  }

  get(): T {
    let mtimeMs: number
    try {
      mtimeMs = statSync(this.path).mtimeMs
    } catch {
      this.value = this.empty
      this.mtimeMs = -1
      return this.value
    }
    if (mtimeMs !== this.mtimeMs) {
      try {
        this.value = this.parse(readFileSync(this.path, 'utf8'))
        this.mtimeMs = mtimeMs
      } catch {
        // keep the previous value when the file cannot be read right now
      }
    }
    return this.value
  }
}
