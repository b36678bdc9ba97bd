/**
 * The case this proxy exists for, measured: an nginx origin across a far link (scripts/far-link.ts,
 * a real TCP round trip of --rtt-ms), and curl on loopback fetching files from it directly, through
 * this proxy, and through nginx as a proxy (`keepalive 16`), each proxy started afresh per round.
 * "cold" is a round's first request (the proxy dials the origin), "warm" its second (a pooled
 * upstream connection; directly, curl's second transfer on its kept-alive connection).
 *
 *   bun scripts/far-origin.ts [--rtt-ms 100] [--sizes 1,4,16] [--rounds 3] [--bin dist/proxy]
 *                             [--base-bin FILE]
 *
 * Prints the median seconds per size and path. Linux and root only (network namespace, TUN), with
 * nginx and curl (Debian packages). Everything it starts is stopped before it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startProxyProcess } from './stream-rss.ts'

const { values } = parseArgs({
  options: {
    'rtt-ms': { type: 'string', default: '100' },
    sizes: { type: 'string', default: '1,4,16' },
    rounds: { type: 'string', default: '3' },
    bin: { type: 'string', default: 'dist/proxy' },
    'base-bin': { type: 'string' },
  },
})
const sizesMiB = values.sizes!.split(',').map(Number)
const rounds = Number(values.rounds)
const ns = 'farorigin'
const near = '10.79.0.1'
const far = '10.79.0.2'
const ORIGIN_PORT = 8080
const NGINX_PROXY_PORT = 18470
const dir = mkdtempSync(join(tmpdir(), 'far-origin-'))
const children: ChildProcess[] = []

function waitForLine(child: ChildProcess, prefix: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not ready within 10 s`)), 10_000)
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.split('\n').some((l) => l.startsWith(prefix))) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code})`))
    })
  })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill('SIGTERM')
  await Promise.race([exited, Bun.sleep(5_000)])
}

/** Writes nginx's config `name`.conf with `body` as its http block; returns its path. */
function nginxConf(name: string, body: string): string {
  const conf = join(dir, `${name}.conf`)
  writeFileSync(
    conf,
    `daemon off; worker_processes 1; pid ${join(dir, name)}.pid; error_log ${join(dir, name)}-error.log;\n` +
      `events { worker_connections 1024; }\nhttp { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};\n${body}\n}\n`,
  )
  return conf
}

/**
 * nginx in the foreground (in `netns` if given); resolves once host:port takes a connection.
 * No request is made: through nginx as a proxy that would open the cold upstream connection.
 */
async function startNginx(conf: string, host: string, port: number, netns?: string): Promise<ChildProcess> {
  const argv = ['nginx', '-c', conf]
  const child = netns ? spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: 'ignore' }) : spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' })
  children.push(child)
  for (let i = 0; i < 100; i++) {
    const probe = spawnSync('bash', ['-c', `exec 3<>/dev/tcp/${host}/${port}`], { stdio: 'ignore' })
    if (probe.status === 0) return child
    await Bun.sleep(50)
  }
  throw new Error(`nginx (${conf}) did not listen on ${host}:${port}`)
}

/** curl's time_total for each URL, fetched in order on one curl (kept-alive connection). */
function fetchSeconds(urls: string[]): number[] {
  const args = ['-s', '--max-time', '120']
  for (const u of urls) args.push('-o', '/dev/null', '-w', '%{time_total} %{size_download}\\n', u)
  const r = spawnSync('curl', args)
  const lines = r.stdout.toString().trim().split('\n')
  return lines.map((l, i) => {
    const [seconds, bytes] = l.split(' ').map(Number)
    const want = Number(new URL(urls[i]!).pathname.slice(1)) * 2 ** 20
    if (bytes !== want) throw new Error(`${urls[i]}: ${bytes} bytes, want ${want}`)
    return seconds!
  })
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const link = spawn(process.execPath, [join(import.meta.dir, 'far-link.ts'), '--rtt-ms', values['rtt-ms']!, '--ns', ns, '--near', near, '--far', far], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(link)
  await waitForLine(link, 'ready', 'far-link')
  for (const mib of [0, ...sizesMiB]) writeFileSync(join(dir, String(mib)), new Uint8Array(mib * 2 ** 20).fill(0x61))
  await startNginx(nginxConf('origin', `server { listen ${far}:${ORIGIN_PORT}; root ${dir}; keepalive_requests 100000; }`), far, ORIGIN_PORT, ns)
  const proxyConf = nginxConf(
    'nginx-proxy',
    `upstream o { server ${far}:${ORIGIN_PORT}; keepalive 16; }\n` +
      `server { listen 127.0.0.1:${NGINX_PROXY_PORT}; location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
  )
  const bins: [string, string][] = [['proxy', values.bin!]]
  if (values['base-bin']) bins.push(['proxy-base', values['base-bin']])
  const results = new Map<string, number[]>()
  const add = (key: string, s: number) => results.set(key, [...(results.get(key) ?? []), s])
  for (let round = 0; round < rounds; round++) {
    for (const mib of sizesMiB) {
      const [dc, dw] = fetchSeconds([`http://${far}:${ORIGIN_PORT}/${mib}`, `http://${far}:${ORIGIN_PORT}/${mib}`])
      add(`${mib} direct cold`, dc!)
      add(`${mib} direct warm`, dw!)
      for (const [name, bin] of bins) {
        const p = await startProxyProcess(['serve', '--upstream', `${far}:${ORIGIN_PORT}`, '--listen', '127.0.0.1:0'], bin)
        const [c, w] = fetchSeconds([`${p.url}/${mib}`, `${p.url}/${mib}`])
        add(`${mib} ${name} cold`, c!)
        add(`${mib} ${name} warm`, w!)
        await p.stop()
      }
      const ng = await startNginx(proxyConf, '127.0.0.1', NGINX_PROXY_PORT)
      const [c, w] = fetchSeconds([`http://127.0.0.1:${NGINX_PROXY_PORT}/${mib}`, `http://127.0.0.1:${NGINX_PROXY_PORT}/${mib}`])
      add(`${mib} nginx cold`, c!)
      add(`${mib} nginx warm`, w!)
      await stop(ng)
    }
  }
  const names = ['direct', ...bins.map(([n]) => n), 'nginx']
  console.log(`far origin, round trip ${values['rtt-ms']} ms, ${rounds} rounds, median seconds (cold / warm):`)
  console.log(`| MiB | ${names.join(' | ')} |`)
  console.log(`|---|${names.map(() => '---').join('|')}|`)
  for (const mib of sizesMiB) {
    const cells = names.map((n) => `${median(results.get(`${mib} ${n} cold`)!).toFixed(3)} / ${median(results.get(`${mib} ${n} warm`)!).toFixed(3)}`)
    console.log(`| ${mib} | ${cells.join(' | ')} |`)
  }
}

try {
  await main()
} finally {
  for (const child of children.reverse()) await stop(child)
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  rmSync(dir, { recursive: true, force: true })
}
