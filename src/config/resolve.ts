/**
 * Layers and validation: defaults < config file < flags, into one frozen ResolvedConfig.
 * This is the only place that parses units or checks for missing values; an error names the
 * file, the line where known, and the key path (or the flag) that holds the bad value.
 */
import { isIP } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, formatConfigLocation, type ConfigLocation } from '../lib/errors.ts'
import { ACME_FIELDS, ADMIN_FIELDS, CACHE_FIELDS, LOG_FIELDS, ROUTE_FIELDS, SERVER_FIELDS, TOKEN_HOW, UPSTREAM_FIELDS, type Field } from './fields.ts'
import { firstLineUnder, TomlDateTime, TomlFloat, type LoadedFile } from './load.ts'
import type { HostPort, ResolvedAcme, ResolvedConfig, ResolvedRoute, ResolvedUpstream } from './schema.ts'
import { cidrProblem, parseCidr } from '../lib/cidr.ts'
import { isBun } from '../runtime/detect.ts'
import { bracketedIpv6, hostPort, withoutFinalDot } from '../lib/net.ts'
import { DNS_NAME_RE, looseIpv4, looseIpv4Problem, parseResolverAddress, parseUpstreamUrl, show, takesPortOf } from './addresses.ts'
import { coerceField } from './coerce.ts'
import { ineffectiveKeys } from './ineffective.ts'
import { ROUTE_HOST_RE } from './route-host.ts'
import { coveringRoutes } from './route-shadow.ts'
import { closest } from '../lib/suggest.ts'
import { prefixAsSent } from '../lib/route-path.ts'
import { isHostValue } from '../http1/chars.ts'

export { parseHostPort, parseResolverAddress, parseUpstreamUrl } from './addresses.ts'

/** Flag values, already in file units and keyed like the file. Upstream flags apply to the default upstream. */
export interface FlagLayer {
  server?: Record<string, unknown>
  upstream?: Record<string, unknown>
  admin?: Record<string, unknown>
  log?: Record<string, unknown>
  acme?: Record<string, unknown>
  cache?: Record<string, unknown>
  /** "server.listen" -> "--listen": how to name a flag in an error. */
  flagNames?: Record<string, string>
}

const TOP_KEYS = new Set(['server', 'upstream', 'route', 'admin', 'log', 'acme', 'cache'])

type Table = Record<string, unknown>

interface Ctx {
  file: LoadedFile | undefined
  flags: FlagLayer
  /** Key prefix of the upstream the upstream flags apply to ("upstream" or "upstream.NAME"), once known. */
  flagUpstream?: string
}

