/**
 * Scenario (a) of the resolver tests, against nginx from Debian and this proxy, in one run:
 * the origin name moves from 127.0.0.2 to 127.0.0.3, and .2 is killed one second later, while
 * 16 clients keep requests in flight. Prints each proxy's failed-request count.
 *
 *   bun scripts/resolver-vs-nginx.ts [--seconds 6]
 *
 * - this proxy asks an embedded DNS server on 127.0.0.1 (TTL 1 s);
 * - "nginx (static upstream)" is the usual config, `upstream { server origin.test:PORT; keepalive }`:
 *   nginx resolves the name once at start-up through the system resolver, here a private
 *   /etc/hosts bind-mounted for nginx alone (unshare -m), which the script then rewrites;
 * - "nginx (resolver + variable)" is the known workaround: `resolver 127.0.0.1:PORT valid=1s` and
 *   `proxy_pass http://$upstream`, which re-resolves but gives up the upstream keepalive pool.
 * Needs root (unshare, mount) and installs nginx from Debian if it is missing. Only loopback.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DnsServer } from '../src/dns/server.ts'
import { ensureBinary } from '../test/support/binary.ts'

const args = process.argv.slice(2)
const SECONDS = Number(args[args.indexOf('--seconds') + 1] || 6)
const HOST = 'origin.test'
const PORTS = { origin: 18300, ours: 18301, nginxStatic: 18302, nginxResolver: 18303 }
const dir = mkdtempSync(join(tmpdir(), 'resolver-vs-nginx-'))
chmodSync(dir, 0o755)
const children: ChildProcess[] = []
const cleanup = () => children.forEach((c) => c.pid && tryKill(-c.pid))
function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {}
}
process.on('exit', cleanup)

if (spawnSync('sh', ['-c', 'command -v nginx']).status !== 0) {
  spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light'], { stdio: 'inherit' })
}

function start(cmd: string, argv: string[]): ChildProcess {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  c.stderr!.on('data', () => {})
  children.push(c)
  return c
}

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(url)).arrayBuffer()
      return
    } catch {
      await Bun.sleep(50)
    }
  }
  throw new Error(`${url} did not come up`)
}

// Two origins on one port: each answers with its own address.
const origins = new Map(['127.0.0.2', '127.0.0.3'].map((a) => [a, Bun.serve({ hostname: a, port: PORTS.origin, fetch: () => new Response(a) })]))

const dns = await new DnsServer().start(0)
dns.set(HOST, { a: ['127.0.0.2'], ttl: 1 })
const hostsFile = join(dir, 'hosts')
writeFileSync(hostsFile, `127.0.0.1 localhost\n127.0.0.2 ${HOST}\n`)
chmodSync(hostsFile, 0o644)

const nginxConf = join(dir, 'nginx.conf')
writeFileSync(
  nginxConf,
  `worker_processes 1;\ndaemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx.err')} warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n` +
    `  upstream origin_static { server ${HOST}:${PORTS.origin}; keepalive 64; }\n` +
    `  server { listen 127.0.0.1:${PORTS.nginxStatic}; location / { proxy_pass http://origin_static; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n` +
    `  server { listen 127.0.0.1:${PORTS.nginxResolver}; resolver 127.0.0.1:${dns.port} valid=1s ipv6=off; resolver_timeout 1s; set $up ${HOST}:${PORTS.origin}; location / { proxy_pass http://$up; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`,
)
// nginx sees the private hosts file; nothing else on the machine does.
start('unshare', ['-m', 'sh', '-c', `mount --bind ${hostsFile} /etc/hosts && exec nginx -c ${nginxConf}`])
const bin = ensureBinary()
start(bin, ['serve', '--upstream', `http://${HOST}:${PORTS.origin}`, '--listen', `127.0.0.1:${PORTS.ours}`, '--resolver', `127.0.0.1:${dns.port}`, '--resolve-min-ttl', '1s', '--admin', 'off', '--access-log', 'off'])
const targets = [
  { name: 'proxy (this project)', port: PORTS.ours },
  { name: 'nginx 1.22 (static upstream, keepalive)', port: PORTS.nginxStatic },
  { name: 'nginx 1.22 (resolver + variable, no keepalive pool)', port: PORTS.nginxResolver },
]
for (const t of targets) await waitUp(`http://127.0.0.1:${t.port}/`)

interface Count {
  ok: number
  failed: number
  served: Record<string, number>
}
const counts = new Map(targets.map((t) => [t.name, { ok: 0, failed: 0, served: {} } as Count]))
let running = true
const loops = targets.flatMap((t) =>
  Array.from({ length: 16 }, async () => {
    const c = counts.get(t.name)!
    for (let i = 0; running && i < 1_000_000; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${t.port}/`)
        const text = await res.text()
        if (res.status === 200) {
          c.ok++
          c.served[text] = (c.served[text] ?? 0) + 1
        } else c.failed++
      } catch {
        c.failed++
      }
    }
  }),
)
await Bun.sleep(1000)
console.error('moving origin.test from 127.0.0.2 to 127.0.0.3 (DNS answer and hosts file)')
dns.set(HOST, { a: ['127.0.0.3'], ttl: 1 })
writeFileSync(hostsFile, `127.0.0.1 localhost\n127.0.0.3 ${HOST}\n`)
await Bun.sleep(1000)
console.error('killing 127.0.0.2')
origins.get('127.0.0.2')!.stop(true)
await Bun.sleep(Math.max(1000, (SECONDS - 2) * 1000))
running = false
await Promise.all(loops)

console.log(`\nscenario (a): origin.test moves .2 -> .3, .2 killed 1 s later; 16 concurrent clients per proxy, ${SECONDS} s\n`)
console.log('| proxy | requests ok | failed | served by .2 | served by .3 |')
console.log('|---|---|---|---|---|')
for (const t of targets) {
  const c = counts.get(t.name)!
  console.log(`| ${t.name} | ${c.ok} | ${c.failed} | ${c.served['127.0.0.2'] ?? 0} | ${c.served['127.0.0.3'] ?? 0} |`)
}
dns.close()
origins.forEach((o) => o.stop(true))
cleanup()
process.exit(0)
