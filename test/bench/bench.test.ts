/** `proxy bench` against servers on loopback started here. Timing bounds are generous; accuracy is scripts/bench-accuracy.ts. */
import { afterEach, describe, expect, spyOn, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../../src/cli.ts'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { memoryIo } from '../../src/lib/io.ts'
import { makeCerts } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { bench } from './run-bench.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())


function delayed(ms: number, hostname = '127.0.0.1') {
  return h.origin({
    hostname,
    async fetch() {
      await Bun.sleep(ms)
      return new Response('x'.repeat(1000))
    },
  })
}

test('WAIT reflects a known first-byte delay', async () => {
  const s = delayed(150)
  const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '3', '--json'])
  expect(r.code).toBe(ExitCode.OK)
  expect(r.json.phases.wait.p50).toBeGreaterThanOrEqual(140)
  expect(r.json.phases.wait.p50).toBeLessThan(1000)
  expect(r.json.phases.dns).toBeUndefined() // an IP literal: no lookup
})

test('one request is drawn as a waterfall', async () => {
  const s = delayed(20)
  const r = await bench([`http://localhost:${s.port}/`])
  expect(r.code).toBe(0)
  for (const label of ['DNS', 'CONNECT', 'WAIT', 'TRANSFER', 'total']) expect(r.out).toContain(label)
  expect(r.out).toContain('200, 1000 bytes')
})

test('the JSON schema: every contract field, cold and warm separately', async () => {
  const s = delayed(1)
  const r = await bench([`http://localhost:${s.port}/`, '-n', '20', '-c', '2', '--json'])
  const j = r.json
  expect(j.schema).toBe('proxy-bench/1')
  expect(j.requests).toBe(20)
  expect(j.errors).toBe(0)
  expect(j.status).toEqual({ '200': 20 })
  for (const phase of ['dns', 'connect', 'wait', 'transfer', 'total']) {
    for (const stat of ['n', 'min', 'mean', 'p50', 'p90', 'p99', 'max']) expect(typeof j.phases[phase][stat]).toBe('number')
  }
  expect(j.cold.requests).toBe(2)
  expect(j.warm.requests).toBe(18)
  expect(j.warm.phases.connect).toBeUndefined() // reused: absent, never zero
  expect(j.warm.phases.dns).toBeUndefined()
  expect(j.cold.phases.dns.n).toBe(2)
  expect(typeof j.rps).toBe('number')
})

describe('keep-alive', () => {
  test('reused by default: one cold request per connection', async () => {
    const s = delayed(1)
    const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '10', '--json'])
    expect([r.json.cold.requests, r.json.warm.requests]).toEqual([1, 9])
  })
  test('--no-keepalive: every request on a new connection', async () => {
    const s = delayed(1)
    const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '10', '--no-keepalive', '--json'])
    expect([r.json.cold.requests, r.json.warm.requests]).toEqual([10, 0])
    expect(r.json.cold.phases.connect.n).toBe(10)
  })
})