export function resolveConfig(file: LoadedFile | undefined, flags: FlagLayer = {}): ResolvedConfig {
  const ctx: Ctx = { file, flags }
  const data = (file?.data ?? {}) as Table
  for (const key of Object.keys(data)) {
    if (!TOP_KEYS.has(key)) {
      const near = closest(key, [...TOP_KEYS])
      fail(ctx, key, `unknown key${near ? ` (did you mean "${near}"?)` : ''}; expected one of: ${[...TOP_KEYS].join(', ')}`)
    }
  }
  const serverTable = mergeTable(ctx, 'server', tableAt(ctx, data, 'server'), flags.server)
  const upstreamTables = collectUpstreams(ctx, data.upstream)
  const server = resolveFields(ctx, 'server', serverTable, SERVER_FIELDS) as unknown as ResolvedConfig['server'] & { defaultUpstream: string | undefined }

  // Which upstream the default route (and the --upstream family of flags) refers to.
  const names = Object.keys(upstreamTables.tables)
  let defaultName = server.defaultUpstream
  if (defaultName === undefined) defaultName = names.length === 1 ? names[0]! : 'default'
  if (flags.upstream && Object.keys(flags.upstream).length > 0) {
    // Upstream flags without --upstream beside several named upstreams: which one they are for is
    // not said (an upstream "default" made of the flags alone was then refused as "url: missing").
    if (!Object.hasOwn(upstreamTables.tables, defaultName) && flags.upstream.url === undefined && names.length > 1) {
      fail(ctx, 'server.default_upstream', `is not set, and the upstream flags apply to the default upstream; set default_upstream to one of ${names.map((n) => show(n)).join(', ')}, or pass --upstream <url> for a new one`)
    }
    const base = upstreamTables.tables[defaultName] ?? {}
    upstreamTables.tables[defaultName] = { ...base, ...stripUndefined(flags.upstream) }
    upstreamTables.prefixes[defaultName] ??= `upstream.${defaultName}`
  }
  ctx.flagUpstream = upstreamTables.prefixes[defaultName]
  if (Object.keys(upstreamTables.tables).length === 0) {
    fail(ctx, 'upstream', 'no upstream configured; pass --upstream <url> or add [upstream] with url = "https://origin.example.com"')
  }
  if (!Object.hasOwn(upstreamTables.tables, defaultName)) {
    fail(ctx, 'server.default_upstream', `names upstream ${show(defaultName)}, which is not defined; define [upstream.${defaultName}] or set server.default_upstream`)
  }
  const upstreams: Record<string, ResolvedUpstream> = {}
  for (const [name, table] of Object.entries(upstreamTables.tables)) {
    upstreams[name] = resolveUpstream(ctx, name, upstreamTables.prefixes[name]!, table)
  }

  const routes = resolveRoutes(ctx, data.route, upstreams)
  // A route an earlier one takes every request of (the same or any host, a prefix its own starts with) is never used.
  // Prefixes compared as the router reads them (lib/route-path.ts: "/%61pi/" is "/api/", "/api/../web/" is "/web/").
  coveringRoutes(routes).forEach((by, j) => {
    if (by >= 0) fail(ctx, `route[${j}]`, `is never used: route[${by}]${lineOf(ctx, `route[${by}]`)} comes first and matches every request it would; remove it, or put the narrower route first`)
  })
  routes.push({ host: undefined, pathPrefix: undefined, upstream: defaultName, cache: true })

  if ((server.tlsCertFile === undefined) !== (server.tlsKeyFile === undefined)) {
    // Named where the one given is (its line, or its flag): the missing one has no line to point at.
    const [given, missing] = server.tlsCertFile === undefined ? ['tls_key', 'tls_cert'] : ['tls_cert', 'tls_key']
    fail(ctx, `server.${given}`, `is set without ${missing}; tls_cert and tls_key go together: set both or neither`)
  }
  // Resolved here, once: the rest of the program sees "own" or "runtime".
  const listener = server.listener as string
  if (listener === 'auto') server.listener = isBun ? 'own' : 'runtime'
  else if (listener === 'own' && !isBun) fail(ctx, 'server.listener', '"own" needs the Bun runtime (Bun.listen); use "runtime" or "auto" on Deno')
  // One front door on Bun: Bun.serve lost pipelined requests and rewrote targets (see the README's Hardening section).
  else if (listener === 'runtime' && isBun) fail(ctx, 'server.listener', '"runtime" (Bun.serve) is not offered on Bun: it lost pipelined requests and rewrote request targets; remove the key or use "auto" (the runtime server is used on Deno only)')
  if (server.maxHeaderBytes < 1024 || server.maxHeaderBytes > 1024 * 1024) {
    fail(ctx, 'server.max_header_size', `${server.maxHeaderBytes} bytes is outside 1KiB..1MiB; use e.g. "16KiB" or "64KiB"`)
  }
  // received-by (RFC 9110 §7.6.3): a pseudonym (a token) or uri-host[:port]; "off" for none.
  const via = server.via as string
  if (via === 'off') server.via = undefined
  else if (!/^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(via)) {
    fail(ctx, 'server.via', `${show(via)} is not a name Via can carry; use a token such as "edge-1", a host[:port], or "off"`)
  }
  server.trustedProxies.forEach((cidr, i) => {
    if (!parseCidr(cidr)) fail(ctx, `server.trusted_proxies[${i}]`, `${show(cidr)} is not a CIDR; use e.g. "10.0.0.0/8" or "::1/128"`)
    const problem = cidrProblem(cidr)
    if (problem) fail(ctx, `server.trusted_proxies[${i}]`, `${show(cidr)} ${problem}`)
  })

  const adminTable = mergeTable(ctx, 'admin', tableAt(ctx, data, 'admin'), flags.admin)
  const admin = resolveFields(ctx, 'admin', adminTable, ADMIN_FIELDS) as { listen: HostPort | undefined; token: string | undefined }
  // Compared with what follows "Bearer " in Authorization: "" would leave the admin open (an unset
  // variable in --admin-token "$T": refused by its field), and one no header carries as written would shut it for all.
  if (admin.token !== undefined && !/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(admin.token)) {
    fail(ctx, 'admin.token', `cannot be sent as written in an Authorization header (a control or non-ASCII character, or a space at either end), so no request would match it; ${TOKEN_HOW}`)
  }
  // The admin listener on the proxy's own port: serve would fail to start ("address in use", by itself).
  const sl = server.listen as HostPort
  if (admin.listen && takesPortOf(admin.listen, sl)) {
    if (!isSet(ctx, 'admin.listen')) fail(ctx, 'server.listen', `${hostPort(sl.host, sl.port)} takes the admin endpoint's address (admin.listen, ${hostPort(admin.listen.host, admin.listen.port)} by default); listen on another port, or move the admin with --admin (admin.listen)`)
    fail(ctx, 'admin.listen', `${hostPort(admin.listen.host, admin.listen.port)} is the proxy's own listen address (${hostPort(sl.host, sl.port)}); give the admin endpoint another port`)
  }
  const logTable = mergeTable(ctx, 'log', tableAt(ctx, data, 'log'), flags.log)
  const log = resolveFields(ctx, 'log', logTable, LOG_FIELDS) as unknown as ResolvedConfig['log']
  const acme = resolveAcme(ctx, mergeTable(ctx, 'acme', tableAt(ctx, data, 'acme'), flags.acme), server)
  // So would the HTTP-01 listener there, and serve would blame --listen (it opens first).
  if (acme.domains.length > 0 && acme.httpListen && takesPortOf(acme.httpListen, sl)) {
    fail(ctx, 'acme.http_listen', `${hostPort(acme.httpListen.host, acme.httpListen.port)} is the proxy's own listen address (${hostPort(sl.host, sl.port)}); the HTTP-01 listener needs port 80 (or another port), the proxy its HTTPS one`)
  }
  // The https redirect listener (serve.ts runs acme/http01.ts without challenges): in front of a TLS listener only, on a port of its own.
  const redirect = server.httpRedirectListen as HostPort | undefined
  if (redirect) {
    if (server.tlsCertFile === undefined && acme.domains.length === 0) fail(ctx, 'server.http_redirect_listen', 'redirects to https, but the listener serves plain HTTP; set tls_cert and tls_key (or acme.domains), or remove the key')
    const clash = ([['server.listen', sl], ['admin.listen', admin.listen], ['acme.http_listen', acme.domains.length > 0 ? acme.httpListen : undefined]] as const).find(([, at]) => at && takesPortOf(redirect, at))
    const also = clash?.[0] === 'acme.http_listen' ? '; with acme.domains, acme.http_listen redirects to https itself: remove this key' : ''
    if (clash) fail(ctx, 'server.http_redirect_listen', `${hostPort(redirect.host, redirect.port)} takes the port of ${clash[0]} (${hostPort(clash[1]!.host, clash[1]!.port)}); give it a port of its own${also}`)
  }
  const cacheTable = mergeTable(ctx, 'cache', tableAt(ctx, data, 'cache'), flags.cache)
  const cache = resolveFields(ctx, 'cache', cacheTable, CACHE_FIELDS) as unknown as ResolvedConfig['cache']
  // An object larger than the whole budget could never be stored: one asked for so is refused, the
  // default (8MiB) is lowered to a smaller budget without a word.
  if (cache.maxBytes > 0 && cache.maxObjectBytes > cache.maxBytes && Object.hasOwn(cacheTable, 'max_object_size')) {
    fail(ctx, 'cache.max_object_size', `is larger than max_size (${cache.maxBytes} bytes): no response that large could be stored; make it at most max_size`)
  }
  if (cache.maxObjectBytes > cache.maxBytes) cache.maxObjectBytes = cache.maxBytes

  const resolved: ResolvedConfig = {
    file: file?.path,
    server: { ...server, defaultUpstream: defaultName },
    upstreams,
    routes,
    admin,
    log,
    acme,
    cache,
    fileKeys: fileKeysOf(ctx, upstreamTables.prefixes, upstreams),
    ineffective: ineffectiveKeys({ acme, upstreams, cache, server }, upstreamTables.prefixes, (k) => (isSet(ctx, k) ? formatConfigLocation(locate(ctx, k)) : undefined), { deno: !isBun }),
  }
  return deepFreeze(resolved)
}

