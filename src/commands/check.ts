/**
 * `proxy check`: validates the config (file and flags) and the files it names as `serve` reads
 * them (the TLS certificate and key as a matching pair, every CA bundle; the access log's and
 * the ACME state directory's kind), prints the resolved configuration under its TOML keys and
 * in its units (config/render.ts) so an operator sees every default that applies, then resolves
 * every upstream once and prints what it found. Exit 0 when valid and resolved, 2 when invalid,
 * 3 when a named file cannot be used (as `serve` would exit), 6 when an upstream did not
 * resolve (or --no-resolve to skip that step).
 */
import type { CAC } from 'cac'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { fileShapeOf, toToml } from '../config/render.ts'
import { inertKeys } from '../config/ineffective.ts'
import { exposedAdminWarning } from '../proxy/observe/admin.ts'
import { parseResolverAddress } from '../config/resolve.ts'
import { createLookup } from '../dns/lookup.ts'
import { colorsFor } from '../lib/colors.ts'
import { errorMessage } from '../lib/errors.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import type { HostPort, ResolvedConfig } from '../config/schema.ts'
import { loadTlsPair, readCaBundle, validityProblem } from '../runtime/tls-files.ts'
import { checkConfigPaths } from '../runtime/config-paths.ts'
import { isDeno } from '../runtime/detect.ts'
import { addConfigFlags } from './flags.ts'
import { configFromOptions } from './serve.ts'

export function registerCheck(cli: CAC, io: CliIo): void {
  const cmd = addConfigFlags(cli.command('check', 'Validate the config, print the resolved configuration, and resolve every upstream once'))
    .option('--json', 'Print the resolved configuration (and what each upstream resolved to) as JSON')
    .option('--no-resolve', 'Do not look the upstreams up (default: resolve them); listen addresses given as names are still looked up')
    .action((opts: Record<string, unknown>) => checkCommand(opts, io))
  // cac gives a --no-… flag a default of true, which --help printed as "(default: true)" beside a
  // flag that turns resolving off; the flag's own text says what the default is.
  for (const o of cmd.options) if (o.negated) o.config.default = undefined
}

export async function checkCommand(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  const config = configFromOptions(opts)
  const fileWarnings = checkFiles(config)
  const c = colorsFor(io.stdoutIsTTY, io.env)
  const resolved: Record<string, { addresses?: string[]; ttl_ms?: number; source?: string; error?: string }> = {}
  if (opts.resolve !== false) {
    await Promise.all(
      Object.values(config.upstreams).map(async (u) => {
        if (isIP(u.host)) {
          resolved[u.name] = { addresses: [u.host], source: 'literal' }
          return
        }
        try {
          const lookup = createLookup({ resolvers: u.resolvers.map((r) => parseResolverAddress(r)!) })
          const r = await lookup(u.host, { family: u.family, timeoutMs: u.resolveTimeoutMs })
          resolved[u.name] = { addresses: r.addresses.map((a) => a.address), ttl_ms: r.ttlMs, source: r.source }
        } catch (err) {
          resolved[u.name] = { error: `${(err as { code?: string }).code ?? 'ERROR'}: ${errorMessage(err)}` }
        }
      }),
    )
  }
  const unresolved = Object.entries(resolved).filter(([, r]) => r.error)
  // Listen names are looked up with --no-resolve too: serve binds with the same system resolver, and
  // a unit's `ExecStartPre=… check --no-resolve` would pass a config serve then refuses at every restart.
  const listenProblems = await unresolvedListenNames(config, io.lookupHost)
  // What serve warns about at start, check says too (on stderr: stdout stays the config).
  const exposed = exposedAdminWarning(config.admin)
  for (const w of [...(exposed ? [exposed] : []), ...fileWarnings, ...(config.ineffective ?? [])]) io.err(`warning: ${w}\n`)
  // Printed in the config's own language (TOML keys, "5s", "16KiB"), never the internal shape.
  const shape = fileShapeOf(config)
  if (opts.json) {
    io.out(`${JSON.stringify(opts.resolve !== false ? { config: shape, resolved } : shape, null, 2)}\n`)
  } else {
    // The lines around the TOML are TOML comments: the whole output, saved, is a config file.
    io.out(`# ${c.green('config ok')}${config.file ? ` (${config.file})` : ''}: every value that applies, defaults included\n\n`)
    io.out(`${toToml(shape, { deno: isDeno, inert: inertKeys(config, { deno: isDeno }) })}\n`)
    for (const [name, r] of Object.entries(resolved)) {
      const u = config.upstreams[name]!
      if (r.error) io.out(`# ${c.red('unresolved')} upstream ${name} (${u.host}): ${r.error}\n`)
      else io.out(`# ${c.green('resolved')}   upstream ${name} (${u.host}) -> ${r.addresses!.join(', ')} via ${r.source}${r.ttl_ms !== undefined ? `, TTL ${r.ttl_ms / 1000}s` : ''}\n`)
    }
  }
  // Said on stderr too: with stdout sent to a file (check > full.toml) exit 6 came without a word.
  for (const [name, r] of unresolved) {
    io.err(`error [E_UNRESOLVED] upstream ${name} (${config.upstreams[name]!.host}) did not resolve: ${r.error}; the config is valid, but serve would answer 503 for it until the name resolves; check the name and the resolvers, or give --no-resolve to check the config alone\n`)
  }
  for (const problem of listenProblems) io.err(`error [E_LISTEN] ${problem}\n`)
  if (listenProblems.length > 0) return ExitCode.START_FAILED
  return unresolved.length > 0 ? ExitCode.CHECK_UNRESOLVED : ExitCode.OK
}

