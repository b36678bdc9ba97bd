/**
 * Named process exit codes, documented in the README. Only main.ts calls process.exit;
 * everything else returns one of these.
 */
export const ExitCode = {
  OK: 0,
  /** Unexpected failure: a bug, or an error we did not classify. */
  INTERNAL: 1,
  /** Bad command line or bad config (EX_USAGE / EX_CONFIG style, kept to one code). */
  USAGE: 2,
  /** Could not start: the listen address is taken, TLS files are unreadable, or the access log file cannot be opened. */
  START_FAILED: 3,
  /** bench: a --slo objective was broken. */
  SLO_BROKEN: 4,
  /** bench: no request succeeded (every sample was an error). */
  BENCH_FAILED: 5,
  /** check: the config is valid but an upstream did not resolve. */
  CHECK_UNRESOLVED: 6,
  /** demo: the proxy was not faster, or a request failed during the address rotation. */
  DEMO_FAILED: 7,
  /** bench: stopped by Ctrl-C (SIGINT); the summary of what finished was printed (128 + SIGINT). */
  INTERRUPTED: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