/** A DNS name an ACME CA can validate over HTTP-01: LDH labels, at least two, no wildcard. */
const ACME_NAME_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

function resolveAcme(ctx: Ctx, table: Table, server: { tlsCertFile: string | undefined; listener: string }): ResolvedAcme {
  const f = resolveFields(ctx, 'acme', table, ACME_FIELDS) as Record<string, unknown>
  const domains = [...new Set((f.domains as string[]).map((d) => d.trim().toLowerCase()))]
  domains.forEach((d, i) => {
    if (d.startsWith('*.')) fail(ctx, `acme.domains[${i}]`, `${show(d)}: wildcard names need the DNS-01 challenge, which the proxy does not do; list each name`)
    const read = looseIpv4(d)
    if (read !== undefined) fail(ctx, `acme.domains[${i}]`, looseIpv4Problem(d, read, () => 'list DNS names only'))
    if (isIP(d) || !ACME_NAME_RE.test(d)) fail(ctx, `acme.domains[${i}]`, `${show(d)} is not a DNS name; use e.g. "example.com"`)
  })
  const directoryUrl = f.directoryUrl as string
  if (!/^https:\/\/[^/]+/i.test(directoryUrl)) fail(ctx, 'acme.directory', `${show(directoryUrl)} is not an https URL; ACME directories are served over HTTPS (RFC 8555 §6.1)`)
  const email = f.email as string | undefined
  if (email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(email)) fail(ctx, 'acme.email', `${show(email)} is not an e-mail address`)
  if (domains.length > 0) {
    if (server.tlsCertFile !== undefined) fail(ctx, 'acme.domains', 'automatic HTTPS and server.tls_cert both set the listener\'s certificate; use one or the other')
    if (server.listener === 'runtime') fail(ctx, 'server.listener', 'automatic HTTPS (acme.domains) needs the own listener (Bun); use listener = "own" or "auto" on Bun')
  }
  return {
    domains,
    email,
    directoryUrl,
    caFile: f.caFile as string | undefined,
    httpListen: f.httpListen as HostPort | undefined,
    stateDir: (f.stateDir as string | undefined) ?? defaultStateDir(),
  }
}

