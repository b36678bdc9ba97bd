#!/usr/bin/env bun
/** Entry point: runs the CLI and is the only place that calls process.exit. */
import { runCli } from './cli.ts'
import { processIo } from './lib/io.ts'

const code = await runCli(process.argv.slice(2), processIo())
process.exit(code)
