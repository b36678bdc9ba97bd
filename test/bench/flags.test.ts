/**
 * `proxy bench`'s URL and flag values that cannot work: each is a usage error (exit 2) that
 * names the flag or the URL and what to write instead, before anything is sent (a --samples file
 * that fails during the run: after the summary). Every address here is on loopback, so that a
 * check that let a value through ends at a refused connection.
 */
import { expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { bench } from './run-bench.ts'

test('a port outside 1-65535 in the URL, --resolve or --connect-to is a usage error naming it', async () => {
  const cases: [string[], string][] = [
    [['http://127.0.0.1:0/'], '"http://127.0.0.1:0/": port 0 is not a port to connect to; use 1 to 65535'],
    [['http://[::1]:0/x'], '"http://[::1]:0/x": port 0 is not a port to connect to'],
    [['http://127.0.0.1:65536/'], '"http://127.0.0.1:65536/": port 65536 is not a port to connect to'],
    [['127.0.0.1:70000'], '"127.0.0.1:70000": port 70000 is not a port to connect to'],
    [['http://127.0.0.1:1/', '--resolve', '127.0.0.1:0:127.0.0.1'], '--resolve "127.0.0.1:0:127.0.0.1": port 0 is not a port to connect to'],
    [['http://127.0.0.1:1/', '--connect-to', '127.0.0.1:1:127.0.0.1:99999'], '--connect-to "127.0.0.1:1:127.0.0.1:99999": port 99999 is not a port to connect to'],
    [['http://127.0.0.1:1/', '--connect-to', '127.0.0.1:1:127.0.0.1:0'], '--connect-to "127.0.0.1:1:127.0.0.1:0": port 0 is not a port to connect to'],
  ]
  for (const [argv, message] of cases) {
    const r = await bench([...argv, '--timeout', '2s'])
    expect({ argv, code: r.code, err: r.err.includes(message) }).toEqual({ argv, code: ExitCode.USAGE, err: true })
  }
})

test('ports 1 and 65535, leading zeros, and empty --connect-to ports are accepted', async () => {
  // Nothing listens on these loopback ports: each gets as far as a refused connection (exit 5).
  for (const argv of [['http://127.0.0.1:1/'], ['http://127.0.0.1:0001/'], ['http://127.0.0.1:1/', '--connect-to', '::127.0.0.1:'], ['http://127.0.0.1:1/', '--resolve', '127.0.0.1:65535:127.0.0.1']]) {
    const r = await bench([...argv, '--timeout', '2s', '--json'])
    expect({ argv, code: r.code, kinds: r.json?.errors_by_kind }).toEqual({ argv, code: ExitCode.BENCH_FAILED, kinds: { ECONNREFUSED: 1 } })
  }
})

test('-H Content-Length or Transfer-Encoding beside a request body is a usage error (the bench frames the body)', async () => {
  for (const [header, data] of [['Content-Length: 3', ['--data', 'hello']], ['content-length: 5', ['--data', 'hello']], ['Transfer-Encoding: chunked', ['--data-binary', 'hello']]] as const) {
    const r = await bench(['http://127.0.0.1:1/', '-H', header, ...data, '--timeout', '2s'])
    expect({ header, code: r.code }).toEqual({ header, code: ExitCode.USAGE })
    expect(r.err).toContain(`-H: "${header.split(':')[0]}" with a request body: bench sends the body with Content-Length: 5 itself; leave the -H out`)
  }
  // Without a body there is nothing of the bench's to clash with: sent as given.
  expect((await bench(['http://127.0.0.1:1/', '-X', 'POST', '-H', 'Content-Length: 0', '--timeout', '2s'])).code).toBe(ExitCode.BENCH_FAILED)
})

test.skipIf(!existsSync('/dev/full'))('--samples that cannot be written during the run (a full disk): the summary, then a usage error naming the file', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  try {
    const r = await bench([`http://127.0.0.1:${origin.port}/`, '-n', '3', '--samples', '/dev/full', '--json'])
    expect(r.json.requests).toBe(3)
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toContain('--samples: cannot write "/dev/full": ENOSPC')
  } finally {
    origin.stop(true)
  }
})

test('a flag given twice takes its last value, as serve and check do; -H, --resolve, --connect-to and --data keep each', async () => {
  // Before: "5s,6s" is not a duration; "3,4" is not a whole number (cac joins repeated values into a list).
  const r = await bench(['http://127.0.0.1:1/', '--timeout', '5s', '--timeout', '2s', '-n', '3', '-n', '2', '--json'])
  expect(r.code).toBe(ExitCode.BENCH_FAILED) // got as far as the refused connections
  expect(r.json?.errors_by_kind).toEqual({ ECONNREFUSED: 2 })
  // The last --cacert is the one read: the first names no file.
  const c = await bench(['https://127.0.0.1:1/', '--cacert', '/nonexistent/ca.pem', '--cacert', '/nonexistent/other.pem', '--timeout', '2s'])
  expect(c.code).toBe(ExitCode.USAGE)
  expect(c.err).toContain('--cacert: cannot read "/nonexistent/other.pem": ENOENT')
  // Repeatable ones keep every value: two --resolve rules, the second for another port, both accepted.
  const two = await bench(['http://a.test:1/', '--resolve', 'a.test:1:127.0.0.1', '--resolve', 'a.test:2:127.0.0.1', '--timeout', '2s', '--json'])
  expect(two.json?.errors_by_kind).toEqual({ ECONNREFUSED: 1 })
})
