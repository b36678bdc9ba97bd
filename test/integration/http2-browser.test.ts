/**
 * A real browser over HTTP/2 (issue 16): headless Chromium loads a page through the proxy's TLS
 * listener, and the page pulls a stylesheet, a script and several images from the same origin.
 * The browser trusts only our test server key (--ignore-certificate-errors-spki-list, in an
 * isolated profile), so nothing else about certificate checking is relaxed. Asserted from both
 * sides: the proxy's access log has every resource with protocol HTTP/2, the browser's DOM shows
 * the script ran and the images decoded, and the browser's own net log shows one HTTP/2 session
 * (one connection) to the proxy carrying all of them. Skipped only when chromium is absent.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeCerts } from '../support/certs.ts'
import { Harness, waitFor } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const h = new Harness()
afterEach(() => h.closeAll())
const chromium = spawnSync('sh', ['-c', 'command -v chromium']).stdout.toString().trim()
if (!chromium) console.warn('http2-browser.test.ts: skipped, `chromium` is not installed (Debian package chromium)')
const certs = makeCerts(['proxy.test'], ['127.0.0.1'])

/** base64 of the SHA-256 of the server key's SubjectPublicKeyInfo: what Chromium's SPKI allow-list takes. */
function spkiHash(certFile: string): string {
  const pub = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-pubkey'])
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub })
  return new Bun.CryptoHasher('sha256').update(der).digest('base64')
}

// A 1×1 PNG, so that the browser decodes real images (naturalWidth is 0 for a broken one).
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
const IMAGES = ['/img/1.png', '/img/2.png', '/img/3.png', '/img/4.png', '/img/5.png', '/img/6.png']
const PAGE = `<!doctype html><html><head><title>h2 page</title><link rel="stylesheet" href="/style.css"><script src="/app.js"></script></head>
<body>${IMAGES.map((src) => `<img src="${src}">`).join('')}</body></html>`
// Runs after the images load, and writes what it saw into the DOM that --dump-dom prints.
const SCRIPT = `addEventListener('load', () => {
  const ok = [...document.images].filter((i) => i.complete && i.naturalWidth === 1).length
  const color = getComputedStyle(document.body).color
  document.body.setAttribute('data-result', 'images=' + ok + ' color=' + color)
})`

function origin() {
  return h.origin({
    fetch(req) {
      const path = new URL(req.url).pathname
      if (path === '/') return new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } })
      if (path === '/style.css') return new Response('body { color: rgb(1, 2, 3) }', { headers: { 'content-type': 'text/css' } })
      if (path === '/app.js') return new Response(SCRIPT, { headers: { 'content-type': 'text/javascript' } })
      if (IMAGES.includes(path)) return new Response(PNG, { headers: { 'content-type': 'image/png' } })
      return new Response('not here', { status: 404 })
    },
  })
}

/** The HTTP/2 sessions (one per connection) Chromium opened to host:port, each with the :paths it sent, from its net log. */
function h2Sessions(netLogFile: string, hostPort: string): string[][] {
  const log = JSON.parse(readFileSync(netLogFile, 'utf8')) as {
    constants: { logEventTypes: Record<string, number> }
    events: { type: number; source: { id: number }; params?: { host?: string; headers?: string[] } }[]
  }
  const type = log.constants.logEventTypes
  const sessions = new Map<number, string[]>()
  for (const e of log.events) {
    if (e.type === type['HTTP2_SESSION'] && e.params?.host === hostPort) sessions.set(e.source.id, [])
    if (e.type === type['HTTP2_SESSION_SEND_HEADERS']) {
      const path = e.params?.headers?.find((x) => x.startsWith(':path: '))?.slice(7)
      if (path) sessions.get(e.source.id)?.push(path)
    }
  }
  return [...sessions.values()]
}

describe.if(Boolean(chromium))('headless Chromium over HTTP/2', () => {
  test('a page with a stylesheet, a script and six images comes over h2 on one connection', async () => {
    const o = origin()
    const { proxy } = h.proxy({ upstream: { url: `http://127.0.0.1:${o.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
    const profile = testDir('proxy-chromium-')
    h.track(() => rmSync(profile, { recursive: true, force: true }))
    const netLog = join(profile, 'netlog.json')
    const url = `https://127.0.0.1:${proxy.port}/`
    const p = Bun.spawn(
      [
        chromium,
        '--headless',
        '--no-sandbox', // we run as root in CI containers
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        `--user-data-dir=${profile}`,
        `--ignore-certificate-errors-spki-list=${spkiHash(certs.certFile)}`,
        `--log-net-log=${netLog}`,
        '--virtual-time-budget=5000',
        '--dump-dom',
        url,
      ],
      { stdout: 'pipe', stderr: 'pipe', timeout: 30_000 },
    )
    h.track(() => p.kill())
    const [dom, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
    await p.exited
    if (!dom.includes('data-result')) console.error(stderr.slice(-3000))
    // The browser ran the script, applied the stylesheet and decoded every image.
    expect(dom).toContain(`data-result="images=${IMAGES.length} color=rgb(1, 2, 3)"`)

    // The proxy's side: every resource was requested over HTTP/2 and answered 200.
    const wanted = ['/', '/style.css', '/app.js', ...IMAGES]
    expect(await waitFor(() => wanted.every((w) => h.records.some((r) => r.path === w)))).toBe(true)
    for (const w of wanted) {
      const r = h.records.find((x) => x.path === w)!
      expect([w, r.protocol, r.status]).toEqual([w, 'HTTP/2', 200])
    }
    // The browser's side: one HTTP/2 session (one connection) to the proxy carried them all.
    const sessions = h2Sessions(netLog, `127.0.0.1:${proxy.port}`)
    expect(sessions).toHaveLength(1)
    expect(sessions[0]).toEqual(expect.arrayContaining(wanted))
  }, 40_000)
})
