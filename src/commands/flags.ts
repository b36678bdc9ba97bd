/**
 * The serve/check flag set: each flag maps to one config key, so flags and the TOML file share
 * validation, defaults and documentation (fields.ts). Undefined flag values never override.
 */
import type { Command } from 'cac'
import { TABLE_FIELDS, type Field } from '../config/fields.ts'
import type { FlagLayer } from '../config/resolve.ts'

type Table = 'server' | 'upstream' | 'admin' | 'log' | 'acme' | 'cache'

interface FlagSpec {
  /** cac raw name, e.g. "--listen <host:port>" */
  raw: string
  table: Table
  key: string
}

export const CONFIG_FLAGS: readonly FlagSpec[] = [
  { raw: '--upstream <url>', table: 'upstream', key: 'url' },
  { raw: '--listen <host:port>', table: 'server', key: 'listen' },
  { raw: '--host-header <host>', table: 'upstream', key: 'host_header' },
  { raw: '--tls-server-name <name>', table: 'upstream', key: 'tls_server_name' },
  { raw: '--upstream-ca <file>', table: 'upstream', key: 'ca_file' },
  { raw: '--upstream-insecure', table: 'upstream', key: 'insecure' },
  { raw: '--tls-cert <file>', table: 'server', key: 'tls_cert' },
  { raw: '--tls-key <file>', table: 'server', key: 'tls_key' },
  { raw: '--http-redirect-listen <host:port|off>', table: 'server', key: 'http_redirect_listen' },
  { raw: '--connect-timeout <duration>', table: 'upstream', key: 'connect_timeout' },
  { raw: '--header-timeout <duration>', table: 'upstream', key: 'header_timeout' },
  { raw: '--idle-timeout <duration>', table: 'upstream', key: 'idle_timeout' },
  { raw: '--keepalive-timeout <duration>', table: 'server', key: 'keepalive_timeout' },
  { raw: '--drain-timeout <duration>', table: 'server', key: 'drain_timeout' },
  { raw: '--trim-interval <duration>', table: 'server', key: 'trim_interval' },
  { raw: '--max-body-size <size>', table: 'server', key: 'max_body_size' },
  { raw: '--max-header-size <size>', table: 'server', key: 'max_header_size' },
  { raw: '--max-concurrent-requests <n>', table: 'server', key: 'max_concurrent_requests' },
  { raw: '--listener <kind>', table: 'server', key: 'listener' },
  { raw: '--http2 <on|off>', table: 'server', key: 'http2' },
  { raw: '--max-connections <n>', table: 'server', key: 'max_connections' },
  { raw: '--client-header-timeout <duration>', table: 'server', key: 'client_header_timeout' },
  { raw: '--client-body-timeout <duration>', table: 'server', key: 'client_body_timeout' },
  { raw: '--trusted-proxy <cidr>', table: 'server', key: 'trusted_proxies' },
  { raw: '--via <name|off>', table: 'server', key: 'via' },
  { raw: '--resolver <ip[:port]>', table: 'upstream', key: 'resolvers' },
  { raw: '--family <family>', table: 'upstream', key: 'family' },
  { raw: '--resolve-interval <duration>', table: 'upstream', key: 'resolve_interval' },
  { raw: '--resolve-min-ttl <duration>', table: 'upstream', key: 'resolve_min_ttl' },
  { raw: '--resolve-max-ttl <duration>', table: 'upstream', key: 'resolve_max_ttl' },
  { raw: '--stale-grace <duration>', table: 'upstream', key: 'stale_grace' },
  { raw: '--max-connection-age <duration>', table: 'upstream', key: 'max_connection_age' },
  { raw: '--retries <n>', table: 'upstream', key: 'retries' },
  { raw: '--prewarm <n>', table: 'upstream', key: 'prewarm' },
  { raw: '--health-path <path>', table: 'upstream', key: 'health_path' },
  { raw: '--health-interval <duration>', table: 'upstream', key: 'health_interval' },
  { raw: '--proxy-redirect <rule>', table: 'upstream', key: 'proxy_redirect' },
  { raw: '--proxy-cookie-domain <rule>', table: 'upstream', key: 'proxy_cookie_domain' },
  { raw: '--proxy-cookie-path <rule>', table: 'upstream', key: 'proxy_cookie_path' },
  { raw: '--admin <host:port|off>', table: 'admin', key: 'listen' },
  { raw: '--admin-token <token>', table: 'admin', key: 'token' },
  { raw: '--access-log <stdout|stderr|off|file>', table: 'log', key: 'access_log' },
  { raw: '--log-format <json|text>', table: 'log', key: 'format' },
  { raw: '--cache <size>', table: 'cache', key: 'max_size' },
  { raw: '--cache-max-object-size <size>', table: 'cache', key: 'max_object_size' },
  { raw: '--cache-stale-if-error <duration>', table: 'cache', key: 'stale_if_error' },
  { raw: '--acme <domain>', table: 'acme', key: 'domains' },
  { raw: '--acme-email <email>', table: 'acme', key: 'email' },
  { raw: '--acme-directory <url>', table: 'acme', key: 'directory' },
  { raw: '--acme-ca <file>', table: 'acme', key: 'ca_file' },
  { raw: '--acme-http-listen <host:port|off>', table: 'acme', key: 'http_listen' },
  { raw: '--state-dir <dir>', table: 'acme', key: 'state_dir' },
]


