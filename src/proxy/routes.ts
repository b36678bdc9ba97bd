/**
 * Routing: which upstream serves a request, from its Host and path. The first [[route]] whose
 * host (exact, or "*.suffix") and path prefix match wins; otherwise the default upstream. Only
 * configured upstreams are reachable: this is never an open proxy.
 */
import type { ResolvedRoute } from '../config/schema.ts'
import { hostWithoutPort } from './headers.ts'

export class Router<T> {
  constructor(
    private readonly routes: readonly ResolvedRoute[],
    private readonly upstreams: ReadonlyMap<string, T>,
    private readonly defaultUpstream: string,
  ) {}

  /** The upstream for a host (without port) and a path (without query). */
  route(host: string, path: string): T {
    for (const r of this.routes) {
      if (r.host !== undefined && !hostMatches(r.host, host)) continue
      if (r.pathPrefix !== undefined && !path.startsWith(r.pathPrefix)) continue
      return this.upstreams.get(r.upstream)!
    }
    return this.upstreams.get(this.defaultUpstream)!
  }

  /** The upstream for a request target and its Host header (the port dropped, the query ignored). */
  routeFor(target: string, hostHeader: string | null): T {
    const qs = target.indexOf('?')
    return this.route(hostHeader === null ? '' : hostWithoutPort(hostHeader), qs < 0 ? target : target.slice(0, qs))
  }
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}
