/** WebSocket tunnelling and TLS to the upstream, with real clients on loopback. */
import { afterEach, describe, expect, test } from 'bun:test'
import { Harness, waitFor } from '../support/harness.ts'
import { makeCerts } from '../support/certs.ts'

const h = new Harness()
afterEach(() => h.closeAll())

function echoWsOrigin(hostname = '127.0.0.1', port = 0) {
  const closes: { code: number; reason: string }[] = []
  const origin = h.origin({
    hostname,
    port,
    fetch(req, server) {
      const proto = req.headers.get('sec-websocket-protocol')?.split(',')[0]?.trim()
      if (server.upgrade(req, { data: { host: req.headers.get('host') }, headers: proto ? { 'sec-websocket-protocol': proto } : {} })) return undefined
      return new Response('not a websocket', { status: 400 })
    },
    websocket: {
      open(ws: { send(m: string): void; data: { host: string } }) {
        ws.send(`hello from ${ws.data.host}`)
      },
      message(ws: { send(m: string | Uint8Array): void; close(c?: number, r?: string): void }, m: string | Uint8Array) {
        if (m === 'please close') ws.close(4321, 'origin says bye')
        else ws.send(m)
      },
      close(_ws: unknown, code: number, reason: string) {
        closes.push({ code, reason })
      },
    },
  } as Parameters<typeof h.origin>[0])
  return { origin, closes }
}

function openWs(url: string, protocols?: string[]): Promise<{ ws: WebSocket; messages: unknown[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols)
    const messages: unknown[] = []
    ws.binaryType = 'arraybuffer'
    ws.onmessage = (e) => messages.push(e.data)
    ws.onopen = () => resolve({ ws, messages })
    ws.onerror = (e) => reject(new Error(`ws error ${(e as ErrorEvent).message}`))
    h.track(() => ws.close())
  })
}

describe('WebSocket', () => {
  test('echo both ways, text and binary, with the subprotocol and Host passed on', async () => {
    const { origin } = echoWsOrigin()
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}`, host_header: 'ws.origin.test' } })
    const { ws, messages } = await openWs(url.replace('http', 'ws') + '/chat', ['chat.v2', 'chat.v1'])
    expect(ws.protocol).toBe('chat.v2')
    ws.send('ping-1')
    ws.send(new Uint8Array([1, 2, 3]))
    expect(await waitFor(() => messages.length >= 3)).toBe(true)
    expect(messages[0]).toBe('hello from ws.origin.test')
    expect(messages[1]).toBe('ping-1')
    expect(new Uint8Array(messages[2] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]))
  })

  test('close codes pass both ways', async () => {
    const { origin, closes } = echoWsOrigin()
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` } })
    // client -> origin
    const a = await openWs(url.replace('http', 'ws'))
    a.ws.close(4001, 'client done')
    expect(await waitFor(() => closes.length === 1)).toBe(true)
    expect(closes[0]).toEqual({ code: 4001, reason: 'client done' })
    // origin -> client
    const b = await openWs(url.replace('http', 'ws'))
    const closed = new Promise<CloseEvent>((r) => (b.ws.onclose = r))
    b.ws.send('please close')
    const ev = await closed
    expect(ev.code).toBe(4321)
    expect(ev.reason).toBe('origin says bye')
  })

  test('a refused upstream gives the client a 502, not a hung upgrade', async () => {
    const dead = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = dead.port
    dead.stop(true)
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${port}`, retries: '0' } })
    const res = await fetch(url, { headers: { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } })
    expect(res.status).toBe(502)
  })
})

describe('TLS', () => {
  test('https upstream: verified against the test CA with SNI, dialled by IP', async () => {
    const certs = makeCerts(['origin.test'])
    let sni = ''
    const origin = h.origin({
      tls: { cert: certs.cert, key: certs.key },
      fetch(req) {
        sni = req.headers.get('host') ?? ''
        return new Response('secure')
      },
    } as Parameters<typeof h.origin>[0])
    const { url } = h.proxy(
      { upstream: { url: `https://origin.test:${origin.port}`, ca_file: certs.caFile } },
      { addresses: [{ address: '127.0.0.1', family: 4 }] },
    )
    const res = await fetch(url)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('secure')
    expect(sni).toBe(new URL(url).host)
  })

  test('a certificate for another name fails (502 TLS_FAILED), and --upstream-insecure skips the check', async () => {
    const certs = makeCerts(['origin.test'])
    const origin = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('secure') } as Parameters<typeof h.origin>[0])
    const wrong = h.proxy(
      { upstream: { url: `https://wrong.test:${origin.port}`, ca_file: certs.caFile, retries: '0' } },
      { addresses: [{ address: '127.0.0.1', family: 4 }] },
    )
    const res = await fetch(wrong.url)
    expect(res.status).toBe(502)
    expect(h.records.at(-1)!.error).toBe('TLS_FAILED')
    const insecure = h.proxy(
      { upstream: { url: `https://wrong.test:${origin.port}`, insecure: true } },
      { addresses: [{ address: '127.0.0.1', family: 4 }] },
    )
    const ok = await fetch(insecure.url)
    expect(ok.status).toBe(200)
  })

  test('an untrusted CA fails without ca_file', async () => {
    const certs = makeCerts(['origin.test'])
    const origin = h.origin({ tls: { cert: certs.cert, key: certs.key }, fetch: () => new Response('secure') } as Parameters<typeof h.origin>[0])
    const { url } = h.proxy(
      { upstream: { url: `https://origin.test:${origin.port}`, retries: '0' } },
      { addresses: [{ address: '127.0.0.1', family: 4 }] },
    )
    expect((await fetch(url)).status).toBe(502)
  })

  test('TLS termination on the listener', async () => {
    const certs = makeCerts(['proxy.test'], ['127.0.0.1'])
    const origin = h.origin({ fetch: (req) => new Response(req.headers.get('x-forwarded-proto')) })
    const { url } = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { tls_cert: certs.certFile, tls_key: certs.keyFile } })
    expect(url.startsWith('https://')).toBe(true)
    const res = await fetch(url, { tls: { ca: certs.ca } } as RequestInit)
    expect(await res.text()).toBe('https')
  })
})
