/**
 * The command-line I/O boundary: commands write through a `CliIo` instead of touching
 * process.stdout, so tests can run `runCli(argv, io)` and read what was printed.
 */
export interface CliIo {
  /** Writes text to stdout as given (add your own newline). */
  out(text: string): void
  /** Writes text to stderr as given (add your own newline). */
  err(text: string): void
  env: Record<string, string | undefined>
  stdoutIsTTY: boolean
  stderrIsTTY: boolean
  /** Working directory for relative paths in flags. */
  cwd: string
  /** The system resolver's lookup of a host name, as serve binds with (node:dns lookup when not given; tests give their own). */
  lookupHost?: (host: string) => Promise<unknown>
}

/**
 * The key of a command's options under which the CLI leaves every flag value as [option name,
 * value] in the order written (cac keeps each flag's values apart): bench joins its --data and
 * --data-binary pieces in that order, as curl does. A symbol: cac takes any string key for an
 * unknown flag.
 */
export const VALUES_IN_ORDER: unique symbol = Symbol('valuesInOrder')

export function processIo(): CliIo {
  // A reader that went away (`proxy check | head -1`) is no error of ours: what is left is
  // dropped, as other command-line tools do, not reported with a stack trace.
  const onWriteError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  }
  process.stdout.on('error', onWriteError)
  process.stderr.on('error', onWriteError)
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    env: process.env,
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    cwd: process.cwd(),
  }
}

/** An in-memory CliIo for tests. */
export function memoryIo(env: Record<string, string | undefined> = {}): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(text: string) {
      io.stdout += text
    },
    err(text: string) {
      io.stderr += text
    },
    env,
    stdoutIsTTY: false,
    stderrIsTTY: false,
    cwd: process.cwd(),
  }
  return io
}