/** /var/lib/proxy for root (a system service), else the XDG state directory of the user. */
function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/proxy'
  const xdg = process.env.XDG_STATE_HOME
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state'), 'proxy')
}

function collectUpstreams(ctx: Ctx, raw: unknown): { tables: Record<string, Table>; prefixes: Record<string, string> } {
  // No prototype: a name such as "toString" is an upstream only when defined (default_upstream's merge with the flags reads them).
  const tables: Record<string, Table> = Object.create(null)
  const prefixes: Record<string, string> = Object.create(null)
  if (raw === undefined) return { tables, prefixes }
  if (!isTable(raw)) fail(ctx, 'upstream', 'must be a table: [upstream] with url = "...", or [upstream.NAME] tables')
  if ('url' in raw || Object.values(raw).every((v) => !isTable(v))) {
    // The single-upstream form: [upstream] url = "..."
    const named = Object.keys(raw).find((k) => isTable(raw[k]))
    if (named !== undefined) fail(ctx, `upstream.${named}`, 'named upstreams ([upstream.NAME]) cannot be mixed with [upstream] url = "..."; name that one too, e.g. [upstream.default]')
    tables.default = raw
    prefixes.default = 'upstream'
    return { tables, prefixes }
  }
  for (const [name, value] of Object.entries(raw)) {
    if (!isTable(value)) fail(ctx, `upstream.${name}`, 'expected a table [upstream.NAME]; do not mix [upstream] keys with named upstreams')
    if (!/^[A-Za-z0-9_-]+$/.test(name)) fail(ctx, `upstream.${name}`, 'upstream names use letters, digits, "_" and "-"')
    // Assigned to an object, it would set the prototype: the upstream was dropped silently.
    if (name === '__proto__') fail(ctx, `upstream.${name}`, '"__proto__" cannot name an upstream; choose another name')
    tables[name] = value
    prefixes[name] = `upstream.${name}`
  }
  return { tables, prefixes }
}

