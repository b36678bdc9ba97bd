/**
 * Routing: which upstream serves a request, from its Host and path. The first [[route]] whose
 * host (exact, "*.suffix", or ".suffix": the name and any under it) and path prefix match wins; otherwise the default upstream. Paths
 * are compared in their normal form (routePath), hosts without port, case or a final dot (the
 * absolute form of a DNS name: "api.example." is "api.example"); the request itself goes on as it
 * came. Only configured upstreams are reachable: this is never an open proxy.
 */
import type { ResolvedRoute } from '../config/schema.ts'
import { hostWithoutPort } from './headers.ts'
import { mergedPath, routePath } from '../lib/route-path.ts'
import { withoutFinalDot } from '../lib/net.ts'

export { mergedPath, routePath }

export class Router<T> {
  /** The routes a request can reach: those up to the first that matches anything (the config's catch-all). */
  private readonly routes: readonly ResolvedRoute[]
  /** Whether any of them looks at the Host, or at the path: a request's are only derived then. */
  private readonly byHost: boolean
  private readonly byPath: boolean
  /** Each route's path prefix in normal form (routePath), parallel to `routes`. */
  private readonly prefixes: readonly (string | undefined)[]
  /** The same prefixes as an origin that merges slashes and decodes escapes reads them (mergedPath): what `ambiguous` compares a path so read with. */
  private readonly mergedPrefixes: readonly (string | undefined)[]
  /** Each route's host without a final dot, parallel to `routes`. */
  private readonly hosts: readonly (string | undefined)[]

  constructor(
    routes: readonly ResolvedRoute[],
    private readonly upstreams: ReadonlyMap<string, T>,
    private readonly defaultUpstream: string,
  ) {
    const all = routes.findIndex((r) => r.host === undefined && r.pathPrefix === undefined)
    this.routes = all < 0 ? routes : routes.slice(0, all + 1)
    this.byHost = this.routes.some((r) => r.host !== undefined)
    this.byPath = this.routes.some((r) => r.pathPrefix !== undefined)
    this.prefixes = this.routes.map((r) => (r.pathPrefix === undefined ? undefined : routePath(r.pathPrefix)))
    this.mergedPrefixes = this.routes.map((r) => (r.pathPrefix === undefined ? undefined : mergedPath(r.pathPrefix)))
    this.hosts = this.routes.map((r) => (r.host === undefined ? undefined : withoutFinalDot(r.host)))
  }

  /** The route for a host (without port) and a path (without query, in normal form: routePath); undefined when none matches. */
  match(host: string, path: string): ResolvedRoute | undefined {
    return this.matchIn(host, path, this.prefixes)
  }

  /** The first route whose host and prefix (one of `prefixes`, parallel to `routes`) match. */
  private matchIn(host: string, path: string, prefixes: readonly (string | undefined)[]): ResolvedRoute | undefined {
    const routes = this.routes
    host = withoutFinalDot(host)
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!
      const pattern = this.hosts[i]
      if (pattern !== undefined && !hostMatches(pattern, host)) continue
      const prefix = prefixes[i]
      if (prefix !== undefined && !path.startsWith(prefix)) continue
      return r
    }
    return undefined
  }

  /** The upstream for a host (without port) and a path (without query). */
  route(host: string, path: string): T {
    return this.upstreamOf(this.match(host, path))
  }

  /**
   * The route for a request target and its Host header (the port dropped, the query ignored), in
   * the path's RFC 3986 normal form (routePath). The Host is lower-cased and the path cut from the
   * query and normalized only when a route looks at them: the usual table (the catch-all alone)
   * matches every request without either.
   */
  matchFor(target: string, hostHeader: string | null): ResolvedRoute | undefined {
    return this.match(this.hostOf(hostHeader), this.byPath ? routePath(pathOf(target)) : target)
  }

  /**
   * What the route phase asks, once per request: matchFor's route, or AMBIGUOUS_ROUTE when routes
   * look at paths and this path takes another route as an origin that merges slashes and decodes
   * every escape reads it (mergedPath): "/static//../account/x" is "/static/account/x" by RFC 3986
   * and "/account/x" to nginx, so which route it belongs to depends on the origin; such a request
   * is refused (400) rather than routed by a guess. No routes: undefined at once.
   */
  pick(target: string, hostHeader: string | null): ResolvedRoute | undefined | typeof AMBIGUOUS_ROUTE {
    if (this.routes.length === 0) return undefined
    const route = this.matchFor(target, hostHeader)
    if (!this.byPath) return route
    const path = pathOf(target)
    // Paths without "%", "//" or "/." read one way only.
    if (path.charCodeAt(0) !== 0x2f || (!path.includes('%') && !path.includes('/.') && !path.includes('//'))) return route
    // Each reading against the prefixes read the same way: a prefix spelled with an escape ("/my%20docs/") or "//" is its own route's in both.
    return route === this.matchIn(this.hostOf(hostHeader), mergedPath(path), this.mergedPrefixes) ? route : AMBIGUOUS_ROUTE
  }

  private hostOf(hostHeader: string | null): string {
    return this.byHost && hostHeader !== null ? hostWithoutPort(hostHeader) : ''
  }

  /** Whether pick() refuses this target as ambiguous. */
  ambiguous(target: string, hostHeader: string | null): boolean {
    return this.pick(target, hostHeader) === AMBIGUOUS_ROUTE
  }

  /** The upstream a picked route names (the default for none). */
  upstreamOf(route: ResolvedRoute | undefined): T {
    return this.upstreams.get(route?.upstream ?? this.defaultUpstream)!
  }

  /** The upstream for a request target and its Host header. */
  routeFor(target: string, hostHeader: string | null): T {
    return this.upstreamOf(this.matchFor(target, hostHeader))
  }
}

/** What Router.pick gives for a path whose route depends on how its origin reads it. */
export const AMBIGUOUS_ROUTE: unique symbol = Symbol('ambiguous path')
/** Why a path whose route depends on how its origin reads it is refused (the request path's 400). */
export const AMBIGUOUS_PATH = 'the path takes another route once its slashes are merged or its escapes decoded ("//", "%2F" beside dot segments): send it in normal form'

/** A request target's path: without its query. */
function pathOf(target: string): string {
  const qs = target.indexOf('?')
  return qs >= 0 ? target.slice(0, qs) : target
}


/**
 * "*.example.com": any name under example.com; ".example.com": example.com itself and any name
 * under it (nginx's server_name .example.com, which an operator copies as is: until the
 * eighteenth round of outside reviews it matched only a Host of ".example.com"); else exact.
 */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern.charCodeAt(0) === 0x2e) return host.endsWith(pattern) || host === pattern.slice(1)
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}
