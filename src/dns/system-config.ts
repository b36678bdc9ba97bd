/**
 * The system's resolver configuration: name servers and options from /etc/resolv.conf, and
 * names from /etc/hosts. Pure parsers plus a loader that re-reads a file only when its mtime
 * changed, so a changed hosts file is honoured at the next refresh.
 */
import { readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import type { HostPort } from '../config/schema.ts'

export interface ResolvConf {
  servers: HostPort[]
  /** options timeout:N, in ms (glibc default 5 s). */
  timeoutMs: number
  attempts: number
}

export function parseResolvConf(text: string): ResolvConf {
  const servers: HostPort[] = []
  let timeoutMs = 5000
  let attempts = 2
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim()
    const [key, ...rest] = line.split(/\s+/)
    if (key === 'nameserver' && rest[0]) {
      const host = rest[0].split('%')[0]!
      if (isIP(host)) servers.push({ host, port: 53 })
    } else if (key === 'options') {
      for (const o of rest) {
        const m = /^(timeout|attempts):(\d+)$/.exec(o)
        if (m?.[1] === 'timeout') timeoutMs = Math.max(1, Number(m[2])) * 1000
        if (m?.[1] === 'attempts') attempts = Math.max(1, Number(m[2]))
      }
    }
  }
  return { servers, timeoutMs, attempts }
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
