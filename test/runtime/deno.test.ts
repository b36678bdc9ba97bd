/**
 * The same source under Deno: `deno run -A src/main.ts serve` proxies GET and a streamed POST.
 * Deno comes from the `deno` npm package (devDependency).
 */
import { afterAll, expect, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { startProxyProcess } from '../../scripts/stream-rss.ts'
import { makeCerts } from '../support/certs.ts'
import { testDir } from '../support/temp-dir.ts'

const DENO = 'node_modules/.bin/deno'
const origins: { stop(force?: boolean): unknown }[] = []
afterAll(() => origins.forEach((o) => o.stop(true)))

test('serve runs on Deno', async () => {
  expect(existsSync(DENO)).toBe(true)
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      if (req.method === 'POST') return new Response(`got ${(await req.arrayBuffer()).byteLength} bytes`)
      return new Response(`hello ${req.headers.get('host')} via ${req.headers.get('x-forwarded-for')}`)
    },
  })
  origins.push(origin)
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off'], DENO)
  try {
    const res = await fetch(`${proxy.url}/x`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe(`hello ${new URL(proxy.url).host} via 127.0.0.1`)
    expect(res.headers.get('x-request-id')).toBeTruthy()
    const big = new Uint8Array(3 * 1024 * 1024)
    const post = await fetch(`${proxy.url}/up`, { method: 'POST', body: big })
    expect(await post.text()).toBe(`got ${big.byteLength} bytes`)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('serve on Deno speaks HTTP/2 by ALPN (Deno.serve), and :authority reaches the origin as Host; a backslash in :path is a 400', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (req) => new Response(`hello ${req.headers.get('host')}`) })
  origins.push(origin)
  const certs = makeCerts(['edge.test'], ['127.0.0.1'])
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], DENO)
  try {
    const port = new URL(proxy.url).port
    const curl = Bun.spawn(['curl', '-sS', '--http2', '--cacert', certs.caFile, '--connect-to', `edge.test:443:127.0.0.1:${port}`, '-w', '\n%{http_version}', 'https://edge.test/x'], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    const out = await new Response(curl.stdout).text()
    await curl.exited
    expect(out).toBe('hello edge.test\n2')
    // A backslash in :path: a 400 answer here (the own HTTP/2 server resets the stream).
    const bs = Bun.spawn(['curl', '-sS', '--http2', '--path-as-is', '--cacert', certs.caFile, '--connect-to', `edge.test:443:127.0.0.1:${port}`, '-o', '/dev/null', '-w', '%{http_code} %{http_version}', 'https://edge.test/a\\..\\x'], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    expect(await new Response(bs.stdout).text()).toBe('400 2')
    // The same to HEAD: the proxy's own answer goes without content (it came as DATA, and curl failed the stream: exit 92; seventeenth round).
    const head = Bun.spawn(['curl', '-sS', '--http2', '-I', '--path-as-is', '--cacert', certs.caFile, '--connect-to', `edge.test:443:127.0.0.1:${port}`, '-o', '/dev/null', '-w', '%{http_code} %{http_version}', 'https://edge.test/a\\..\\x'], { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    expect(await new Response(head.stdout).text()).toBe('400 2')
    expect(await head.exited).toBe(0)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('on Deno, an HTTP/2 request body streamed without Content-Length reaches the origin whole; a POST with no body goes with none (no chunked stream)', async () => {
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const bytes = (await req.arrayBuffer()).byteLength
      return new Response(`got ${bytes} bytes, length ${req.headers.get('content-length')}, te ${req.headers.get('transfer-encoding')}`)
    },
  })
  origins.push(origin)
  const certs = makeCerts(['edge.test'], ['127.0.0.1'])
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], DENO)
  const curl = async (args: string[], stdin?: Uint8Array) => {
    const port = new URL(proxy.url).port
    const p = Bun.spawn(['curl', '-sS', '--http2', '--cacert', certs.caFile, '--connect-to', `edge.test:443:127.0.0.1:${port}`, ...args, 'https://edge.test/up'], { stdin: stdin ?? 'ignore', stdout: 'pipe', stderr: 'pipe', timeout: 30_000 })
    const out = await new Response(p.stdout).text()
    await p.exited
    return out
  }
  try {
    // -T - streams stdin: DATA frames with no content-length field.
    const body = new Uint8Array(5 * 1024 * 1024).fill(97)
    expect(await curl(['-T', '-', '-X', 'POST'], body)).toBe(`got ${body.byteLength} bytes, length null, te chunked`)
    const empty = await curl(['-X', 'POST'])
    expect(empty).toStartWith('got 0 bytes, ')
    expect(empty).toEndWith('te null')
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('on Deno, SIGTERM with a request still running past drain_timeout exits 0', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: 0, fetch: () => Bun.sleep(6000).then(() => new Response('late')) })
  origins.push(origin)
  const dir = testDir('proxy-deno-drain-')
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\ndrain_timeout = "1s"\n\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n\n[admin]\nlisten = "off"\n`)
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file], DENO)
  const slow = fetch(`${proxy.url}/slow`).then((r) => r.status, () => 'cut')
  await Bun.sleep(300)
  expect(await proxy.stop()).toBe(0)
  expect(await slow).toBe('cut')
}, 60_000)

test('on Deno, running out of file descriptors does not end the process: the listener is opened again once some are free', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  origins.push(origin)
  const serve = `ulimit -n 96; exec ${DENO} run -A src/main.ts serve --upstream http://127.0.0.1:${origin.port} --listen 127.0.0.1:0 --admin off --access-log off`
  const proxy = await startProxyProcess(['-c', serve], 'sh')
  const { port } = new URL(proxy.url)
  const held: Socket[] = []
  try {
    for (let i = 0; i < 150; i++) {
      const s = connect(Number(port), '127.0.0.1')
      s.on('error', () => {})
      held.push(s)
    }
    await Bun.sleep(1000)
    for (const s of held) s.destroy()
    // Listening again 1 s after the accept loop ended: poll for up to 10 s.
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      await Bun.sleep(200)
      status = await fetch(`${proxy.url}/x`).then((r) => r.status, () => 0)
    }
    expect(status).toBe(200)
    expect(proxy.child.exitCode).toBeNull()
  } finally {
    for (const s of held) s.destroy()
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('on Deno, a reload that changes a limit keeps serving on the same port (it left nothing listening)', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  origins.push(origin)
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  const dir = testDir('proxy-deno-reload-')
  const file = join(dir, 'proxy.toml')
  const config = (keepalive: string) => `[server]\nlisten = "127.0.0.1:${port}"\nkeepalive_timeout = "${keepalive}"\n\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n\n[admin]\nlisten = "off"\n`
  writeFileSync(file, config('75s'))
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file], DENO)
  try {
    expect((await fetch(`${proxy.url}/a`)).status).toBe(200)
    writeFileSync(file, config('30s'))
    proxy.child.kill('SIGHUP')
    // The reload is logged; then the same port still answers.
    let status = 0
    for (let i = 0; i < 20 && status !== 200; i++) {
      await Bun.sleep(100)
      status = await fetch(`${proxy.url}/b`).then((r) => r.status, () => 0)
    }
    await Bun.sleep(300)
    expect(await fetch(`${proxy.url}/c`).then((r) => r.status, () => 0)).toBe(200)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

test('on Deno, a reload that lowers max_header_size applies it (the front kept the first config\'s limit) (outside review, thirteenth round)', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  origins.push(origin)
  const file = join(testDir('proxy-deno-reload-'), 'proxy.toml')
  const config = (size: string) => `[server]\nlisten = "127.0.0.1:0"\nmax_header_size = "${size}"\n\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n\n[admin]\nlisten = "off"\n`
  writeFileSync(file, config('16KiB'))
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file], DENO)
  const big = { headers: { 'x-big': 'b'.repeat(8000) } }
  try {
    expect((await fetch(`${proxy.url}/a`, big)).status).toBe(200)
    writeFileSync(file, config('4KiB'))
    proxy.child.kill('SIGHUP')
    let status = 0
    for (let i = 0; i < 50 && status !== 431; i++) {
      await Bun.sleep(100)
      status = await fetch(`${proxy.url}/b`, big).then((r) => r.status, () => 0)
    }
    expect(status).toBe(431)
    expect((await fetch(`${proxy.url}/c`)).status).toBe(200)
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

/** An origin whose /drip answers 200 at once, then a byte every 100 ms for `n` (query) bytes. */
function dripOrigin() {
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const n = Number(new URL(req.url).searchParams.get('n') ?? 0)
      if (n === 0) return new Response('ok')
      let sent = 0
      return new Response(
        new ReadableStream({
          async pull(c) {
            await Bun.sleep(100)
            if (sent++ >= n) c.close()
            else c.enqueue(new Uint8Array([0x2e]))
          },
        }),
      )
    },
  })
  origins.push(origin)
  return origin
}