describe('TLS', () => {
  test('tls phase present with --cacert; TLS details recorded', async () => {
    const certs = makeCerts(['bench.test'], ['127.0.0.1'])
    const s = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('secure') } as never)
    const r = await bench([`https://bench.test:${s.port}/`, '--resolve', `bench.test:${s.port}:127.0.0.1`, '--cacert', certs.caFile, '-n', '2', '--json'])
    expect(r.code).toBe(0)
    expect(r.json.phases.tls.n).toBe(1)
    expect(r.json.connection.tls_version).toMatch(/^TLSv1\.[23]$/)
    expect(r.json.phases.dns).toBeUndefined() // --resolve pins the address
  })
  test('a wrong name fails without -k and works with it', async () => {
    const certs = makeCerts(['bench.test'], ['127.0.0.1'])
    const s = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('secure') } as never)
    const bad = await bench([`https://wrong.test:${s.port}/`, '--connect-to', `wrong.test:${s.port}:127.0.0.1:${s.port}`, '--cacert', certs.caFile, '--json'])
    expect(bad.code).toBe(ExitCode.BENCH_FAILED)
    expect(bad.err).toContain('E_BENCH')
    const ok = await bench([`https://wrong.test:${s.port}/`, '--connect-to', `wrong.test:${s.port}:127.0.0.1:${s.port}`, '-k', '--json'])
    expect(ok.code).toBe(0)
  })
  test('a certificate that does not verify: the error says what to do, in the waterfall and in the summary', async () => {
    const certs = makeCerts(['bench.test'], ['127.0.0.1'])
    const s = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('secure') } as never)
    const pin = ['--resolve', `bench.test:${s.port}:127.0.0.1`]
    // No --cacert: the test CA is not trusted.
    const one = await bench([`https://bench.test:${s.port}/`, ...pin])
    expect(one.code).toBe(ExitCode.BENCH_FAILED)
    expect(one.out).toContain('give its CA with --cacert FILE, or skip the check with -k')
    const many = await bench([`https://bench.test:${s.port}/`, ...pin, '-n', '3'])
    expect(many.err).toContain('; the first: ')
    expect(many.err).toContain('give its CA with --cacert FILE, or skip the check with -k')
    const name = await bench([`https://wrong.test:${s.port}/`, '--resolve', `wrong.test:${s.port}:127.0.0.1`, '--cacert', certs.caFile, '-n', '2'])
    expect(name.err).toContain('ERR_TLS_CERT_ALTNAME_INVALID')
    expect(name.err).toContain("the server's certificate is not for this name; use a name it holds in the URL")
  })
})

test('--connect-to and --resolve keep the Host header', async () => {
  let host = ''
  const s = h.origin({ fetch: (req) => ((host = req.headers.get('host')!), new Response('ok')) })
  await bench([`http://api.example:${s.port}/x`, '--resolve', `api.example:${s.port}:127.0.0.1`])
  expect(host).toBe(`api.example:${s.port}`)
  await bench([`http://other.example/x`, '--connect-to', `other.example:80:127.0.0.1:${s.port}`])
  expect(host).toBe('other.example')
})

test('as curl: --resolve gives the address of where --connect-to sends it, and the first matching --connect-to wins', async () => {
  const hosts: string[] = []
  const s = h.origin({ fetch: (req) => (hosts.push(req.headers.get('host')!), new Response('ok')) })
  const url = `http://a.test:${s.port}/`
  // Nothing listens on 127.0.0.2: a request that went there is refused.
  const viaName = await bench([url, '--connect-to', `a.test:${s.port}:localhost:${s.port}`, '--resolve', `localhost:${s.port}:127.0.0.1`, '--resolve', `a.test:${s.port}:127.0.0.2`, '--json'])
  expect({ status: viaName.json.status, address: viaName.json.connection.remote_address }).toEqual({ status: { '200': 1 }, address: '127.0.0.1' })
  const first = await bench([url, '--connect-to', `a.test:${s.port}:127.0.0.1:${s.port}`, '--connect-to', `a.test:${s.port}:127.0.0.2:${s.port}`, '--json'])
  expect(first.json.status).toEqual({ '200': 1 })
  expect(hosts).toEqual([`a.test:${s.port}`, `a.test:${s.port}`])
})

test('--vs names the faster side and its CI excludes 1', async () => {
  const slow = delayed(60)
  const fast = delayed(5)
  const r = await bench([`http://127.0.0.1:${slow.port}/`, '--vs', `http://127.0.0.1:${fast.port}/`, '-n', '30', '-c', '2', '--json'])
  expect(r.code).toBe(0)
  expect(r.json.a.requests).toBe(30)
  expect(r.json.b.requests).toBe(30)
  const total = r.json.comparison.phases.total
  expect(total.ratio).toBeGreaterThan(1)
  expect(total.ci95[0]).toBeGreaterThan(1)
  expect(r.json.comparison.verdict).toMatch(/^B is [\d.]+× faster/)
  const text = await bench([`http://127.0.0.1:${fast.port}/`, '--vs', `http://127.0.0.1:${slow.port}/`, '-n', '20'])
  expect(text.out).toMatch(/B is [\d.]+× slower/)
})