function resolveUpstream(ctx: Ctx, name: string, prefix: string, table: Table): ResolvedUpstream {
  const f = resolveFields(ctx, prefix, table, UPSTREAM_FIELDS) as Record<string, unknown>
  if (typeof f.url !== 'string' || f.url === '') fail(ctx, `${prefix}.url`, 'missing; set the origin, e.g. url = "https://origin.example.com"')
  const target = parseUpstreamUrl(f.url as string)
  if (typeof target === 'string') fail(ctx, `${prefix}.url`, target)
  // Named by the key that was set (a flag or a line), not one left at its default.
  if ((f.resolveMinTtlMs as number) > (f.resolveMaxTtlMs as number)) {
    if (isSet(ctx, `${prefix}.resolve_min_ttl`) || !isSet(ctx, `${prefix}.resolve_max_ttl`)) fail(ctx, `${prefix}.resolve_min_ttl`, 'is larger than resolve_max_ttl')
    fail(ctx, `${prefix}.resolve_max_ttl`, `is smaller than resolve_min_ttl (${f.resolveMinTtlMs} ms); make it at least that, or lower resolve_min_ttl`)
  }
  if ((f.ejectBaseMs as number) > (f.ejectMaxMs as number)) {
    if (isSet(ctx, `${prefix}.eject_time`) || !isSet(ctx, `${prefix}.eject_max_time`)) fail(ctx, `${prefix}.eject_time`, 'is larger than eject_max_time (the longest an ejection lasts); make it at most that, or raise eject_max_time')
    fail(ctx, `${prefix}.eject_max_time`, `is smaller than eject_time (${f.ejectBaseMs} ms, the first ejection); make it at least that, or lower eject_time`)
  }
  ;(f.resolvers as string[]).forEach((r, i) => {
    if (!parseResolverAddress(r)) fail(ctx, `${prefix}.resolvers[${i}]`, `${show(r)} is not ip[:port]; use e.g. "127.0.0.1:53" or "[::1]:53"`)
  })
  if (f.healthPath !== undefined && !(f.healthPath as string).startsWith('/')) fail(ctx, `${prefix}.health_path`, 'must start with "/", e.g. "/healthz"')
  // Sent as the request target of every check: an origin-form target (RFC 9112 §3.2.1), never a space or a line break.
  const badInPath = f.healthPath === undefined ? null : /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})/.exec(f.healthPath as string)
  if (badInPath) fail(ctx, `${prefix}.health_path`, `${show(f.healthPath)} holds ${show(badInPath[0])}, which a request target cannot; write it %-escaped (a space is "%20"), e.g. "/healthz?full=1"`)
  // Sent as the Host field of every request: what a client's Host must be too (RFC 9110 §7.2), never a line break.
  // SNI carries a DNS name (RFC 6066 §3) and the certificate is checked against it or an IP: said here, not at each handshake.
  const sni = f.tlsServerName as string | undefined
  if (sni !== undefined && isIP(sni) === 0 && !DNS_NAME_RE.test(sni)) {
    fail(ctx, `${prefix}.tls_server_name`, `${show(sni)} is not a DNS name or an IP address; use e.g. "origin.example.com"`)
  }
  if (f.hostHeader !== undefined && !isHostValue(f.hostHeader as string)) fail(ctx, `${prefix}.host_header`, `${show(f.hostHeader)} is not host[:port] (RFC 9110 §7.2); use e.g. "www.example.com" or "[2001:db8::1]:8443"`)
  return {
    ...(f as unknown as ResolvedUpstream),
    name,
    url: `${target.scheme}://${hostPort(target.host, target.port)}`,
    scheme: target.scheme,
    host: target.host,
    port: target.port,
    // SNI carries a name without its final dot (RFC 6066 §3), as curl sends it: "origin.example." is
    // sent and checked as "origin.example" (a server choosing its certificate by name knows no dotted one).
    tlsServerName: withoutFinalDot((f.tlsServerName as string | undefined) ?? target.host),
  }
}