test('on Deno, max_concurrent_requests counts a streaming response until it ends, as on Bun (Deno.serve\'s handler returns at the head) (outside review, thirteenth round)', async () => {
  const origin = dripOrigin()
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--max-concurrent-requests', '2'], DENO)
  const streams = [new AbortController(), new AbortController()]
  try {
    const heads = await Promise.all(streams.map((a) => fetch(`${proxy.url}/drip?n=30`, { signal: a.signal })))
    expect(heads.map((r) => r.status)).toEqual([200, 200])
    // Both still streaming: a third request is over the limit.
    expect((await fetch(`${proxy.url}/x`)).status).toBe(503)
    for (const a of streams) a.abort()
    // Once they are gone, requests are admitted again.
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      await Bun.sleep(100)
      status = await fetch(`${proxy.url}/y`).then((r) => r.status, () => 0)
    }
    expect(status).toBe(200)
  } finally {
    for (const a of streams) a.abort()
    expect(await proxy.stop()).toBe(0)
  }
}, 60_000)

/** A raw origin that answers each read with `answer`, and `serve` on Deno in front of it (`args` added); both closed after `use`. */
async function throughDeno(answer: (s: Socket, head: string) => void, args: string[], use: (proxy: Awaited<ReturnType<typeof startProxyProcess>>) => Promise<void>): Promise<void> {
  const sockets: Socket[] = []
  const raw = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.on('data', (d) => answer(s, d.toString('latin1')))
  })
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()))
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${(raw.address() as { port: number }).port}`, '--listen', '127.0.0.1:0', '--admin', 'off', ...args], DENO)
  try {
    await use(proxy)
  } finally {
    for (const s of sockets) s.destroy()
    raw.close()
    expect(await proxy.stop()).toBe(0)
  }
}

test('on Deno, an upstream 205 with a streamed body is a 205 with none (a Response cannot carry one), and its request is counted out (outside review, thirteenth round)', async () => {
  const answer = (s: Socket, head: string) => {
    if (head.startsWith('GET /205')) {
      s.write('HTTP/1.1 205 Reset Content\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n')
      setTimeout(() => s.destroyed || s.write('0\r\n\r\n'), 300)
    } else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  }
  await throughDeno(answer, ['--max-concurrent-requests', '1'], async (proxy) => {
    const r = await fetch(`${proxy.url}/205s`)
    expect(r.status).toBe(205)
    expect(await r.text()).toBe('')
    // The one slot is free again (it was held for good: every request after was a 503).
    let status = 0
    for (let i = 0; i < 20 && status !== 200; i++) {
      status = await fetch(`${proxy.url}/after`).then((x) => x.status, () => 0)
      if (status !== 200) await Bun.sleep(100)
    }
    expect(status).toBe(200)
  })
}, 60_000)

test('on Deno, a HEAD whose GET is chunked gets no "content-length: 0" (Deno.serve adds it for a null body: a length the GET does not have, RFC 9110 §8.6; seventeenth round)', async () => {
  const answer = (s: Socket, head: string) => {
    if (head.startsWith('HEAD /chunked')) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
    else if (head.startsWith('HEAD /sized')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n')
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  }
  await throughDeno(answer, ['--access-log', 'off'], async (proxy) => {
    /** The head of the proxy's answer to a HEAD request, as sent. */
    const headOf = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const c = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => c.write(`HEAD ${path} HTTP/1.1\r\nHost: a\r\n\r\n`))
        let got = ''
        c.on('data', (d) => {
          got += d.toString('latin1')
          if (got.includes('\r\n\r\n')) {
            c.destroy()
            resolve(got.toLowerCase())
          }
        })
        c.on('error', reject)
      })
    const chunked = await headOf('/chunked')
    expect(chunked).toStartWith('http/1.1 200')
    expect(chunked).not.toContain('content-length')
    expect(await headOf('/sized')).toContain('content-length: 5')
  })
}, 60_000)

test('on Deno, an upstream status of 600-999 is a 502 BAD_RESPONSE, logged as sent (Deno.serve throws for it: an unlogged 500, the record saying 999; seventeenth round)', async () => {
  const log = join(testDir('proxy-deno-status-'), 'access.log')
  const answer = (s: Socket, head: string) => void s.write(head.startsWith('GET /odd') ? 'HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nok' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await throughDeno(answer, ['--access-log', log], async (proxy) => {
    const r = await fetch(`${proxy.url}/odd`)
    expect(r.status).toBe(502)
    expect(await r.text()).toContain('upstream sent status 999')
    expect(r.headers.get('x-request-id')).toBeTruthy()
    expect(await (await fetch(`${proxy.url}/fine`)).text()).toBe('ok')
    let lines: { path: string; status: number; error?: string; upstream_status?: number }[] = []
    for (let i = 0; i < 50 && lines.length < 2; i++) {
      await Bun.sleep(50)
      lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
    }
    expect(lines.find((l) => l.path === '/odd')).toMatchObject({ status: 502, error: 'BAD_RESPONSE', upstream_status: 999 })
    expect(proxy.stderr()).not.toContain('RangeError')
  })
}, 60_000)

test('on Deno, a response still streaming at drain_timeout is cut and logged DRAIN_TIMEOUT, as on Bun (it had no access-log line) (outside review, thirteenth round)', async () => {
  const origin = dripOrigin()
  const dir = testDir('proxy-deno-drain-')
  const file = join(dir, 'proxy.toml')
  const log = join(dir, 'access.log')
  writeFileSync(file, `[server]\nlisten = "127.0.0.1:0"\ndrain_timeout = "1s"\n\n[upstream]\nurl = "http://127.0.0.1:${origin.port}"\n\n[admin]\nlisten = "off"\n\n[log]\naccess_log = "${log}"\n`)
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file], DENO)
  const res = await fetch(`${proxy.url}/drip?n=150`)
  expect(res.status).toBe(200)
  const body = res.text().then(() => 'whole', () => 'cut')
  await Bun.sleep(300)
  expect(await proxy.stop()).toBe(0)
  expect(await body).toBe('cut')
  const records = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { path: string; error?: string })
  expect(records.filter((r) => r.path.startsWith('/drip')).map((r) => r.error)).toEqual(['DRAIN_TIMEOUT'])
}, 60_000)

/** `serve --config file --workers 2` on Deno with a config of `originPort` (written as `good`): the supervisor, its port and its stderr so far. */
async function denoWorkers(originPort: number, file: string) {
  const good = `[server]\nlisten = "127.0.0.1:0"\n[upstream]\nurl = "http://127.0.0.1:${originPort}"\n[admin]\nlisten = "off"\n[log]\naccess_log = "off"\n`
  writeFileSync(file, good)
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--config', file, '--workers', '2'], DENO)
  let stderr = ''
  proxy.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  return { proxy, sup: proxy.child.pid!, port: Number(new URL(proxy.url).port), log: () => stderr, good }
}

/** The processes listening on 127.0.0.1:`port` (ss), once each. */
function listening(port: number): number[] {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString()
  return [...new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))]
}

/**
 * SIGKILL to each of these processes, once each: a worker is both in `pids` and listening, and one
 * may be reaped between a check and the kill (ESRCH failed a clean-up once, a race of the test's).
 */
function killLeft(pids: number[]): void {
  for (const pid of new Set(pids)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

test('on Deno, --workers 2 serves; a worker that cannot start again does not stop the others; kill -9 of the supervisor leaves no worker on the port', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  origins.push(origin)
  const file = join(testDir('proxy-deno-workers-'), 'proxy.toml')
  // Before: each worker died at once (Deno.serve's reusePort needs --unstable-net, which the
  // worker's command line lacked) and was restarted for ever; the proxy never served.
  const { proxy, sup, port, log, good } = await denoWorkers(origin.port!, file)
  let pids: number[] = []
  try {
    // Both workers serving (a worker still starting would read the broken file below at start-up).
    for (let i = 0; i < 200 && pids.length < 2; i++) (await Bun.sleep(50), (pids = listening(port)))
    expect(pids).toHaveLength(2)
    expect(await (await fetch(proxy.url)).text()).toBe('ok')
    writeFileSync(file, `${good}garbage = [\n`)
    process.kill(pids[0]!, 'SIGKILL')
    for (let i = 0; i < 200 && !log().includes('cannot start again'); i++) await Bun.sleep(25)
    expect(log()).toContain('cannot start again')
    expect(proxy.child.exitCode).toBeNull()
    expect(await (await fetch(proxy.url)).text()).toBe('ok')
    // The supervisor killed: the survivor sees its IPC channel close, drains and exits.
    pids = listening(port)
    expect(pids).toHaveLength(1)
    process.kill(sup, 'SIGKILL')
    for (let i = 0; i < 200 && pids.some(alive); i++) await Bun.sleep(25)
    expect(pids.filter(alive)).toEqual([])
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer().once('error', () => resolve(false))
      srv.listen({ host: '127.0.0.1', port }, () => srv.close(() => resolve(true)))
    })
    expect(free).toBe(true)
  } finally {
    killLeft([...pids, ...listening(port)])
    proxy.child.kill('SIGKILL')
  }
}, 60_000)

test('on Deno, --workers 2: SIGHUP and SIGUSR1 to the supervisor reach both workers, which reload and keep serving (Deno\'s ChildProcess.kill closed their IPC channel: they drained or crashed) (outside review, thirteenth round)', async () => {
  const origin = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') })
  origins.push(origin)
  const { proxy, sup, port, log } = await denoWorkers(origin.port!, join(testDir('proxy-deno-workers-'), 'proxy.toml'))
  let pids: number[] = []
  try {
    for (let i = 0; i < 200 && pids.length < 2; i++) (await Bun.sleep(50), (pids = listening(port)))
    expect(pids).toHaveLength(2)
    const codes: number[] = []
    const load = (async () => {
      for (let i = 0; i < 40; i++) {
        codes.push(await fetch(proxy.url).then((r) => r.status, () => 0))
        await Bun.sleep(50)
      }
    })()
    await Bun.sleep(300)
    process.kill(sup, 'SIGHUP')
    for (let i = 0; i < 200 && (log().match(/reloaded/g) ?? []).length < 2; i++) await Bun.sleep(25)
    process.kill(sup, 'SIGUSR1')
    await load
    expect((log().match(/reloaded/g) ?? []).length).toBeGreaterThanOrEqual(2)
    expect(log()).not.toContain('supervisor is gone')
    // Deno (2.9.2+) opens its inspector on 127.0.0.1:9229 for a SIGUSR1, whatever the handler: closed again at once.
    if (log().includes('Debugger listening')) {
      for (let i = 0; i < 100 && !log().includes('inspector for SIGUSR1; closed it'); i++) await Bun.sleep(20)
      expect(log()).toContain('inspector for SIGUSR1; closed it')
    }
    expect(execFileSync('ss', ['-Hltn', 'sport = :9229']).toString().trim()).toBe('')
    expect(log()).not.toContain('Uncaught')
    expect(log()).not.toContain('worker died')
    expect(codes.filter((c) => c !== 200)).toEqual([])
    // The same two workers serve on.
    expect(listening(port).sort()).toEqual([...pids].sort())
  } finally {
    killLeft([...pids, ...listening(port)])
    proxy.child.kill('SIGKILL')
  }
}, 60_000)

test('on Deno, an upstream body cut mid-way is cut for the client and logged once, in the access log: no stack of the stream\'s error on stderr', async () => {
  // Deno.serve prints the error of a Response body stream that fails with console.error unless
  // its onError is given: each cut upstream body left a multi-line RequestFailure stack there.
  const origin = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: (s) => void s.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789') } })
  origins.push(origin)
  const log = join(testDir('proxy-deno-cut-'), 'access.log')
  const proxy = await startProxyProcess(['run', '-A', 'src/main.ts', 'serve', '--upstream', `http://127.0.0.1:${origin.port}`, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', log], DENO)
  let stderr = ''
  proxy.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  try {
    const reply = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(proxy.url).port), '127.0.0.1')
      let got = ''
      const timer = setTimeout(() => s.destroy(), 5000)
      s.on('data', (d) => (got += d.toString('latin1')))
      s.on('error', () => {})
      s.on('close', () => (clearTimeout(timer), resolve(got)))
      s.write('GET /cut HTTP/1.1\r\nHost: a\r\n\r\n')
    })
    // Chunked (Deno.serve's framing for a stream), and cut: no last chunk.
    expect(reply).toStartWith('HTTP/1.1 200 OK\r\n')
    expect(reply).toEndWith('\r\n0123456789\r\n')
  } finally {
    expect(await proxy.stop()).toBe(0)
  }
  expect(stderr).not.toContain('RequestFailure')
  expect(stderr).not.toMatch(/^\s+at /m)
  const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number; error?: string })
  expect(records.map((r) => `${r.status} ${r.error}`)).toEqual(['200 RESET_MID_BODY'])
}, 60_000)

test('on Deno, check marks the [server] keys Deno.serve has no option for as not applied (outside review, fourteenth round: they were printed as applying)', () => {
  const dir = testDir('deno-check')
  const file = join(dir, 'proxy.toml')
  writeFileSync(file, '[server]\nsend_timeout = "5s"\n\n[upstream]\nurl = "http://127.0.0.1:9"\n')
  const out = execFileSync(DENO, ['run', '-A', 'src/main.ts', 'check', '--config', file, '--no-resolve'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  expect(out).toContain('send_timeout = "5s" # not applied on Deno')
  expect(out).toContain('trim_interval = "60s" # not applied on Deno')
  expect(out).toContain('drain_timeout = "30s"\n') // applied there: no mark
}, 60_000)
