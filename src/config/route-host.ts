/**
 * A [[route]]'s host as the config takes it: what may be written (ROUTE_HOST_RE), and whether one
 * route's host covers another's (hostCovers, for the "is never used" check). Pure; matching a
 * request's Host is routes.ts's hostMatches, whose three forms these follow.
 */

/**
 * Whether route host `e` matches every host `r` matches (routes.ts hostMatches): an exact name
 * only itself; "*.x" the names under x; ".x" x and the names under it. ".example.com" before
 * "www.example.com" leaves the second never used (until the second opinion of the eighteenth
 * round only equal hosts were compared).
 */
export function hostCovers(e: string, r: string): boolean {
  const shape = (h: string) => (h.startsWith('*.') ? { base: h.slice(2), self: false, under: true } : h.startsWith('.') ? { base: h.slice(1), self: true, under: true } : { base: h, self: true, under: false })
  const E = shape(e)
  const R = shape(r)
  const within = (name: string) => name.endsWith(`.${E.base}`)
  const matches = (name: string) => (E.self && name === E.base) || (E.under && within(name))
  return (!R.self || matches(R.base)) && (!R.under || (E.under && (R.base === E.base || within(R.base))))
}

/** A [[route]] host: a name (one final dot allowed), "*." or "." before one, or an IPv4 address. */
export const ROUTE_HOST_RE = /^(?:\*\.|\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/i