function resolveRoutes(ctx: Ctx, raw: unknown, upstreams: Record<string, ResolvedUpstream>): ResolvedRoute[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) fail(ctx, 'route', 'must be an array of tables: [[route]]')
  return raw.map((entry, i) => {
    const prefix = `route[${i}]`
    if (!isTable(entry)) fail(ctx, prefix, 'must be a table')
    const r = resolveFields(ctx, prefix, entry, ROUTE_FIELDS) as { host?: string; pathPrefix?: string; upstream?: string; cache: boolean }
    if (r.upstream === undefined) fail(ctx, `${prefix}.upstream`, `missing; name an [upstream.NAME] (defined: ${Object.keys(upstreams).join(', ')}${Object.hasOwn(upstreams, 'default') ? '; a lone [upstream] table is "default"' : ''})`)
    if (!Object.hasOwn(upstreams, r.upstream)) fail(ctx, `${prefix}.upstream`, `names ${show(r.upstream)}, which is not defined; defined: ${Object.keys(upstreams).join(', ')}`)
    if (r.host === undefined && r.pathPrefix === undefined) fail(ctx, prefix, 'a route needs host and/or path_prefix')
    if (r.pathPrefix !== undefined && !r.pathPrefix.startsWith('/')) fail(ctx, `${prefix}.path_prefix`, 'must start with "/"')
    const sent = r.pathPrefix === undefined ? undefined : prefixAsSent(r.pathPrefix) // "/café/" as requests carry it
    if (typeof sent === 'object') fail(ctx, `${prefix}.path_prefix`, sent.problem)
    // An IPv6 literal is matched as the Host header carries it: in brackets (RFC 3986 §3.2.2).
    const v6 = r.host === undefined ? undefined : bracketedIpv6(r.host)
    // Labels of letters, digits, "-" and "_" (none empty, none starting or ending with "-"): "a..b",
    // "." or "-bad-" matched no Host a client sends, and were taken without a word until the
    // eighteenth round of outside reviews.
    if (r.host !== undefined && withoutFinalDot(r.host.replace(/^\*?\./, '')) === '_') fail(ctx, `${prefix}.host`, 'is nginx\'s "no name" (server_name _), which no request carries; leave host out for a route of every host, or let default_upstream take the rest')
    if (r.host !== undefined && v6 === undefined && !ROUTE_HOST_RE.test(r.host)) fail(ctx, `${prefix}.host`, `${show(r.host)} is not a host name, "*.suffix", ".suffix" (the name and any under it) or an IP address such as "[2001:db8::1]"`)
    return { host: v6 ?? (r.host === undefined ? undefined : withoutFinalDot(r.host.toLowerCase())), pathPrefix: sent, upstream: r.upstream, cache: r.cache }
  })
}

function tableAt(ctx: Ctx, data: Table, key: string): Table {
  const v = data[key]
  if (v === undefined) return {}
  if (!isTable(v)) fail(ctx, key, `must be a table: [${key}]`)
  return v
}

function mergeTable(_ctx: Ctx, _name: string, fileTable: Table, flagTable: Record<string, unknown> | undefined): Table {
  return flagTable ? { ...fileTable, ...stripUndefined(flagTable) } : fileTable
}

function stripUndefined(t: Record<string, unknown>): Table {
  return Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined))
}

/** Every table's fields, under the header that holds them. */
const TABLES: readonly [string, readonly Field[]][] = [['[server]', SERVER_FIELDS], ['[upstream]', UPSTREAM_FIELDS], ['[[route]]', ROUTE_FIELDS], ['[admin]', ADMIN_FIELDS], ['[log]', LOG_FIELDS], ['[cache]', CACHE_FIELDS], ['[acme]', ACME_FIELDS]]