/**
 * The listen addresses given as a name that the system resolver (what the runtime binds with)
 * does not resolve: serve would stop with E_LISTEN on them. Until the eighteenth round of
 * outside reviews check passed `--listen localhost.:8080` and `nonexistent.invalid:8080`.
 */
export async function unresolvedListenNames(config: ResolvedConfig, resolve: (host: string) => Promise<unknown> = lookup): Promise<string[]> {
  const at = (key: string) => config.fileKeys?.[key] ?? key
  // acme.http_listen only with acme.domains: without them nothing listens there (ineffective.ts warns).
  const acmeListen = config.acme.domains.length > 0 ? config.acme.httpListen : undefined
  const listeners: [string, HostPort | undefined][] = [['server.listen', config.server.listen], ['admin.listen', config.admin.listen], ['acme.http_listen', acmeListen], ['server.http_redirect_listen', config.server.httpRedirectListen]]
  const problems: string[] = []
  for (const [key, hp] of listeners) {
    if (hp === undefined || isIP(hp.host) !== 0) continue
    try {
      await resolve(hp.host)
    } catch (err) {
      problems.push(`${at(key)}: the host ${hp.host} does not resolve (${(err as { code?: string }).code ?? errorMessage(err)}), so serve could not listen on it; give an IP address (0.0.0.0, 127.0.0.1, [::]) or a name this machine resolves`)
    }
  }
  return problems
}

/**
 * The files the config names, read and checked as `serve` reads them; throws E_TLS_FILES (or
 * E_LOG_FILE) naming the key. Returns what serve would warn of them (a certificate expired or
 * near its end).
 */
function checkFiles(config: ResolvedConfig): string[] {
  const s = config.server
  const at = (key: string) => config.fileKeys?.[key] ?? key
  const warnings: string[] = []
  if (s.tlsCertFile && s.tlsKeyFile) {
    const problem = validityProblem(loadTlsPair(s.tlsCertFile, s.tlsKeyFile, { cert: at('server.tls_cert'), key: at('server.tls_key') }), s.tlsCertFile, at('server.tls_cert'))
    if (problem) warnings.push(problem)
  }
  for (const u of Object.values(config.upstreams)) if (u.caFile) readCaBundle(u.caFile, at(`upstream.${u.name}.ca_file`))
  // As serve: the ACME CA bundle only with acme.domains (without them it is warned of as of no effect, and not read).
  if (config.acme.caFile && config.acme.domains.length > 0) readCaBundle(config.acme.caFile, at('acme.ca_file'))
  checkConfigPaths(config)
  return warnings
}
