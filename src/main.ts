#!/usr/bin/env bun
/** Entry point: runs the CLI and is the only place that calls process.exit. */
import { runCli } from './cli.ts'
import { processIo } from './lib/io.ts'

const code = await runCli(process.argv.slice(2), processIo())
// What was written to a pipe may still be queued (a pipe takes 64 KiB at a time), and
// process.exit drops it: `proxy check | less` got the first 64 KiB of a large config. Bun's
// streams report nothing queued (writableLength 0, and a write's callback runs before the bytes
// are out), but end() finishes once they are. At most 5 s: a reader that never reads (or went
// away) does not hold the exit.
const flushed = (s: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => {
    if (s.destroyed || s.errored) return resolve() // the reader left (EPIPE, lib/io.ts): nothing more goes out
    s.once('finish', resolve)
    s.once('error', () => resolve())
    s.end()
  })
let giveUp: ReturnType<typeof setTimeout> | undefined
await Promise.race([Promise.all([flushed(process.stdout), flushed(process.stderr)]), new Promise<void>((resolve) => (giveUp = setTimeout(resolve, 5000)))])
clearTimeout(giveUp)
process.exit(code)
