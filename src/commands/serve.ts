/**
 * `proxy serve`: resolves the config once, wires resolver, pools, listener, access log and
 * signals together, and returns an exit code after a graceful drain.
 */
import type { CAC } from 'cac'
import { loadConfigFile } from '../config/load.ts'
import { resolveConfig } from '../config/resolve.ts'
import type { ResolvedConfig } from '../config/schema.ts'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { createLogger } from '../lib/logger.ts'
import { createAccessLog } from '../proxy/access-log.ts'
import { AdminServer } from '../proxy/admin.ts'
import { RequestMetrics } from '../proxy/metrics.ts'
import { ProxyServer } from '../proxy/server.ts'
import { sourceForUpstream } from '../proxy/sources.ts'
import { addConfigFlags, flagLayer } from './flags.ts'

export function registerServe(cli: CAC, io: CliIo): void {
  addConfigFlags(cli.command('serve', 'Run the reverse proxy in front of an upstream')).example('proxy serve --upstream https://origin.example.com --listen 0.0.0.0:8080').action((opts: Record<string, unknown>) => serveCommand(opts, io))
}

export function configFromOptions(opts: Record<string, unknown>): ResolvedConfig {
  const file = typeof opts.config === 'string' ? loadConfigFile(opts.config) : undefined
  return resolveConfig(file, flagLayer(opts))
}

export async function serveCommand(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  const config = configFromOptions(opts)
  const log = createLogger(io.err, io.env.DEBUG === '1' ? 'debug' : 'info')
  const accessLog = createAccessLog(config.log, log, io.out)
  const metrics = new RequestMetrics()
  const proxy = new ProxyServer(config, {
    sourceFor: (u) => sourceForUpstream(u, log),
    hooks: {
      onRecord: (r) => {
        metrics.observe(r)
        accessLog.write(r)
      },
    },
    log,
  }).start()
  let admin: AdminServer
  try {
    admin = new AdminServer(config.admin, { proxy: () => proxy, metrics, startedAt: Date.now() }).start()
  } catch (err) {
    proxy.close()
    throw err
  }
  log('info', 'proxy listening', { url: proxy.url, admin: admin.url ?? 'off', upstreams: Object.values(config.upstreams).map((u) => u.url).join(',') })

  const signal = await new Promise<string>((resolve) => {
    const onSignal = (sig: string) => () => resolve(sig)
    process.once('SIGTERM', onSignal('SIGTERM'))
    process.once('SIGINT', onSignal('SIGINT'))
  })
  log('info', 'draining', { signal, drain_timeout_ms: config.server.drainTimeoutMs })
  await proxy.drain(config.server.drainTimeoutMs)
  await admin.close()
  await accessLog.close()
  log('info', 'stopped')
  return ExitCode.OK
}