describe('--slo exit codes', () => {
  test('met: 0; broken: 4; malformed: 2', async () => {
    const s = delayed(30)
    expect((await bench([`http://127.0.0.1:${s.port}/`, '-n', '3', '--slo', 'p99.total<5s'])).code).toBe(ExitCode.OK)
    const broken = await bench([`http://127.0.0.1:${s.port}/`, '-n', '3', '--slo', 'p50.wait<1ms'])
    expect(broken.code).toBe(ExitCode.SLO_BROKEN)
    expect(broken.out).toContain('FAIL p50.wait<1ms')
    expect((await bench([`http://127.0.0.1:${s.port}/`, '--slo', 'p50.wait<quick'])).code).toBe(ExitCode.USAGE)
  })

  test('--slo given twice keeps both objectives: a broken first one still exits 4 (the review caught the last-value rule dropping it)', async () => {
    const s = delayed(30)
    const both = await bench([`http://127.0.0.1:${s.port}/`, '-n', '3', '--slo', 'p50.wait<1ms', '--slo', 'p99.total<5s'])
    expect(both.code).toBe(ExitCode.SLO_BROKEN)
    expect(both.out).toContain('FAIL p50.wait<1ms')
    expect(both.out).toContain('p99.total<5s')
  })
})

test('errors are counted by kind; all failing exits 5', async () => {
  const dead = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
  const port = dead.port
  dead.stop(true)
  const r = await bench([`http://127.0.0.1:${port}/`, '-n', '3', '--json'])
  expect(r.code).toBe(ExitCode.BENCH_FAILED)
  expect(r.json.errors).toBe(3)
  expect(r.json.errors_by_kind.ECONNREFUSED).toBe(3)
})

test('a refused IPv6 address is named [::1]:PORT in the report, not ::1:PORT', async () => {
  const dead = Bun.serve({ hostname: '::1', port: 0, fetch: () => new Response('') })
  const port = dead.port
  dead.stop(true)
  const r = await bench([`http://[::1]:${port}/`])
  expect(r.code).toBe(ExitCode.BENCH_FAILED)
  expect(r.out).toContain(`ECONNREFUSED connect ECONNREFUSED [::1]:${port}`)
})

test('--rate measures from the intended send time; --samples writes one line per request; -d runs for a duration', async () => {
  const s = delayed(2)
  const dir = testDir('proxy-bench-')
  const file = join(dir, 'samples.ndjson')
  const r = await bench([`http://127.0.0.1:${s.port}/`, '--rate', '50', '-d', '1s', '-c', '4', '--samples', file, '--json'])
  expect(r.code).toBe(0)
  expect(r.json.requests).toBeGreaterThan(20)
  expect(r.json.requests).toBeLessThanOrEqual(51)
  expect(r.json.corrected_total.n).toBe(r.json.requests)
  expect(r.json.corrected_total.p50).toBeGreaterThanOrEqual(r.json.phases.total.p50 - 1e-6)
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  expect(lines).toHaveLength(r.json.requests)
  expect(lines[0]).toHaveProperty('phases')
})

test('--explain prints the glossary; a body with --data; bad flags are usage errors', async () => {
  const ex = await bench(['--explain'])
  expect(ex.out).toContain('time_namelookup')
  expect(ex.out).toContain('http_req_waiting')
  expect(ex.out).toMatch(/TLS 1\.2, full handshake\s+2 RTT/)
  expect(ex.out).toMatch(/TLS 1\.3, resumed \(PSK\)\s+1 RTT/)
  for (const kind of ['cold', 'resumed', 'warm']) expect(ex.out).toMatch(new RegExp(`^  ${kind}\\s`, 'm'))
  let body = ''
  const s = h.origin({ fetch: async (req) => ((body = `${req.method} ${await req.text()}`), new Response('ok')) })
  expect((await bench([`http://127.0.0.1:${s.port}/`, '--data', 'a=1'])).code).toBe(0)
  expect(body).toBe('POST a=1')
  expect((await bench([`http://127.0.0.1:${s.port}/`, '-d', 'a=1'])).code).toBe(ExitCode.USAGE)
  expect((await bench(['ftp://x/'])).code).toBe(ExitCode.USAGE)
  expect((await bench([])).code).toBe(ExitCode.USAGE)
})

