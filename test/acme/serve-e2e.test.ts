/**
 * `proxy serve --acme` end to end against Debian's pebble on loopback (its 5% badNonce
 * rejections on): first issuance for two names, verified by real curl against pebble's root;
 * the HTTP-01 listener's 308 redirect; key files not world-readable; a restart serving the
 * stored certificate with no new order; with the ACME server unreachable and nothing stored, a
 * TLS alert instead of a crash; and, with 12-second certificates, renewal by the real timers,
 * swapped in while a connection opened before it keeps being served, with days left in /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import * as tls from 'node:tls'
import { join } from 'node:path'
import { freeTcpPort, Pebble, pebbleAvailable } from '../support/pebble.ts'
import { testDir } from '../support/temp-dir.ts'

const available = pebbleAvailable()
let pebble: Pebble
let origin: ReturnType<typeof Bun.serve>
let httpPort = 0
const dirs: string[] = []

beforeAll(async () => {
  if (!available) return
  httpPort = await freeTcpPort()
  pebble = await new Pebble({ httpPort }).start()
  origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (req) => new Response(`origin saw host=${req.headers.get('host')}`) })
})

afterAll(() => {
  pebble?.close()
  origin?.stop(true)
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Proc {
  child: ChildProcess
  log: () => string
  stop(): Promise<void>
}

/** Starts `bun src/main.ts serve ...`; killed by stop() (and on a 20 s start-up timeout). */
async function serve(args: string[], until: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, ['src/main.ts', 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const proc: Proc = {
    child,
    log: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
        setTimeout(() => child.kill('SIGKILL'), 5000).unref()
      }),
  }
  const deadline = Date.now() + 20_000
  while (!until.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`proxy did not reach ${until}: ${err}`)
    }
    await Bun.sleep(50)
  }
  return proc
}

/** Real curl, run asynchronously: the origin lives in this process and must keep answering. */
async function curl(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = Bun.spawn(['curl', '-sS', '--max-time', '5', ...args], { stdout: 'pipe', stderr: 'pipe' })
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { code: await p.exited, out, err }
}

