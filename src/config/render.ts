/**
 * The resolved config said back in the file's language: TOML keys and human units
 * (connect_timeout = "5s", not connectTimeoutMs = 5000), for `proxy check`. Driven by the field
 * tables of fields.ts, so a new field is printed without touching this file. The output reads
 * back to the same ResolvedConfig (test/config/render.test.ts), so an operator can keep it as a
 * complete config file (all but a secret, which shows only that it is set).
 */
import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from '../lib/units.ts'
import { ACME_FIELDS, ADMIN_FIELDS, CACHE_FIELDS, LOG_FIELDS, ROUTE_FIELDS, SERVER_FIELDS, UPSTREAM_FIELDS, type Field } from './fields.ts'
import type { HostPort, ResolvedConfig, RewritePair } from './schema.ts'
import { inertTable, type InertKey } from './ineffective.ts'
import { hostPort } from '../lib/net.ts'

/** A table of TOML keys to values in file units; undefined means the key is not set. */
export type FileTable = Record<string, unknown>

export interface FileShape {
  server: FileTable
  /** Every upstream by name ([upstream] alone is the one named "default"). */
  upstream: Record<string, FileTable>
  /** The [[route]] entries as written; the implicit last route (default_upstream) is not one. */
  route: FileTable[]
  admin: FileTable
  log: FileTable
  cache: FileTable
  acme: FileTable
}

/** The resolved config as file tables: every key of every table, defaults included. */
export function fileShapeOf(config: ResolvedConfig): FileShape {
  const table = (fields: readonly Field[], values: object): FileTable => {
    const out: FileTable = {}
    for (const f of fields) out[f.key] = fileValue(f, (values as Record<string, unknown>)[f.prop])
    return out
  }
  return {
    // server.via "off" resolves to undefined (no Via); printed as not set, it would read back as the
    // default name. The listener is always the running runtime's (resolve.ts refuses the other):
    // printed as auto, a file kept from it reads back the same here and on the other runtime.
    server: table(SERVER_FIELDS, { ...config.server, listener: 'auto', via: config.server.via === undefined ? 'off' : config.server.via }),
    upstream: Object.fromEntries(Object.values(config.upstreams).map((u) => [u.name, table(UPSTREAM_FIELDS, u)])),
    route: config.routes.slice(0, -1).map((r) => table(ROUTE_FIELDS, r)),
    admin: table(ADMIN_FIELDS, config.admin),
    log: table(LOG_FIELDS, config.log),
    // With the cache off, max_object_size is clamped to max_size (0); printed so, a file kept from
    // this output would store nothing once max_size is set. Its default reads back the same.
    cache: table(CACHE_FIELDS, config.cache.maxBytes === 0 ? { ...config.cache, maxObjectBytes: parseSizeBytes(String(CACHE_FIELDS.find((f) => f.key === 'max_object_size')!.default)) } : config.cache),
    acme: table(ACME_FIELDS, config.acme),
  }
}

/** What a secret (the admin token) is printed as, when it is set. */
export const NOT_SHOWN = '(set; not shown)'

/**
 * One resolved value in the unit and spelling the file uses for its field. A value equal to the
 * field's default is spelled as the default is in the reference ("60s", not "1m").
 */
export function fileValue(field: Field, value: unknown): unknown {
  if (value === undefined) return field.kind.type === 'hostport' ? 'off' : undefined
  if (field.secret) return NOT_SHOWN
  switch (field.kind.type) {
    case 'duration':
      if (typeof field.default === 'string' && parseDurationMs(field.default) === value) return value === 0 ? 0 : field.default
      return value === 0 ? 0 : formatDurationMs(value as number)
    case 'size':
      if (typeof field.default === 'string' && parseSizeBytes(field.default) === value) return value === 0 ? 0 : field.default
      return value === 0 ? 0 : sizeText(value as number)
    case 'hostport': {
      const hp = value as HostPort
      return hostPort(hp.host, hp.port)
    }
    case 'rewrites': {
      const rules = (value as readonly ('default' | RewritePair)[]).map((r) => (typeof r === 'string' ? r : `${r.from} ${r.to}`))
      return rules.length === 0 ? 'off' : rules.length === 1 ? rules[0] : rules
    }
    default:
      return value
  }
}

/** [server] keys the Deno server has no option for (fields.ts bunOnly). */
const BUN_ONLY_SERVER_KEYS: ReadonlySet<string> = new Set(SERVER_FIELDS.filter((f) => f.bunOnly).map((f) => f.key))

/**
 * The shape as TOML text. A key that is not set is printed as a comment, so every key shows.
 * A single upstream named "default" is written as [upstream], the way it is usually configured.
 * `deno`: the [server] keys not applied there carry a comment saying so (the value still reads
 * back, so the text stays a config file for either runtime).
 */
export function toToml(shape: FileShape, opts: { deno?: boolean; inert?: readonly InertKey[] } = {}): string {
  const lines: string[] = []
  // Keys of no effect (ineffective.ts) as comments: a file kept from this output does not set them.
  const inert = new Set((opts.inert ?? []).map((k) => `${inertTable(k)}.${k.key}`))
  const section = (header: string, t: FileTable, table: string, bunOnly?: ReadonlySet<string>) => {
    if (lines.length > 0) lines.push('')
    lines.push(header)
    for (const [key, value] of Object.entries(t)) {
      if (value === undefined) lines.push(`# ${key} is not set`)
      else if (value === NOT_SHOWN) lines.push(`# ${key} is set (not shown)`)
      else if (inert.has(`${table}.${key}`)) lines.push(`# ${key} = ${tomlValue(value)} (no effect here)`)
      else lines.push(`${key} = ${tomlValue(value)}${bunOnly?.has(key) ? ' # not applied on Deno' : ''}`)
    }
  }
  section('[server]', shape.server, 'server', opts.deno ? BUN_ONLY_SERVER_KEYS : undefined)
  const names = Object.keys(shape.upstream)
  for (const name of names) section(names.length === 1 && name === 'default' ? '[upstream]' : `[upstream.${name}]`, shape.upstream[name]!, `upstream.${name}`)
  for (const r of shape.route) section('[[route]]', Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)), 'route')
  section('[admin]', shape.admin, 'admin')
  section('[log]', shape.log, 'log')
  section('[cache]', shape.cache, 'cache')
  section('[acme]', shape.acme, 'acme')
  return `${lines.join('\n')}\n`
}

/** "16KiB" where it divides by 1024, else "10MB" where by 1000, else a count of bytes. */
function sizeText(bytes: number): string {
  const binary = formatSizeBytes(bytes)
  if (!/^\d+B$/.test(binary)) return binary
  for (const [unit, f] of [['GB', 1000 ** 3], ['MB', 1000 ** 2], ['KB', 1000]] as const) {
    if (bytes % f === 0) return `${bytes / f}${unit}`
  }
  return binary
}

function tomlValue(v: unknown): string {
  if (typeof v === 'string') return tomlString(v)
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`
  return String(v)
}

/**
 * A TOML basic string. JSON's escapes are all valid TOML escapes; TOML also wants DEL escaped,
 * which JSON leaves as it is (TOML 1.0, "String").
 */
function tomlString(s: string): string {
  return JSON.stringify(s).replace(/\x7f/g, '\\u007f')
}
