/**
 * Chooses the address source for an upstream: a fixed one for an IP literal, the TTL-aware
 * resolver (with the system configuration or the configured servers) for a name.
 */
import { isIP } from 'node:net'
import type { ResolvedUpstream } from '../../config/schema.ts'
import { parseResolverAddress } from '../../config/resolve.ts'
import { createLookup, type Lookup } from '../../dns/lookup.ts'
import type { LogFn } from '../../lib/logger.ts'
import { staticSource, type AddressSource } from './address-source.ts'
import { UpstreamResolver } from './resolver.ts'

export function sourceForUpstream(u: ResolvedUpstream, log: LogFn, lookup?: Lookup): AddressSource {
  const family = isIP(u.host)
  if (family === 4 || family === 6) return staticSource([{ address: u.host, family }])
  const resolvers = u.resolvers.map((r) => parseResolverAddress(r)!)
  return new UpstreamResolver(u, { lookup: lookup ?? createLookup({ resolvers }), log })
}
