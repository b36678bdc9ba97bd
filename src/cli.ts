/**
 * cac wiring only: each command module registers its flags and returns an exit code. This file
 * owns the single error boundary that turns a thrown error into one clear line and an exit code.
 */
import { cac, type CAC } from 'cac'
import { ProxyError, errorMessage } from './lib/errors.ts'
import { ExitCode } from './lib/exit-codes.ts'
import { VALUES_IN_ORDER, type CliIo } from './lib/io.ts'
import { colorsFor } from './lib/colors.ts'
import { closest } from './lib/suggest.ts'
import { VERSION_TEXT, VERSION } from './version.ts'
import { registerServe } from './commands/serve.ts'
import { registerCheck } from './commands/check.ts'
import { registerBench } from './commands/bench.ts'
import { registerDemo } from './commands/demo.ts'

/** A command registers itself on the CLI; its action resolves to an exit code. */
export type RegisterCommand = (cli: CAC, io: CliIo) => void

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const cli = cac('proxy')
  for (const register of [registerDemo, registerServe, registerCheck, registerBench]) register(cli, io)
  cli.help()
  cli.version(VERSION)
  const c = colorsFor(io.stderrIsTTY, io.env)
  try {
    // -V too: curl's and nginx's spelling of it.
    if (argv.includes('--version') || argv.includes('-v') || argv.includes('-V')) {
      io.out(`${VERSION_TEXT}\n`)
      return ExitCode.OK
    }
    cli.parse(['proxy', 'proxy', ...argv], { run: false })
    valuesAsWritten(argv, cli)
    if (cli.options.help) return ExitCode.OK
    if (!cli.matchedCommand) {
      if (cli.args.length > 0) {
        const near = closest(String(cli.args[0]), cli.commands.map((cmd) => cmd.name).filter(Boolean))
        throw new ProxyError('E_USAGE', `unknown command "${cli.args[0]}"${near ? `; did you mean "${near}"?` : ''} (run "proxy --help" for the list)`)
      }
      // Flags and no command ("proxy -t", as nginx -t is typed): named, not the whole help without a word.
      const flag = argv.find((a) => a.startsWith('-') && a !== '-' && a !== '--')
      if (flag !== undefined) throw new ProxyError('E_USAGE', `${flag} needs a command before it: proxy serve, bench, check or demo (nginx -t is proxy check); run "proxy --help" for the list`)
      cli.outputHelp()
      return ExitCode.USAGE
    }
    const code = await cli.runMatchedCommand()
    return typeof code === 'number' ? code : ExitCode.OK
  } catch (err) {
    if (io.env.DEBUG === '1' && err instanceof Error) io.err(`${err.stack}\n`)
    if (err instanceof ProxyError) {
      io.err(`${c.red('error')} ${c.dim(`[${err.code}]`)} ${err.message}\n`)
      return exitCodeFor(err)
    }
    // cac throws plain CACError for unknown options or missing values: a usage error.
    if (err instanceof Error && err.name === 'CACError') {
      const message = (/^Unknown option/.test(err.message) && unknownFlagMessage(argv, cli)) || `${err.message}; run "proxy --help"`
      io.err(`${c.red('error')} ${c.dim('[E_USAGE]')} ${message}\n`)
      return ExitCode.USAGE
    }
    io.err(`${c.red('error')} ${c.dim('[E_INTERNAL]')} ${errorMessage(err)}${io.env.DEBUG === '1' ? '' : ' (set DEBUG=1 for a stack trace)'}\n`)
    return ExitCode.INTERNAL
  }
}

/**
 * The first flag in argv that the matched command does not know, as written (cac's own message
 * names it camelCased, "--connectTimout"), with the nearest known flag as a suggestion, the way
 * a mistyped config key gets one.
 */
