/** Runs `proxy bench` in-process through the CLI, as the bench tests do: exit code, output, and the --json document when there is one. */
import { runCli } from '../../src/cli.ts'
import { memoryIo } from '../../src/lib/io.ts'

export interface BenchRun {
  code: number
  out: string
  err: string
  // The --json document, read loosely by the tests.
  json: any
}

export async function bench(argv: string[]): Promise<BenchRun> {
  const io = memoryIo()
  const code = await runCli(['bench', ...argv], io)
  let json: BenchRun['json']
  try {
    json = JSON.parse(io.stdout)
  } catch {
    json = undefined
  }
  return { code, out: io.stdout, err: io.stderr, json }
}