describe('rough edges (issue 19, item 6)', () => {
  test('--help: -c states its defaults (also with --rate); no "(default: true)" on --no-… flags', async () => {
    // cac prints help with console.info.
    const printed: string[] = []
    const spy = spyOn(console, 'info').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')))
    try {
      await runCli(['bench', '--help'], memoryIo())
    } finally {
      spy.mockRestore()
    }
    const help = printed.join('\n')
    expect(help).toMatch(/-c, --concurrency <n>.*Default: 1; with --rate: 64/)
    expect(help).toContain('--no-keepalive')
    expect(help).toContain('--no-tls-resume')
    expect(help).not.toContain('(default: true)')
  })

  test('--rate without -c uses the documented default, reported in the JSON', async () => {
    const s = delayed(1)
    const r = await bench([`http://127.0.0.1:${s.port}/`, '--rate', '40', '-n', '4', '--json'])
    expect(r.json.concurrency).toBe(64)
    const withC = await bench([`http://127.0.0.1:${s.port}/`, '--rate', '40', '-n', '4', '-c', '2', '--json'])
    expect(withC.json.concurrency).toBe(2)
  })

  test('--no-keepalive: the warm section says there was no reuse; with keep-alive and no reuse it says none was reused', async () => {
    const s = delayed(1)
    const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '3', '--no-keepalive'])
    expect(r.out).toContain('(none: no reuse with --no-keepalive)')
    expect(r.out).not.toContain('no successful request')
    const one = await bench([`http://127.0.0.1:${s.port}/`, '-n', '2', '-c', '2'])
    expect(one.out).toContain('(none: no connection was reused)')
  })

  test('--vs with one sample per side: "n too small", and no interval is printed', async () => {
    const a = delayed(1)
    const b = delayed(1)
    const r = await bench([`http://127.0.0.1:${a.port}/`, '--vs', `http://127.0.0.1:${b.port}/`, '-n', '1'])
    expect(r.out).toContain('n too small')
    expect(r.out).not.toMatch(/\(\d+\.\d+–\d+\.\d+\)/)
    const j = await bench([`http://127.0.0.1:${a.port}/`, '--vs', `http://127.0.0.1:${b.port}/`, '-n', '1', '--json'])
    expect(j.json.comparison.outcome).toBe('n_too_small')
    expect(j.json.comparison.phases.total.ci95).toBeUndefined()
  })

  test('the one-request waterfall: its rows (with SEND) add up to the total', async () => {
    const certs = makeCerts(['bench.test'], ['127.0.0.1'])
    const s = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('x'.repeat(5000)) } as never)
    const r = await bench([`https://bench.test:${s.port}/`, '--resolve', `bench.test:${s.port}:127.0.0.1`, '--cacert', certs.caFile])
    const row = (label: string) => Number(new RegExp(`^  ${label}\\s.*?([\\d.]+) ms`, 'm').exec(r.out)?.[1])
    const parts = ['CONNECT', 'TLS', 'SEND', 'WAIT', 'TRANSFER'].map(row)
    for (const v of parts) expect(Number.isFinite(v)).toBe(true)
    const total = row('total')
    expect(Math.abs(parts.reduce((x, y) => x + y, 0) - total)).toBeLessThan(0.006)
    expect(r.out).toMatch(/^  DNS\s+-$/m) // --resolve: no lookup, shown as absent
  })
})

describe('sparklines', () => {
  test('drawn per phase with colour and a wide terminal; not otherwise', async () => {
    const s = delayed(1)
    const url = `http://127.0.0.1:${s.port}/`
    const io = memoryIo({ FORCE_COLOR: '1', COLUMNS: '120' })
    await runCli(['bench', url, '-n', '20'], io)
    expect(io.stdout).toContain('distributions')
    expect(io.stdout).toMatch(/WAIT.*[▁▂▃▄▅▆▇█]/)
    const narrow = memoryIo({ FORCE_COLOR: '1', COLUMNS: '60' })
    await runCli(['bench', url, '-n', '20'], narrow)
    expect(narrow.stdout).not.toContain('distributions')
    const plain = memoryIo({ NO_COLOR: '1', COLUMNS: '120' })
    await runCli(['bench', url, '-n', '20'], plain)
    expect(plain.stdout).not.toContain('distributions')
  })
})

