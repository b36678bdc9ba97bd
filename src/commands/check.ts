/**
 * `proxy check`: validates the config (file and flags) and prints the resolved configuration,
 * so an operator sees every default that applies. Exit 0 when valid, 2 when not.
 */
import type { CAC } from 'cac'
import { ExitCode } from '../lib/exit-codes.ts'
import type { CliIo } from '../lib/io.ts'
import { colorsFor } from '../lib/colors.ts'
import { addConfigFlags } from './flags.ts'
import { configFromOptions } from './serve.ts'

export function registerCheck(cli: CAC, io: CliIo): void {
  addConfigFlags(cli.command('check', 'Validate the config and print the resolved configuration'))
    .option('--json', 'Print the resolved configuration as JSON')
    .action((opts: Record<string, unknown>) => checkCommand(opts, io))
}

export async function checkCommand(opts: Record<string, unknown>, io: CliIo): Promise<number> {
  const config = configFromOptions(opts)
  if (opts.json) {
    io.out(`${JSON.stringify(config, null, 2)}\n`)
    return ExitCode.OK
  }
  const c = colorsFor(io.stdoutIsTTY, io.env)
  io.out(`${c.green('config ok')}${config.file ? ` (${config.file})` : ''}\n`)
  io.out(`${JSON.stringify(config, null, 2)}\n`)
  return ExitCode.OK
}
