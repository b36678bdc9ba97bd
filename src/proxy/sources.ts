/**
 * Chooses the address source for an upstream: a fixed one for an IP literal, the DNS resolver
 * for a name.
 */
import { isIP } from 'node:net'
import type { ResolvedUpstream } from '../config/schema.ts'
import type { LogFn } from '../lib/logger.ts'
import { staticSource, type AddressSource } from './address-source.ts'
import { lookup } from 'node:dns/promises'

export function sourceForUpstream(u: ResolvedUpstream, log: LogFn): AddressSource {
  const family = isIP(u.host)
  if (family === 4 || family === 6) return staticSource([{ address: u.host, family }])
  // Interim: resolve once at start (replaced by the TTL-aware resolver).
  const src = staticSource([])
  lookup(u.host, { all: true }).then(
    (addrs) => src.set(addrs.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))),
    (err) => log('warn', 'upstream did not resolve', { host: u.host, error: String(err) }),
  )
  return src
}