/** Validates one table against its field list; unknown keys are errors. Returns camelCase props. */
function resolveFields(ctx: Ctx, prefix: string, table: Table, fields: readonly Field[]): Record<string, unknown> {
  const known = new Map(fields.map((f) => [f.key, f]))
  for (const key of Object.keys(table)) {
    if (!known.has(key)) {
      // A key of another table ([server] connect_timeout) is told where it goes; a typo gets the closest name.
      const homes = TABLES.filter(([, fs]) => fs !== fields && fs.some((f) => f.key === key)).map(([t]) => t)
      const near = closest(key, [...known.keys()])
      fail(ctx, `${prefix}.${key}`, `unknown key${homes.length > 0 ? `; it goes in ${homes.join(' or ')}` : near ? `; did you mean "${near}"?` : ''}`)
    }
  }
  const out: Record<string, unknown> = {}
  for (const field of fields) {
    const raw = table[field.key] ?? field.default
    out[field.prop] = raw === undefined ? undefined : coerceField(field, raw, (problem) => fail(ctx, `${prefix}.${field.key}`, problem))
  }
  return out
}

/** ResolvedConfig.fileKeys: where each file the config names was set, for the errors of reading it. */
function fileKeysOf(ctx: Ctx, prefixes: Record<string, string>, upstreams: Record<string, ResolvedUpstream>): Record<string, string> {
  const out: Record<string, string> = {}
  const add = (id: string, keyPath: string) => {
    const loc = locate(ctx, keyPath)
    // Only a key the file or a named flag set: values given in code (tests) have no place to name.
    if (loc.keyPath?.startsWith('--') || ctx.file?.lines.has(keyPath)) out[id] = formatConfigLocation(loc)
  }
  for (const key of ['server.tls_cert', 'server.tls_key', 'acme.ca_file', 'log.access_log', 'acme.state_dir', 'server.listen', 'admin.listen']) add(key, key)
  for (const name of Object.keys(upstreams)) add(`upstream.${name}.ca_file`, `${prefixes[name]}.ca_file`)
  return out
}

function fail(ctx: Ctx, keyPath: string, problem: string): never {
  throw new ConfigError(locate(ctx, keyPath), problem)
}

/** " (line 3)" where a key path was written, for pointing at a second place in one message. */
function lineOf(ctx: Ctx, keyPath: string): string {
  const line = ctx.file?.lines.get(keyPath)
  return line === undefined ? '' : ` (line ${line})`
}

/** Whether a flag or a line of the file set `keyPath` (else it has its default). */
function isSet(ctx: Ctx, keyPath: string): boolean {
  if (ctx.file?.lines.has(keyPath)) return true
  // A flag: the flag layer holds the key.
  const [table, ...rest] = flagKeyOf(ctx, keyPath).split('.')
  const layer = ctx.flags[table as keyof Omit<FlagLayer, 'flagNames'>]
  return layer !== undefined && rest.length === 1 && layer[rest[0]!] !== undefined
}

/** The key a flag would set for `keyPath`: upstream flags set keys of the default upstream only (another upstream's bad value is the file's). */
function flagKeyOf(ctx: Ctx, keyPath: string): string {
  const up = ctx.flagUpstream
  return up && keyPath.startsWith(`${up}.`) ? `upstream.${keyPath.slice(up.length + 1)}` : keyPath
}

/** Names where a value came from: the flag if a flag set it, else the file and line. */
function locate(ctx: Ctx, keyPath: string): ConfigLocation {
  const flagKey = flagKeyOf(ctx, keyPath).replace(/\[\d+\]$/, '')
  // Own properties only: a key the file names "__proto__" or "toString" is no flag.
  const flagNames = ctx.flags.flagNames
  const flag = flagNames && Object.hasOwn(flagNames, flagKey) ? flagNames[flagKey] : undefined
  if (flag) return { keyPath: flag }
  if (!ctx.file) return { keyPath }
  // The key's own line; else its first key under it ([upstream.x.y] for "upstream.x"); else its table's.
  const lines = ctx.file.lines
  const line = lines.get(keyPath) ?? lines.get(keyPath.replace(/\[\d+\]$/, '')) ?? firstLineUnder(lines, keyPath) ?? lines.get(keyPath.replace(/\.[^.]+$/, ''))
  return { file: ctx.file.path, keyPath, line }
}


function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof TomlDateTime) && !(v instanceof TomlFloat)
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object' && !Object.isFrozen(obj)) {
    Object.freeze(obj)
    for (const v of Object.values(obj)) deepFreeze(v)
  }
  return obj
}