/** The flags a cac option declares: "-n, --requests <count>" is -n and --requests. */
function flagNames(rawName: string): string[] {
  return rawName.split(',').map((part) => part.trim().split(/[ <[]/)[0]!)
}

function unknownFlagMessage(argv: readonly string[], cli: CAC): string | undefined {
  const command = cli.matchedCommand
  const known = new Set<string>()
  const valued = new Set<string>()
  const declared: string[] = []
  for (const option of [...cli.globalCommand.options, ...(command?.options ?? [])]) {
    for (const name of flagNames(option.rawName)) {
      known.add(name)
      declared.push(name)
      if (!option.isBoolean) valued.add(name)
      // cac accepts both --x and --no-x for a flag declared either way.
      if (name.startsWith('--no-')) known.add(`--${name.slice(5)}`)
      else if (name.startsWith('--')) known.add(`--no-${name.slice(2)}`)
    }
  }
  const endOfFlags = argv.indexOf('--')
  const args = endOfFlags < 0 ? argv : argv.slice(0, endOfFlags)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith('-') || arg === '-') continue
    const flag = arg.split('=')[0]!
    if (known.has(flag)) continue
    const help = `run "proxy ${command?.name ? `${command.name} ` : ''}--help" for the list`
    // "-n -1", "--data -1", "-H -x": mri reads a value that starts with "-" as flags of its own
    // ("-1", "-x"), which the flag before it was waiting for; "--data=-1" is read as its value.
    const before = args[i - 1]
    if (/^-[^-]/.test(arg) && before !== undefined && valued.has(before)) return `${before} ${arg}: a value starting with "-" is read as a flag; write it as ${before}=${arg} (${help})`
    // A mistyped "--no-…" is matched against the declared ones ("--no-resolv": --no-resolve), then the rest.
    // A flag of another command ("check --workers 2"): said so, not "unknown".
    const owners = cli.commands.filter((c) => c !== command && c.name && c.options.some((o) => flagNames(o.rawName).includes(flag))).map((c) => `proxy ${c.name}`)
    if (owners.length > 0) return `${flag} is a flag of ${owners.join(' and ')}, not of proxy ${command?.name ?? ''} (${help})`
    const negated = flag.startsWith('--no-') ? closest(flag, declared.filter((k) => k.startsWith('--no-'))) : undefined
    const near = negated ?? closest(flag, [...known].filter((k) => k.startsWith('--') && !k.startsWith('--no-')))
    return `unknown flag ${flag}${near ? `; did you mean ${near}?` : ''} (${help})`
  }
  return undefined
}

/**
 * cac (through mri) turns a flag's value that looks like a number into one: "--data 0123" was
 * sent as "123", "--data-binary 007" as "7", "--admin-token 00042" became 42, "-X ''" the method
 * 0. The values of the flags that take one are read again from argv as they were written; the
 * commands convert the ones they want as numbers themselves.
 */
function valuesAsWritten(argv: readonly string[], cli: CAC): void {
  type Opt = (typeof cli.globalCommand.options)[number]
  const byFlag = new Map<string, Opt>()
  for (const o of [...cli.globalCommand.options, ...(cli.matchedCommand?.options ?? [])]) {
    if (o.isBoolean) continue
    for (const name of flagNames(o.rawName)) byFlag.set(name, o)
  }
  const endOfFlags = argv.indexOf('--')
  const args = endOfFlags < 0 ? argv : argv.slice(0, endOfFlags)
  const written = new Map<Opt, string[]>()
  // Every value with its option's name, in the order written: for flags whose values build one
  // thing together (bench's --data and --data-binary pieces), which cac keeps apart.
  const inOrder: [string, string][] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    // "--name=value", "-X=value", or the flag alone with its value next, as mri reads them: a
    // next argument that starts with "-" is not a value (mri leaves the flag without one, and
    // cac then says so), and "--name=" takes the next argument.
    const eq = arg.startsWith('-') ? arg.indexOf('=') : -1
    const o = byFlag.get(eq > 0 ? arg.slice(0, eq) : arg)
    if (o === undefined) continue
    let value: string | undefined
    if (eq > 0 && eq + 1 < arg.length) value = arg.slice(eq + 1)
    else if (i + 1 < args.length && !args[i + 1]!.startsWith('-')) value = args[++i]
    if (value === undefined) continue
    written.set(o, [...(written.get(o) ?? []), value])
    inOrder.push([o.name, value])
  }
  for (const [o, values] of written) for (const name of o.names) cli.options[name] = values.length === 1 ? values[0] : values
  Object.assign(cli.options, { [VALUES_IN_ORDER]: inOrder })
}

function exitCodeFor(err: ProxyError): number {
  switch (err.code) {
    case 'E_USAGE':
    case 'E_CONFIG':
      return ExitCode.USAGE
    case 'E_LISTEN':
    case 'E_TLS_FILES':
    case 'E_LOG_FILE':
      return ExitCode.START_FAILED
    case 'E_SLO':
      return ExitCode.SLO_BROKEN
    case 'E_BENCH':
      return ExitCode.BENCH_FAILED
    default:
      return ExitCode.INTERNAL
  }
}