/** Kinds whose flag may be given several times, each value one entry. */
function isListKind(field: Field): boolean {
  return field.kind.type === 'list' || field.kind.type === 'rewrites'
}

function flagName(raw: string): string {
  return raw.split(/[ <[]/)[0]!.replace(/^--/, '')
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/** Adds every config flag to a command, with its meaning and default in the help text. */
export function addConfigFlags(cmd: Command): Command {
  cmd.option('--config <file>', 'TOML config file; flags override it, and it overrides defaults')
  for (const spec of CONFIG_FLAGS) {
    const field = TABLE_FIELDS[spec.table].find((f) => f.key === spec.key)!
    const def = field.default
    const shown = def === undefined || (Array.isArray(def) && def.length === 0) ? '' : ` (default: ${Array.isArray(def) ? def.join(',') : String(def)})`
    const key = `${spec.table}.${spec.key}`
    const repeat = isListKind(field) ? ' Repeatable.' : ''
    cmd.option(spec.raw, `${field.doc}${repeat}${shown} [${key}]`)
  }
  return cmd
}

/** Turns parsed cac options into a FlagLayer for resolveConfig. */
export function flagLayer(options: Record<string, unknown>): FlagLayer {
  const layer: FlagLayer = { server: {}, upstream: {}, admin: {}, log: {}, acme: {}, cache: {}, flagNames: {} }
  for (const spec of CONFIG_FLAGS) {
    const name = flagName(spec.raw)
    let value = options[camel(name)]
    if (value === undefined) continue
    const field = TABLE_FIELDS[spec.table].find((f) => f.key === spec.key)!
    // A repeated flag: lists keep every value; for anything else the last one wins.
    if (Array.isArray(value)) value = isListKind(field) ? value.map(String) : value[value.length - 1]
    if (typeof value === 'number') value = String(value)
    // A boolean key given as a flag value: on/off, true/false, yes/no (--http2 off).
    if (field.kind.type === 'bool' && typeof value === 'string') {
      const v = value.toLowerCase()
      if (['on', 'true', 'yes', '1'].includes(v)) value = true
      else if (['off', 'false', 'no', '0'].includes(v)) value = false
    }
    ;(layer[spec.table] as Record<string, unknown>)[spec.key] = value
    layer.flagNames![`${spec.table}.${spec.key}`] = `--${name}`
  }
  return layer
}
