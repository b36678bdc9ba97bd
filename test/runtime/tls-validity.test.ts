/**
 * The served certificate's dates (runtime/tls-files.ts validityProblem): an expired one, one not
 * yet valid and one near its end are warned of, with what to do, at start and at each reload and
 * by `proxy check`; the listener serves it all the same (as nginx does). The admin says how many
 * days are left (/metrics proxy_tls_certificate_days_left, /status tls_certificate), for alerts.
 * Until the twenty-second session an expired certificate started without a word.
 */
import { afterEach, expect, test } from 'bun:test'
import { runCli } from '../../src/cli.ts'
import { ExitCode } from '../../src/lib/exit-codes.ts'
import { memoryIo } from '../../src/lib/io.ts'
import { AdminServer } from '../../src/proxy/observe/admin.ts'
import { RequestMetrics } from '../../src/proxy/observe/metrics.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { loadTlsPair, validityProblem } from '../../src/runtime/tls-files.ts'
import { makeCerts, makeDatedCert } from '../support/certs.ts'
import { Harness } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const h = new Harness()
afterEach(() => h.closeAll())
const DAY = 86_400_000

/** A proxy serving `pair` on TLS in front of a loopback origin, the warnings it logs, and an admin over it; closed with the harness. */
function serveWith(pair: { certFile: string; keyFile: string }) {
  const origin = h.origin({ fetch: () => new Response('hello') })
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: pair.certFile, tls_key: pair.keyFile }, admin: { listen: '127.0.0.1:0' } })
  const warnings: string[] = []
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), log: (level, msg) => void (level === 'warn' && warnings.push(msg)) }).start()
  h.track(() => proxy.close())
  const admin = new AdminServer(config.admin, { proxy: () => proxy, metrics: new RequestMetrics(), startedAtMonoMs: performance.now() }).start()
  h.track(() => admin.close())
  return { proxy, config, warnings, admin }
}

test('expired, not yet valid and near its end are said, with what to do; a certificate with time left is not', () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1']) // ten years
  const pair = loadTlsPair(certs.certFile, certs.keyFile)
  const from = pair.notBeforeMs!
  const to = pair.notAfterMs!
  expect(to - from).toBeGreaterThan(3000 * DAY)
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', from + DAY)).toBeUndefined()
  expect(validityProblem(pair, 'c.pem', 'proxy.toml:4: server.tls_cert', to + 3 * DAY + 1000)).toMatch(/^proxy\.toml:4: server\.tls_cert: the certificate in "c\.pem" expired on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(3 day\(s\) ago\): clients refuse it; renew it and send SIGHUP/)
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', from - DAY)).toMatch(/is not valid until .*clock/)
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', to - 5 * DAY)).toMatch(/expires on .*, in 5\.0 day\(s\); renew it/)
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', to - 8 * DAY)).toBeUndefined()
  // notAfter is the last valid moment (RFC 5280 §4.1.2.5); just past it, "less than a day".
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', to)).toMatch(/expires on/)
  expect(validityProblem(pair, 'c.pem', 'server.tls_cert', to + 1000)).toMatch(/expired on .* \(less than a day ago\)/)
  // A short-lived certificate (six days, as Let's Encrypt issues them) is near its end only in its last third.
  const short = { ...pair, notBeforeMs: from, notAfterMs: from + 6 * DAY }
  expect(validityProblem(short, 'c.pem', 'server.tls_cert', from + 3.5 * DAY)).toBeUndefined()
  expect(validityProblem(short, 'c.pem', 'server.tls_cert', from + 4.5 * DAY)).toMatch(/in 1\.5 day\(s\)/)
})

test('an expired certificate: the proxy starts, warns at start and at a reload, serves it, and the admin says the days left (negative)', async () => {
  const expired = makeDatedCert(new Date('2020-01-01T00:00:00Z'), new Date('2020-02-01T00:00:00Z'))
  const { proxy, config, warnings, admin } = serveWith(expired)
  expect(warnings.filter((w) => w.includes('expired on 2020-02-01T00:00:00Z'))).toHaveLength(1)
  expect(warnings[0]).toContain(expired.certFile)
  await proxy.reload(config)
  expect(warnings.filter((w) => w.includes('expired on 2020-02-01T00:00:00Z'))).toHaveLength(2)
  const metrics = await (await fetch(`${admin.url}/metrics`)).text()
  const daysLeft = Number(metrics.match(/^proxy_tls_certificate_days_left (\S+)$/m)?.[1])
  expect(daysLeft).toBeLessThan(-365)
  const status = (await (await fetch(`${admin.url}/status`)).json()) as { tls_certificate?: { file: string; not_after: string; days_left: number } }
  expect(status.tls_certificate).toMatchObject({ file: expired.certFile, not_after: '2020-02-01T00:00:00.000Z' })
  expect(status.tls_certificate!.days_left).toBeLessThan(-365)
})

test('a certificate with time left: no warning, and the gauge counts its days', async () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const { proxy, warnings, admin } = serveWith(certs)
  expect(warnings).toEqual([])
  const daysLeft = Number((await (await fetch(`${admin.url}/metrics`)).text()).match(/^proxy_tls_certificate_days_left (\S+)$/m)?.[1])
  expect(daysLeft).toBeGreaterThan(3000)
})

test('proxy check warns of an expired certificate on stderr and still exits 0 (serve starts with it)', async () => {
  const expired = makeDatedCert(new Date('2020-01-01T00:00:00Z'), new Date('2020-02-01T00:00:00Z'))
  const io = memoryIo()
  expect(await runCli(['check', '--upstream', 'http://127.0.0.1:1', '--tls-cert', expired.certFile, '--tls-key', expired.keyFile, '--no-resolve'], io)).toBe(ExitCode.OK)
  expect(io.stderr).toContain(`warning: (flags): --tls-cert: the certificate in "${expired.certFile}" expired on 2020-02-01T00:00:00Z`)
  expect(io.stdout).toContain('config ok')
})

test('an intermediate that ends before the leaf is the one named, with its place in the chain', () => {
  const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
  const expired = makeDatedCert(new Date('2020-01-01T00:00:00Z'), new Date('2020-02-01T00:00:00Z'))
  const dir = testDir('proxy-chain-')
  const chain = join(dir, 'chain.pem')
  writeFileSync(chain, certs.cert + expired.cert)
  const pair = loadTlsPair(chain, certs.keyFile)
  expect(pair.endsFirst).toMatch(/^certificate 2 of 2 \(subject CN=proxy\.test\)$/)
  expect(validityProblem(pair, chain)).toMatch(/^server\.tls_cert: certificate 2 of 2 \(subject CN=proxy\.test\) in ".*chain\.pem" expired on 2020-02-01T00:00:00Z/)
})
