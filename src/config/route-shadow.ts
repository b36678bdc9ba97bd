/**
 * Which earlier [[route]] leaves a route never used: one that matches every request the route
 * would (the same or any host, by hostCovers; no prefix, or a prefix the route's own starts with,
 * compared as the router reads them, lib/route-path.ts). Linear in the routes rather than a
 * comparison of every pair: 40,000 exact-host routes took check a minute, and a reload stalled the
 * proxy for 18 s at 15,000 (an outside config fuzz, nineteenth round). The "*."/"." patterns that
 * may cover a host are found by its name's suffixes, a lookup per label (a scan of every pattern
 * was still quadratic for 20,000 "*.x" routes: third review).
 */
import { routePath } from '../lib/route-path.ts'
import { hostCovers } from './route-host.ts'

/** The routes of one host form (one exact host, one "*."/"." pattern, or any host) seen so far. */
interface Group {
  host: string | undefined
  /** The first route of the group with no path prefix: it covers every later one. */
  anyPath: number | undefined
  /** Each normalized prefix's first route, and the lengths those prefixes have. */
  byPrefix: Map<string, number>
  lengths: Set<number>
}

const newGroup = (host: string | undefined): Group => ({ host, anyPath: undefined, byPrefix: new Map(), lengths: new Set() })

/** For each route, the index of the first earlier route that covers it, or -1. */
export function coveringRoutes(routes: readonly { host: string | undefined; pathPrefix: string | undefined }[]): number[] {
  const anyHost = newGroup(undefined)
  const exact = new Map<string, Group>()
  // Pattern groups by the name after "*." or ".": those over a host are under its name's suffixes.
  const patterned = new Map<string, Group[]>()
  const patternedByHost = new Map<string, Group>()
  return routes.map((r, j) => {
    const path = r.pathPrefix === undefined ? undefined : routePath(r.pathPrefix)
    // The groups whose host covers this route's: any host; the same exact host; the patterns over it.
    const candidates = [anyHost]
    if (r.host !== undefined) {
      const same = exact.get(r.host)
      if (same) candidates.push(same)
      for (const g of patternsOver(r.host, patterned)) if (hostCovers(g.host!, r.host)) candidates.push(g)
    }
    let by = -1
    for (const g of candidates) {
      const first = firstCovering(g, path)
      if (first >= 0 && (by < 0 || first < by)) by = first
    }
    noteRoute(r.host === undefined ? anyHost : groupFor(r.host, exact, patterned, patternedByHost), path, j)
    return by
  })
}

/** A pattern's name: "*.x" and ".x" are under (or at) "x". */
const patternBase = (host: string) => (host.startsWith('*.') ? host.slice(2) : host.slice(1))

/** The pattern groups whose name is `host`'s own name or one of its suffixes at a label ("a.b.c": "a.b.c", "b.c", "c"). */
function* patternsOver(host: string, patterned: Map<string, Group[]>): Generator<Group> {
  let name = host.startsWith('*.') || host.startsWith('.') ? patternBase(host) : host
  for (;;) {
    yield* patterned.get(name) ?? []
    const dot = name.indexOf('.')
    if (dot < 0) return
    name = name.slice(dot + 1)
  }
}

function groupFor(host: string, exact: Map<string, Group>, patterned: Map<string, Group[]>, patternedByHost: Map<string, Group>): Group {
  const isPattern = host.startsWith('*.') || host.startsWith('.')
  const map = isPattern ? patternedByHost : exact
  let g = map.get(host)
  if (!g) {
    g = newGroup(host)
    map.set(host, g)
    if (isPattern) {
      const base = patternBase(host)
      const list = patterned.get(base)
      if (list) list.push(g)
      else patterned.set(base, [g])
    }
  }
  return g
}

/** The first route of `g` that covers a route with normalized prefix `path` (undefined: none), or -1. */
function firstCovering(g: Group, path: string | undefined): number {
  let by = g.anyPath ?? -1
  if (path === undefined) return by
  for (const length of g.lengths) {
    if (length > path.length) continue
    const i = g.byPrefix.get(path.slice(0, length))
    if (i !== undefined && (by < 0 || i < by)) by = i
  }
  return by
}

/** Notes route `index` (its normalized prefix `path`) in its group; the first of each prefix is the one kept. */
function noteRoute(g: Group, path: string | undefined, index: number): void {
  if (path === undefined) g.anyPath ??= index
  else if (!g.byPrefix.has(path)) {
    g.byPrefix.set(path, index)
    g.lengths.add(path.length)
  }
}