describe.skipIf(!available)('proxy serve --acme against pebble', () => {
  test('first issuance for two names, 308 redirect, private files, then a restart with no new order', async () => {
    const stateDir = testDir('proxy-acme-state-')
    dirs.push(stateDir)
    const listenPort = await freeTcpPort()
    const args = [
      '--upstream', `http://127.0.0.1:${origin.port}`,
      '--listen', `127.0.0.1:${listenPort}`,
      '--admin', 'off', '--access-log', 'off',
      '--acme', 'a.test', '--acme', 'b.test',
      '--acme-email', 'ops@a.test',
      '--acme-directory', pebble.directoryUrl,
      '--acme-ca', pebble.caFile,
      '--acme-http-listen', `127.0.0.1:${httpPort}`,
      '--state-dir', stateDir,
    ]
    const first = await serve(args, /acme: certificate issued/)
    try {
      expect(first.log()).toContain('acme: order created')
      const rootFile = join(stateDir, 'pebble-root.pem')
      writeFileSync(rootFile, await pebble.rootPem())
      for (const name of ['a.test', 'b.test']) {
        // curl verifies the chain against pebble's root and the name against the certificate.
        const r = await curl(['--cacert', rootFile, '--resolve', `${name}:${listenPort}:127.0.0.1`, `https://${name}:${listenPort}/x`])
        expect(r.err).toBe('')
        expect(r.out).toBe(`origin saw host=${name}:${listenPort}`)
      }
      // A name not on the certificate fails verification.
      expect((await curl(['--cacert', rootFile, '--resolve', `c.test:${listenPort}:127.0.0.1`, `https://c.test:${listenPort}/`])).code).toBe(60)

      const redirect = await curl(['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'Host: a.test', `http://127.0.0.1:${httpPort}/some/path?q=1`])
      expect(redirect.out).toBe(`308 https://a.test:${listenPort}/some/path?q=1`)

      // Keys are 0600 in 0700 directories.
      const caDir = join(stateDir, readdirSync(stateDir).find((d) => d.includes('127.0.0.1'))!)
      expect(statSync(join(caDir, 'account.key')).mode & 0o777).toBe(0o600)
      const certDir = join(caDir, 'certs', 'a.test')
      expect(statSync(join(certDir, 'key.pem')).mode & 0o777).toBe(0o600)
      expect(statSync(caDir).mode & 0o777).toBe(0o700)
      expect(statSync(certDir).mode & 0o777).toBe(0o700)
    } finally {
      await first.stop()
    }

    const second = await serve(args, /proxy listening/)
    try {
      expect(second.log()).toContain('acme: serving the stored certificate')
      const rootFile = join(stateDir, 'pebble-root.pem')
      const r = await curl(['--cacert', rootFile, '--resolve', `b.test:${listenPort}:127.0.0.1`, `https://b.test:${listenPort}/`])
      expect(r.out).toBe(`origin saw host=b.test:${listenPort}`)
      await Bun.sleep(300) // let a (wrong) order start if one were coming
      expect(second.log()).not.toContain('acme: order created')
      expect(second.log()).not.toContain('acme: account')
    } finally {
      await second.stop()
    }
  }, 60_000)

  test('no certificate yet and the CA unreachable: the handshake fails with a TLS alert, and the proxy keeps running', async () => {
    const stateDir = testDir('proxy-acme-state-')
    dirs.push(stateDir)
    const listenPort = await freeTcpPort()
    const deadPort = await freeTcpPort()
    const adminPort = await freeTcpPort()
    const proc = await serve(
      ['--upstream', `http://127.0.0.1:${origin.port}`, '--listen', `127.0.0.1:${listenPort}`, '--admin', `127.0.0.1:${adminPort}`, '--access-log', 'off', '--acme', 'a.test', '--acme-directory', `https://127.0.0.1:${deadPort}/dir`, '--acme-http-listen', `127.0.0.1:${await freeTcpPort()}`, '--state-dir', stateDir],
      /could not obtain a certificate/,
    )
    try {
      expect(proc.log()).toContain('cannot reach the ACME server')
      const r = await curl(['-k', '--resolve', `a.test:${listenPort}:127.0.0.1`, `https://a.test:${listenPort}/`])
      expect(r.code).toBe(35) // CURLE_SSL_CONNECT_ERROR
      expect(r.err).toContain('alert internal error')
      expect(proc.child.exitCode).toBeNull()
      // Every handshake fails: /readyz and /status say why. Still 200: a health check that took a
      // new instance out would keep from it the CA's HTTP-01 request that brings the certificate.
      const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`)
      expect([ready.status, await ready.text()]).toEqual([200, expect.stringContaining('ready; but no TLS certificate yet for a.test (ACME failed 1 time(s): ')])
      const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { acme: { certificate: boolean; failures: number; last_error: string } }
      expect([status.acme.certificate, status.acme.failures]).toEqual([false, 1])
      expect(status.acme.last_error).toContain('cannot reach the ACME server')
    } finally {
      await proc.stop()
    }
  }, 30_000)

  test("a reload that moves the listener moves port 80's redirects with it", async () => {
    const stateDir = testDir('proxy-acme-state-')
    dirs.push(stateDir)
    const [first, second, http, dead] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort(), await freeTcpPort()]
    const file = join(stateDir, 'proxy.toml')
    const config = (port: number) => `[server]\nlisten = "127.0.0.1:${port}"\n\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n\n[admin]\nlisten = "off"\n\n[log]\naccess_log = "off"\n\n[acme]\ndomains = ["a.test"]\ndirectory = "https://127.0.0.1:${dead}/dir"\nhttp_listen = "127.0.0.1:${http}"\nstate_dir = "${join(stateDir, 'state')}"\n`
    writeFileSync(file, config(first))
    const proc = await serve(['--config', file], /proxy listening/)
    try {
      const location = async () => (await fetch(`http://127.0.0.1:${http}/x`, { headers: { host: 'a.test' }, redirect: 'manual' })).headers.get('location')
      expect(await location()).toBe(`https://a.test:${first}/x`)
      writeFileSync(file, config(second))
      proc.child.kill('SIGHUP')
      const deadline = Date.now() + 10_000
      while (!proc.log().includes('"reloaded"') && !proc.log().includes(' reloaded') && Date.now() < deadline) await Bun.sleep(50)
      expect(proc.log()).toMatch(/reloaded/)
      expect(await location()).toBe(`https://a.test:${second}/x`)
    } finally {
      await proc.stop()
    }
  }, 30_000)

  test('short-lived certificates are renewed by the timers and swapped in under an open connection', async () => {
    const shortHttpPort = await freeTcpPort()
    const short = await new Pebble({ httpPort: shortHttpPort, certValiditySeconds: 12 }).start()
    const stateDir = testDir('proxy-acme-state-')
    dirs.push(stateDir)
    const listenPort = await freeTcpPort()
    const adminPort = await freeTcpPort()
    let proc: Proc | undefined
    let sock: tls.TLSSocket | undefined
    try {
      proc = await serve(
        ['--upstream', `http://127.0.0.1:${origin.port}`, '--listen', `127.0.0.1:${listenPort}`, '--admin', `127.0.0.1:${adminPort}`, '--access-log', 'off', '--acme', 'short.test', '--acme-directory', short.directoryUrl, '--acme-ca', short.caFile, '--acme-http-listen', `127.0.0.1:${shortHttpPort}`, '--state-dir', stateDir],
        /acme: certificate issued/,
      )
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
      const daysLeft = Number(/proxy_acme_certificate_days_left\{names="short.test"\} (\S+)/.exec(metrics)?.[1])
      expect(daysLeft).toBeGreaterThan(0)
      expect(daysLeft).toBeLessThan(12 / 86_400)
      expect(metrics).toContain('proxy_acme_renewal_failures{names="short.test"} 0')
      const root = await short.rootPem()
      // A keep-alive connection opened on the first certificate.
      sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: listenPort, servername: 'short.test', ca: root }, () => resolve(s))
        s.once('error', reject)
      })
      const firstSerial = sock.getPeerCertificate().serialNumber
      const ask = (s: tls.TLSSocket) =>
        new Promise<string>((resolve, reject) => {
          let got = ''
          const onData = (d: Buffer) => {
            got += d.toString()
            if (got.includes('origin saw')) {
              s.off('data', onData)
              resolve(got)
            }
          }
          s.on('data', onData)
          s.once('error', reject)
          s.write('GET / HTTP/1.1\r\nhost: short.test\r\n\r\n')
        })
      expect(await ask(sock)).toContain('origin saw host=short.test')
      // Renewal at about 8 s (two thirds of 12); bounded wait for the second issuance.
      const deadline = Date.now() + 25_000
      while ((proc.log().match(/acme: certificate issued/g) ?? []).length < 2 && Date.now() < deadline) await Bun.sleep(100)
      expect((proc.log().match(/acme: certificate issued/g) ?? []).length).toBeGreaterThanOrEqual(2)
      const fresh = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: listenPort, servername: 'short.test', ca: root }, () => resolve(s))
        s.once('error', reject)
      })
      expect(fresh.getPeerCertificate().serialNumber).not.toBe(firstSerial)
      fresh.destroy()
      // The connection from before the swap is still served.
      expect(await ask(sock)).toContain('origin saw host=short.test')
    } finally {
      sock?.destroy()
      await proc?.stop()
      short.close()
    }
  }, 60_000)

  test('workers share the state directory: one order, and every worker serves the certificate', async () => {
    const stateDir = testDir('proxy-acme-state-')
    dirs.push(stateDir)
    const listenPort = await freeTcpPort()
    const adminPort = await freeTcpPort()
    const proc = await serve(
      ['--workers', '2', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', `127.0.0.1:${listenPort}`, '--admin', `127.0.0.1:${adminPort}`, '--access-log', 'off', '--acme', 'w.test', '--acme-directory', pebble.directoryUrl, '--acme-ca', pebble.caFile, '--acme-http-listen', `127.0.0.1:${httpPort}`, '--state-dir', stateDir],
      /acme: certificate issued/,
    )
    try {
      // The supervisor's merged /metrics shows each worker's days left (a gauge, kept per
      // worker) once that worker serves the certificate.
      const serving = async () => {
        try {
          const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
          return [0, 1].every((w) => new RegExp(`^proxy_acme_certificate_days_left\\{worker="${w}",names="w.test"\\} \\d`, 'm').test(text))
        } catch {
          return false
        }
      }
      let both = false
      for (let i = 0; i < 100 && !both; i++) {
        both = await serving()
        if (!both) await Bun.sleep(100)
      }
      expect(both).toBe(true)
      expect((proc.log().match(/acme: order created/g) ?? []).length).toBe(1)
      const rootFile = join(stateDir, 'pebble-root.pem')
      writeFileSync(rootFile, await pebble.rootPem())
      for (let i = 0; i < 4; i++) {
        const r = await curl(['--cacert', rootFile, '--resolve', `w.test:${listenPort}:127.0.0.1`, `https://w.test:${listenPort}/`])
        expect(r.out).toBe(`origin saw host=w.test:${listenPort}`)
      }
    } finally {
      await proc.stop()
    }
  }, 60_000)
})
