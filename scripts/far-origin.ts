/**
 * The case this proxy exists for, measured: an nginx origin across a far link (scripts/far-link.ts,
 * a real TCP round trip of --rtt-ms), and curl on loopback fetching files from it directly, through
 * this proxy, and through nginx as a proxy (`keepalive 16`), each proxy started afresh per round.
 * "cold" is a round's first request (the proxy dials the origin), "warm" its second (a pooled
 * upstream connection; directly, curl's second transfer on its kept-alive connection).
 * `--uploads` turns it round: curl in the far namespace POSTs the files to proxies listening on
 * the near address, in front of a near sink that reads each body whole (a far user uploading).
 *
 *   bun scripts/far-origin.ts [--rtt-ms 100] [--sizes 1,4,16] [--rounds 3] [--uploads]
 *                             [--bin dist/proxy] [--base-bin FILE]
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
    uploads: { type: 'boolean', default: false },
  },
})
const sizesMiB = values.sizes!.split(',').map(Number)
const rounds = Number(values.rounds)
const uploads = values.uploads!
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

/**
 * curl's time_total for each URL, in order on one curl (one kept-alive connection): GETs, or with
 * `upload` POSTs of the file named by the URL's path, sent by a curl in `netns`. Checks every
 * byte count (a sink answers with the count it read).
 */
function transferSeconds(urls: string[], upload: boolean, netns?: string): number[] {
  const args: string[] = []
  for (const u of urls) {
    const mib = new URL(u).pathname.slice(1)
    if (args.length > 0) args.push('--next')
    args.push('-s', '--max-time', '120', '-w', '%{time_total} %{size_download} %{size_upload} %{http_code}\n')
    if (upload) args.push('--data-binary', `@${join(dir, mib)}`, '-o', join(dir, 'answer'), u)
    else args.push('-o', '/dev/null', u)
  }
  const r = netns ? spawnSync('ip', ['netns', 'exec', netns, 'curl', ...args]) : spawnSync('curl', args)
  const lines = r.stdout.toString().trim().split('\n')
  if (lines.length !== urls.length) throw new Error(`curl: ${r.stdout} ${r.stderr}`)
  return lines.map((l, i) => {
    const [seconds, down, up, status] = l.split(' ').map(Number)
    const want = Number(new URL(urls[i]!).pathname.slice(1)) * 2 ** 20
    if (status !== 200 || (upload ? up : down) !== want) throw new Error(`${urls[i]}: status ${status}, ${upload ? up : down} bytes, want ${want}`)
    return seconds!
  })
}

/** An upload sink (Bun.serve, in a child process): reads each body whole, answers its length. */
const SINK = `
Bun.serve({ hostname: process.argv[1], port: Number(process.argv[2]), maxRequestBodySize: 2 ** 34, async fetch(req) {
  let n = 0
  if (req.body) for await (const c of req.body) n += c.byteLength
  return new Response(String(n))
} })
console.log('listening')
`

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const link = spawn(process.execPath, [join(import.meta.dir, 'far-link.ts'), '--rtt-ms', values['rtt-ms']!, '--ns', ns, '--near', near, '--far', far], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(link)
  await waitForLine(link, 'ready', 'far-link')
  for (const mib of [0, ...sizesMiB]) writeFileSync(join(dir, String(mib)), new Uint8Array(mib * 2 ** 20).fill(0x61))
  // Downloads: the origin is far, curl and the proxies near. Uploads: the client is far (curl in
  // the namespace), the proxies listen on the near address, the sink is near.
  const origin = uploads ? near : far
  const listenHost = uploads ? near : '127.0.0.1'
  if (uploads) {
    const sink = spawn(process.execPath, ['-e', SINK, near, String(ORIGIN_PORT)], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(sink)
    await waitForLine(sink, 'listening', 'upload sink')
  } else {
    await startNginx(nginxConf('origin', `server { listen ${far}:${ORIGIN_PORT}; root ${dir}; keepalive_requests 100000; }`), far, ORIGIN_PORT, ns)
  }
  const proxyConf = nginxConf(
    'nginx-proxy',
    `upstream o { server ${origin}:${ORIGIN_PORT}; keepalive 16; }\n` +
      `server { listen ${listenHost}:${NGINX_PROXY_PORT}; client_max_body_size 0; ` +
      `location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
  )
  const clientNs = uploads ? ns : undefined
  const twice = (base: string, mib: number) => [`${base}/${mib}`, `${base}/${mib}`]
  const bins: [string, string][] = [['proxy', values.bin!]]
  if (values['base-bin']) bins.push(['proxy-base', values['base-bin']])
  const results = new Map<string, number[]>()
  const add = (key: string, [cold, warm]: number[]) => {
    results.set(`${key} cold`, [...(results.get(`${key} cold`) ?? []), cold!])
    results.set(`${key} warm`, [...(results.get(`${key} warm`) ?? []), warm!])
  }
  for (let round = 0; round < rounds; round++) {
    for (const mib of sizesMiB) {
      add(`${mib} direct`, transferSeconds(twice(`http://${origin}:${ORIGIN_PORT}`, mib), uploads, clientNs))
      for (const [name, bin] of bins) {
        const p = await startProxyProcess(['serve', '--upstream', `${origin}:${ORIGIN_PORT}`, '--listen', `${listenHost}:0`], bin)
        add(`${mib} ${name}`, transferSeconds(twice(p.url, mib), uploads, clientNs))
        await p.stop()
      }
      const ng = await startNginx(proxyConf, listenHost, NGINX_PROXY_PORT)
      add(`${mib} nginx`, transferSeconds(twice(`http://${listenHost}:${NGINX_PROXY_PORT}`, mib), uploads, clientNs))
      await stop(ng)
    }
  }
  const names = ['direct', ...bins.map(([n]) => n), 'nginx']
  console.log(`${uploads ? 'uploads from a far client' : 'downloads from a far origin'}, round trip ${values['rtt-ms']} ms, ${rounds} rounds, median seconds (cold / warm):`)
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
