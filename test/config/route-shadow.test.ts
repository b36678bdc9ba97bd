/**
 * The "never used" route check (config/route-shadow.ts) against the comparison of every pair it
 * replaced (nineteenth round: that one was quadratic, a minute for 40,000 routes): the same answer
 * for generated route lists of every host form and overlapping prefixes.
 */
import { expect, test } from 'bun:test'
import { routePath } from '../../src/lib/route-path.ts'
import { hostCovers } from '../../src/config/route-host.ts'
import { coveringRoutes } from '../../src/config/route-shadow.ts'
import { rng } from '../support/rng.ts'

type Route = { host: string | undefined; pathPrefix: string | undefined }

/** The pairwise rule, as resolve.ts had it. */
function pairwise(routes: Route[]): number[] {
  return routes.map((r, j) => routes.findIndex((e, i) => i < j && (e.host === undefined || (r.host !== undefined && hostCovers(e.host, r.host))) && (e.pathPrefix === undefined || (r.pathPrefix !== undefined && routePath(r.pathPrefix).startsWith(routePath(e.pathPrefix))))))
}

test('the same covering route as every pair compared, for 400 generated lists', () => {
  const next = rng(19)
  const pick = <T>(xs: readonly T[]): T => xs[next(xs.length)]!
  const hosts = [undefined, 'a.example', 'b.example', 'x.a.example', '*.a.example', '.a.example', '*.example', '.example', 'example']
  const prefixes = [undefined, '/', '/api', '/api/', '/api/v1/', '/%61pi/', '/web/../api/', '/web', '/w']
  let covered = 0
  for (let t = 0; t < 400; t++) {
    const routes: Route[] = Array.from({ length: 1 + next(12) }, () => ({ host: pick(hosts), pathPrefix: pick(prefixes) }))
    const want = pairwise(routes)
    expect([routes, coveringRoutes(routes)]).toEqual([routes, want])
    covered += want.filter((i) => i >= 0).length
  }
  // The lists are varied enough that many routes are covered, and many not.
  expect(covered).toBeGreaterThan(500)
})

test('the first covering route is named, whichever group it is in', () => {
  expect(coveringRoutes([{ host: 'a.example', pathPrefix: '/api/' }, { host: undefined, pathPrefix: '/api' }, { host: 'a.example', pathPrefix: '/api/v1' }])).toEqual([-1, -1, 0])
  expect(coveringRoutes([{ host: '*.example', pathPrefix: undefined }, { host: 'a.example', pathPrefix: '/x' }, { host: 'b.example', pathPrefix: undefined }])).toEqual([-1, 0, 0])
  expect(coveringRoutes([{ host: 'a.example', pathPrefix: '/x' }, { host: 'b.example', pathPrefix: '/x' }, { host: 'a.example', pathPrefix: '/x/y' }])).toEqual([-1, -1, 0])
})
