/**
 * Where an upstream's addresses come from, as one injectable function: an IP literal is itself;
 * explicit `resolvers` are asked directly; otherwise the system configuration applies:
 * /etc/hosts first, then the /etc/resolv.conf name servers, with its search list and ndots. No runtime DNS cache is involved.
 * Refresh timing and stale handling are the resolver's (proxy/resolver.ts).
 */
import { isIP } from 'node:net'
import type { AddressFamily, HostPort } from '../config/schema.ts'
import type { Address } from '../lib/net.ts'
import { DnsError, queryAddresses, type DnsAnswer } from './client.ts'
import { LOCAL_SERVERS, parseHosts, parseResolvConf, searchNames, WatchedFile } from './system-config.ts'
import { TYPE } from './wire.ts'

export interface LookupResult {
  /** IPv4 first, then IPv6. */
  addresses: Address[]
  /** The answer's TTL in ms (smallest along the CNAME chain); undefined for hosts-file and literal answers. */
  ttlMs: number | undefined
  /** "literal", "hosts", or the "ip:port" of the DNS server that answered. */
  source: string
  /**
   * With family "auto": the family whose query failed (a timeout, SERVFAIL, REFUSED: not NODATA
   * or NXDOMAIN, which are answers) while the other answered. The resolver keeps that family's
   * last good addresses rather than dropping them (proxy/upstream/resolver.ts).
   */
  failedFamily?: { family: 4 | 6; error: unknown }
}

export interface LookupOptions {
  family: AddressFamily
  timeoutMs: number
}

export type Lookup = (host: string, opts: LookupOptions) => Promise<LookupResult>

export interface SystemLookupOptions {
  /** Explicit servers; when given, /etc/hosts and /etc/resolv.conf are not consulted. */
  resolvers?: readonly HostPort[]
  hostsPath?: string
  resolvConfPath?: string
  /** The port resolv.conf's name servers are asked on: 53 (resolv.conf cannot name one); tests give a loopback server's. */
  nameserverPort?: number
}

export function createLookup(opts: SystemLookupOptions = {}): Lookup {
  const hosts = new WatchedFile(opts.hostsPath ?? '/etc/hosts', parseHosts, new Map<string, Address[]>())
  const resolvConf = new WatchedFile(opts.resolvConfPath ?? '/etc/resolv.conf', parseResolvConf, { servers: [...LOCAL_SERVERS], timeoutMs: 5000, attempts: 2, search: [], ndots: 1 })
  const explicit = opts.resolvers && opts.resolvers.length > 0 ? opts.resolvers : undefined
  return async (host, lo) => {
    const literal = isIP(host)
    if (literal === 4 || literal === 6) return { addresses: [{ address: host, family: literal }], ttlMs: undefined, source: 'literal' }
    if (!explicit) {
      const fromHosts = hosts.get().get(host.toLowerCase().replace(/\.$/, ''))
      const wanted = fromHosts?.filter((a) => lo.family === 'auto' || (lo.family === 'ipv4' ? a.family === 4 : a.family === 6))
      if (wanted && wanted.length > 0) return { addresses: orderFamilies(wanted), ttlMs: undefined, source: 'hosts' }
    }
    if (explicit) return lookupName(host, lo, explicit)
    const conf = resolvConf.get()
    const servers = conf.servers.map((s) => ({ host: s.host, port: opts.nameserverPort ?? s.port }))
    // The search list (resolv.conf(5)), as glibc's res_nsearch walks it: the next name is asked
    // after NXDOMAIN, NODATA or SERVFAIL (one search domain's broken server must not hide the
    // name as written); any other failure (a timeout, REFUSED ...) ends the lookup as one.
    // With no addresses anywhere, a SERVFAIL is the lookup's error, else the first answer's.
    const names = searchNames(host, conf)
    let servfail: DnsError | undefined
    let noSuch: unknown
    for (const name of names) {
      try {
        return await lookupName(name, lo, servers)
      } catch (err) {
        if (err instanceof DnsError && err.code === 'SERVFAIL') servfail ??= err
        else if (isAnswer(err)) noSuch ??= err
        else throw err
      }
    }
    const e = (servfail ?? noSuch) as DnsError
    if (names.length === 1) throw e
    throw new DnsError(e.code, `${host}: no addresses for ${names.join(', ')} (the resolv.conf search list); ${servfail ? 'a server failed' : 'first'}: ${e.message}`, e.server)
  }
}

/** One name's addresses from DNS: one family, or both at once with `auto`. */
async function lookupName(host: string, lo: LookupOptions, servers: readonly HostPort[]): Promise<LookupResult> {
  const q = { servers, timeoutMs: lo.timeoutMs }
  if (lo.family === 'ipv4') return fromAnswers([await queryAddresses(host, TYPE.A, q)], [])
  if (lo.family === 'ipv6') return fromAnswers([], [await queryAddresses(host, TYPE.AAAA, q)])
  const [a, aaaa] = await Promise.allSettled([queryAddresses(host, TYPE.A, q), queryAddresses(host, TYPE.AAAA, q)])
  if (a.status === 'fulfilled' || aaaa.status === 'fulfilled') {
    const result = fromAnswers(a.status === 'fulfilled' ? [a.value] : [], aaaa.status === 'fulfilled' ? [aaaa.value] : [])
    if (a.status === 'rejected' && !isAnswer(a.reason)) return { ...result, failedFamily: { family: 4, error: a.reason } }
    if (aaaa.status === 'rejected' && !isAnswer(aaaa.reason)) return { ...result, failedFamily: { family: 6, error: aaaa.reason } }
    return result
  }
  throw pickError(a.reason, aaaa.reason)
}

function fromAnswers(v4: DnsAnswer[], v6: DnsAnswer[]): LookupResult {
  const addresses: Address[] = [...v4.flatMap((a) => a.addresses.map((address) => ({ address, family: 4 as const }))), ...v6.flatMap((a) => a.addresses.map((address) => ({ address, family: 6 as const })))]
  const all = [...v4, ...v6]
  return { addresses, ttlMs: Math.min(...all.map((a) => a.ttlS)) * 1000, source: all[0]!.server }
}

/** NODATA and NXDOMAIN are the server's answer (no such records, no such name), not a failure to get one. */
function isAnswer(err: unknown): boolean {
  return err instanceof DnsError && (err.code === 'NODATA' || err.code === 'NXDOMAIN')
}

/** Both families failed: NXDOMAIN wins (the name does not exist), then a real failure over NODATA. */
function pickError(a: unknown, b: unknown): unknown {
  const errs = [a, b].filter((e): e is DnsError => e instanceof DnsError)
  if (errs.length < 2) return errs.length ? (a instanceof DnsError ? b : a) : a
  return errs.find((e) => e.code === 'NXDOMAIN') ?? errs.find((e) => e.code !== 'NODATA') ?? errs[0]
}

function orderFamilies(list: { address: string; family: 4 | 6 }[]): Address[] {
  return [...list.filter((a) => a.family === 4), ...list.filter((a) => a.family === 6)]
}