describe('what bench sends and counts', () => {
  test('flag values are sent as written: a body of digits keeps its zeros', async () => {
    const bodies: string[] = []
    const s = h.origin({
      async fetch(req) {
        bodies.push(await req.text())
        return new Response('ok')
      },
    })
    for (const body of ['0123', '1e3', '0x10']) expect((await bench([`http://127.0.0.1:${s.port}/`, '--data', body, '-n', '1', '--json'])).code).toBe(ExitCode.OK)
    expect((await bench([`http://127.0.0.1:${s.port}/`, '--data-binary', '007', '-n', '1', '--json'])).code).toBe(ExitCode.OK)
    expect(bodies).toEqual(['0123', '1e3', '0x10', '007'])
  })

  test('5xx answers are errors: their timings stay out, they are counted by status, and --vs names them', async () => {
    const bad = h.origin({ fetch: () => new Response('down', { status: 502 }) })
    const good = delayed(5)
    const r = await bench([`http://127.0.0.1:${bad.port}/`, '-n', '4', '--json'])
    expect(r.json.status).toEqual({ '502': 4 })
    expect(r.json.errors).toBe(4)
    expect(r.json.errors_by_kind).toEqual({ HTTP_502: 4 })
    expect(r.json.phases.total).toBeUndefined()
    expect(r.code).toBe(ExitCode.BENCH_FAILED)
    const vs = await bench([`http://127.0.0.1:${good.port}/`, '--vs', `http://127.0.0.1:${bad.port}/`, '-n', '6'])
    expect(vs.out).toContain('6 errors: HTTP_502 6')
    expect(vs.out).not.toContain('faster')
  })

  test('-d with --rate ends at the duration, not after every loop has slept to its turn', async () => {
    const s = delayed(1)
    // 64 loops (the default with --rate) at 10/s would have slept to 6.3 s.
    const r = await bench([`http://127.0.0.1:${s.port}/`, '-d', '300ms', '--rate', '10', '--json'])
    expect(r.code).toBe(ExitCode.OK)
    expect(r.json.requests).toBeGreaterThanOrEqual(2)
    expect(r.json.requests).toBeLessThanOrEqual(3)
    expect(r.json.duration_ms).toBeLessThan(2000)
  })

  test('Ctrl-C (SIGINT) ends a run with the summary of what finished, exit 130; the requests counted reached the origin', async () => {
    let served = 0
    const s = h.origin({
      fetch: () => {
        served++
        return new Response('ok')
      },
    })
    const p = Bun.spawn(['bun', join(import.meta.dir, '../../src/main.ts'), 'bench', `http://127.0.0.1:${s.port}/`, '-d', '60s', '-c', '2', '--json'], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    for (let i = 0; i < 200 && served < 20; i++) await Bun.sleep(25)
    const sentAt = performance.now()
    p.kill('SIGINT')
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
    expect(code).toBe(ExitCode.INTERRUPTED)
    expect(performance.now() - sentAt).toBeLessThan(20_000) // not the 60 s asked for
    expect(err).toContain('interrupted')
    const doc = JSON.parse(out)
    expect(doc.interrupted).toBe(true)
    expect(doc.requests).toBeGreaterThanOrEqual(20)
    expect(doc.errors).toBe(0)
    expect(doc.requests).toBeLessThanOrEqual(served)
  })

  test.each([
    ['-d 0', ['-d', '0'], '-d/--duration'],
    ['--timeout 0', ['--timeout', '0s'], '--timeout'],
    ['an empty method', ['-X', ''], '-X/--method'],
    ['a method with a space', ['-X', 'GE T'], '-X/--method'],
    ['a field name with a space', ['-H', 'Bad Name: x'], '-H'],
    ['a value with CR LF', ['-H', 'X: a\r\nX-Evil: 1'], 'control character'],
    ['a value with another control byte', ['-H', 'X: a\x01b'], 'control character'],
    // A flag whose next argument is another flag has no value (as cac reads it): not "--vs" as a file name.
    ['--html followed by another flag', ['--html', '--json'], 'value is missing'],
    ['--samples where nothing can be written', ['--samples', '/nonexistent/dir/x.ndjson'], '--samples: cannot write'],
    ['--html where nothing can be written', ['--html', '/nonexistent/dir/r.html'], '--html: cannot write'],
  ])('%s is a usage error before anything is sent', async (_, flags, message) => {
    let hits = 0
    const s = h.origin({
      fetch() {
        hits++
        return new Response('ok')
      },
    })
    const r = await bench([`http://127.0.0.1:${s.port}/`, '-n', '2', ...flags])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toContain(message)
    expect(hits).toBe(0)
  })

  test.each([
    ['-n in hex', ['-n', '0x10'], '"0x10" is not a whole number of 1 or more (decimal digits)'],
    ['-n in exponent form', ['-n', '1e3'], '(decimal digits)'],
    ['-c with a space', ['-c', ' 5'], '-c/--concurrency'],
    ['-n past 2^53-1', ['-n', '99999999999999999999'], 'larger than 2^53-1'],
    ['--timeout without a unit', ['--timeout', '300'], '"300" has no unit; write e.g. "300s" or "300ms"'],
    ['--timeout past a timer', ['--timeout', '30d'], 'longer than a timer can wait (24.8 days)'],
    ['-d without a unit', ['-d', '5'], '"5" has no unit; write e.g. "5s" or "5ms"; for a request body use --data'],
    ['-n and -d together', ['-n', '3', '-d', '2s'], '-n/--requests and -d/--duration both given'],
  ])('%s is a usage error before anything is sent (outside sweep, twentieth session)', async (_, flags, message) => {
    let hits = 0
    const s = h.origin({
      fetch() {
        hits++
        return new Response('ok')
      },
    })
    const r = await bench([`http://127.0.0.1:${s.port}/`, ...flags])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toContain(message)
    expect(hits).toBe(0)
  })

  test('out of file descriptors is the bench\'s own limit, counted as EMFILE, not as the server refusing (outside sweep, twentieth session)', async () => {
    const s = h.origin({ fetch: () => new Response('ok') })
    // A descriptor limit the 100 connections cannot fit in (the runtime itself takes some 20).
    const p = Bun.spawn(['sh', '-c', `ulimit -n 60 && exec bun ${join(import.meta.dir, '../../src/main.ts')} bench http://127.0.0.1:${s.port}/ -c 100 -n 100 --json`], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited])
    expect(code).toBe(ExitCode.OK)
    const doc = JSON.parse(out)
    expect(doc.errors).toBeGreaterThan(0)
    // Before: counted as ECONNREFUSED, as if the server had refused.
    expect(doc.errors_by_kind).toEqual({ EMFILE: doc.errors })
  })

  test('a body cut by the server\'s FIN is CLOSED_EARLY with the bytes remaining, as curl says it, not ECONNRESET (outside sweep, twentieth session)', async () => {
    const origin = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: (sock) => void (sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789'), sock.end()) } })
    h.track(() => origin.stop(true))
    const r = await bench([`http://127.0.0.1:${origin.port}/`, '-n', '2', '--json'])
    expect(r.json.errors_by_kind).toEqual({ CLOSED_EARLY: 2 })
    expect(r.err).toContain('the server closed the connection with 990 of 1000 body bytes remaining')
  })

  test('credentials in the URL and a --cacert that is not PEM are usage errors', async () => {
    expect((await bench(['http://user:pw@127.0.0.1:1/'])).err).toContain('credentials in the URL are not sent')
    const dir = testDir('bench-ca-')
    const notPem = join(dir, 'ca.txt')
    await Bun.write(notPem, 'not a certificate\n')
    const r = await bench(['https://127.0.0.1:1/', '--cacert', notPem])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toContain('holds no PEM certificate')
  })
})
