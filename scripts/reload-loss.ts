/**
 * Connections lost to reloads that need a new listening socket: fresh TLS connections (one
 * request each, Connection: close), `--connections` at a time, while the proxy is sent SIGHUP
 * `--reloads` times, its certificate pair swapped between two before each (so each reload opens
 * a new listener). Counts the answers and each kind of failure (ECONNRESET: reset in the old
 * socket's accept queue; ECONNREFUSED: nothing listened for a moment). Give several builds to
 * compare them in one run, one after another.
 *
 *   bun scripts/reload-loss.ts BINARY [BINARY ...] [--reloads 12] [--connections 16] [--ports 18400]
 *
 * Reads /proc/sys/net/ipv4/tcp_migrate_req and prints it (1: Linux hands a closing listener's
 * queued connections to the other listener of its port, for builds whose listeners share it).
 * An nginx origin on the base port, the proxy on base+1. Loopback only; everything is killed at
 * the end.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import tls from 'node:tls'
import { spawnSync } from 'node:child_process'
import { start, startOrigin, waitFor, workDir } from './local-load.ts'

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback
}
const reloads = flag('--reloads', 12)
const connections = flag('--connections', 16)
const base = flag('--ports', 18400)
const binaries = args.filter((a) => !a.startsWith('--'))
if (binaries.length === 0) throw new Error('usage: bun scripts/reload-loss.ts BINARY [BINARY ...] [--reloads 12] [--connections 16] [--ports 18400]')

const dir = workDir('proxy-reload-loss-')
const pair = (name: string) => {
  const cert = join(dir, `${name}-cert.pem`)
  const key = join(dir, `${name}-key.pem`)
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  if (ssl.status !== 0) throw new Error(`openssl could not make a certificate: ${ssl.stderr}`)
  return { cert, key }
}
const pairs = [pair('a'), pair('b')]
const live = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }
const use = (p: { cert: string; key: string }) => (copyFileSync(p.cert, live.cert), copyFileSync(p.key, live.key))

/** One fresh TLS connection and request: 'ok', or the kind of failure. */
function once(port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    let done = false
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => s.write('GET /small HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'))
    const finish = (kind: string) => {
      if (done) return
      done = true
      s.destroy()
      resolve(kind)
    }
    s.on('data', (d: Buffer) => (got += d.toString('latin1')))
    s.on('end', () => finish(got.startsWith('HTTP/1.1 200') ? 'ok' : `answer ${got.slice(9, 12)}`))
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message))
    s.setTimeout(5000, () => finish('timeout'))
  })
}

let migrate = 'unknown'
try {
  migrate = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim()
} catch {}
console.log(`net.ipv4.tcp_migrate_req = ${migrate}; ${reloads} reloads, ${connections} connections at a time`)
startOrigin(dir, base)
await Bun.sleep(300)
for (const bin of binaries) {
  use(pairs[0]!)
  const config = join(dir, 'proxy.toml')
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${base + 1}"\ntls_cert = "${live.cert}"\ntls_key = "${live.key}"\n[upstream]\nurl = "http://127.0.0.1:${base}"\n`)
  const proxy = start(bin, ['serve', '--config', config, '--admin', 'off', '--access-log', 'off'])
  await waitFor(base + 1, '/small', true)
  const counts: Record<string, number> = {}
  let loading = true
  const load = Promise.all(
    Array.from({ length: connections }, async () => {
      while (loading) {
        const kind = await once(base + 1)
        counts[kind] = (counts[kind] ?? 0) + 1
      }
    }),
  )
  await Bun.sleep(1000)
  for (let i = 0; i < reloads; i++) {
    use(pairs[(i + 1) % 2]!)
    proxy.kill('SIGHUP')
    await Bun.sleep(1000)
  }
  loading = false
  await load
  proxy.kill('SIGTERM')
  await new Promise((r) => proxy.once('exit', r))
  const failed = Object.entries(counts).filter(([k]) => k !== 'ok')
  console.log(`${bin}: ${counts.ok ?? 0} answered, ${failed.reduce((n, [, v]) => n + v, 0)} failed${failed.length ? ` (${failed.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`)
}
process.exit(0)
