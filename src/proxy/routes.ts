/**
 * Routing: which upstream serves a request, from its Host and path. The first [[route]] whose
 * host (exact, or "*.suffix") and path prefix match wins; otherwise the default upstream. Only
 * configured upstreams are reachable: this is never an open proxy.
 */
import type { ResolvedRoute } from '../config/schema.ts'
import { hostWithoutPort } from './headers.ts'

export class Router<T> {
  /** The routes a request can reach: those up to the first that matches anything (the config's catch-all). */
  private readonly routes: readonly ResolvedRoute[]
  /** Whether any of them looks at the Host, or at the path: a request's are only derived then. */
  private readonly byHost: boolean
  private readonly byPath: boolean

  constructor(
    routes: readonly ResolvedRoute[],
    private readonly upstreams: ReadonlyMap<string, T>,
    private readonly defaultUpstream: string,
  ) {
    const all = routes.findIndex((r) => r.host === undefined && r.pathPrefix === undefined)
    this.routes = all < 0 ? routes : routes.slice(0, all + 1)
    this.byHost = this.routes.some((r) => r.host !== undefined)
    this.byPath = this.routes.some((r) => r.pathPrefix !== undefined)
  }

  /** The route for a host (without port) and a path (without query); undefined when none matches. */
  match(host: string, path: string): ResolvedRoute | undefined {
    const routes = this.routes
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!
      if (r.host !== undefined && !hostMatches(r.host, host)) continue
      if (r.pathPrefix !== undefined && !path.startsWith(r.pathPrefix)) continue
      return r
    }
    return undefined
  }

  /** The upstream for a host (without port) and a path (without query). */
  route(host: string, path: string): T {
    return this.upstreams.get(this.match(host, path)?.upstream ?? this.defaultUpstream)!
  }

  /**
   * The route for a request target and its Host header (the port dropped, the query ignored).
   * The Host is lower-cased and the path cut from the query only when a route looks at them: the
   * usual table (the catch-all alone) matches every request without either.
   */
  matchFor(target: string, hostHeader: string | null): ResolvedRoute | undefined {
    const host = this.byHost && hostHeader !== null ? hostWithoutPort(hostHeader) : ''
    let path = target
    if (this.byPath) {
      const qs = target.indexOf('?')
      if (qs >= 0) path = target.slice(0, qs)
    }
    return this.match(host, path)
  }

  /** The upstream for a request target and its Host header. */
  routeFor(target: string, hostHeader: string | null): T {
    // Without [[route]] tables there is nothing to match the Host and path against.
    if (this.routes.length === 0) return this.upstreams.get(this.defaultUpstream)!
    return this.upstreams.get(this.matchFor(target, hostHeader)?.upstream ?? this.defaultUpstream)!
  }
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}
