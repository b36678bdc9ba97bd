/** The HTTP-01 responder's answers: challenge tokens (memory and the shared state directory), 308 redirects, refusals. */
import { afterAll, describe, expect, test } from 'bun:test'
import { rmSync, statSync } from 'node:fs'
import { FileChallengeStore, Http01Server } from '../../src/acme/http01.ts'
import { StateStore } from '../../src/acme/store.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('proxy-http01-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const store = new StateStore(dir, 'https://ca.test/dir')
const mine = new FileChallengeStore(store)
const otherWorker = new FileChallengeStore(store)
const server = (httpsPort: number) => new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort, challenges: otherWorker, reusePort: false })
/** One request on a fresh loopback connection, read until the server closes it. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = ''
    Bun.connect({ hostname: '127.0.0.1', port, socket: { open: (s) => void s.write(text), data: (_s, d) => void (got += d.toString('latin1')), close: () => resolve(got), error: (_s, e) => reject(e) } }).catch(reject)
  })
}
const get = (path: string, host?: string) => new Request(`http://${host ?? 'x.test'}${path}`, { headers: host === undefined ? {} : { host } })

describe('HTTP-01 responder', () => {
  test("answers a token published by another worker (through the state directory), then forgets it", async () => {
    mine.publish('tok_en-1', 'tok_en-1.thumb')
    const res = server(443).answer(get('/.well-known/acme-challenge/tok_en-1', 'a.test'))
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('tok_en-1.thumb')
    mine.unpublish('tok_en-1')
    expect(server(443).answer(get('/.well-known/acme-challenge/tok_en-1', 'a.test')).status).toBe(404)
  })

  test('tokens that are not base64url never become paths', () => {
    expect(store.challengeFile('../account.key')).toBeUndefined()
    expect(server(443).answer(get('/.well-known/acme-challenge/..%2faccount.key', 'a.test')).status).toBe(404)
  })

  test.each([
    [443, 'a.test', '/p?q=1', 'https://a.test/p?q=1'],
    [8443, 'a.test:80', '/', 'https://a.test:8443/'],
    [443, '[::1]:80', '/x', 'https://[::1]/x'],
  ])('https port %d, Host %s %s -> 308 %s', (port, host, path, location) => {
    const res = server(port).answer(get(path, host))
    expect(res.status).toBe(308)
    expect(res.headers.get('location')).toBe(location)
  })

  test('a bad Host is 400, not a redirect somewhere else', () => {
    const req = new Request('http://x.test/', { headers: { host: 'evil.test/path' } })
    expect(server(443).answer(req).status).toBe(400)
  })

  test('on the wire: no Host (HTTP/1.0) redirects to the first name; a bad Host is a short 400, never a 500 with source', async () => {
    const live = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 8443, challenges: otherWorker, defaultHost: 'a.test', reusePort: false }).start()
    try {
      const noHost = await raw(live.port, 'GET /x?y=1 HTTP/1.0\r\n\r\n')
      expect(noHost).toStartWith('HTTP/1.1 308 ')
      expect(noHost).toMatch(/\r\nlocation: https:\/\/a\.test:8443\/x\?y=1\r\n/i)
      for (const host of ['a.test:99999', 'evil@a.test', 'a b', '']) {
        const res = await raw(live.port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        expect(res).toStartWith('HTTP/1.1 400 ')
        expect(res.length).toBeLessThan(400)
        expect(res).not.toContain(process.cwd())
      }
    } finally {
      await live.close()
    }
  })

  test('CONNECT is 405 with Allow: GET, HEAD, not a redirect to a made-up port', async () => {
    const live = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 8443, challenges: otherWorker, reusePort: false }).start()
    try {
      const res = await raw(live.port, 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nConnection: close\r\n\r\n')
      expect(res).toStartWith('HTTP/1.1 405 ')
      expect(res).toMatch(/\r\nallow: GET, HEAD\r\n/i)
      expect(res).not.toMatch(/\r\nlocation:/i)
    } finally {
      await live.close()
    }
  })

  test('the challenge path answers GET and HEAD (same headers, no body); other methods get 405 with Allow: GET, HEAD (RFC 8555 §8.3, RFC 9110 §15.5.6)', async () => {
    mine.publish('tok-methods', 'tok-methods.thumb')
    const live = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 443, challenges: otherWorker, reusePort: false }).start()
    const ask = (method: string, token: string) => raw(live.port, `${method} /.well-known/acme-challenge/${token} HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    try {
      const got = await ask('GET', 'tok-methods')
      expect(got).toStartWith('HTTP/1.1 200 ')
      expect(got).toEndWith('\r\n\r\ntok-methods.thumb')
      const head = await ask('HEAD', 'tok-methods')
      expect(head).toStartWith('HTTP/1.1 200 ')
      expect(head).toMatch(/\r\ncontent-length: 17\r\n/i)
      expect(head).toMatch(/\r\ncontent-type: application\/octet-stream\r\n/i)
      expect(head).toEndWith('\r\n\r\n')
      // One Date on each, HEAD too (RFC 9110 §6.6.1; Bun.serve adds it to GET answers only).
      const redirect = await raw(live.port, 'HEAD /page HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')
      expect(redirect).toStartWith('HTTP/1.1 308 ')
      for (const answer of [got, head, redirect, await ask('HEAD', 'tok-unknown'), await ask('GET', 'tok-unknown')]) expect(answer.match(/\r\ndate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/gi)).toHaveLength(1)
      // The handler itself gives no body for HEAD (not only Bun's writer dropping it).
      const direct = server(443).answer(new Request('http://a.test/.well-known/acme-challenge/tok-methods', { method: 'HEAD' }))
      expect([direct.status, direct.body, direct.headers.get('content-length')]).toEqual([200, null, '17'])
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        for (const token of ['tok-methods', 'tok-unknown']) {
          const res = await ask(method, token)
          expect([method, token, res.slice(0, 13)]).toEqual([method, token, 'HTTP/1.1 405 '])
          expect(res).toMatch(/\r\nallow: GET, HEAD\r\n/i)
          expect(res).not.toContain('thumb')
        }
      }
      // An unknown token is still a 404 for GET and HEAD (the resource does not exist).
      expect(await ask('GET', 'tok-unknown')).toStartWith('HTTP/1.1 404 ')
      expect(await ask('HEAD', 'tok-unknown')).toStartWith('HTTP/1.1 404 ')
    } finally {
      mine.unpublish('tok-methods')
      await live.close()
    }
  })

  test('a failure inside the handler is a short 500 and one log line: no development page', async () => {
    const logged: string[] = []
    const broken = { lookup: (): string | undefined => { throw new Error('disk on fire') } }
    const live = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 443, challenges: broken, reusePort: false, log: (_l, msg, f) => void logged.push(`${msg} ${f?.error}`) }).start()
    try {
      const res = await raw(live.port, 'GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')
      expect(res).toStartWith('HTTP/1.1 500 ')
      expect(res).toEndWith('\r\n\r\n500 internal error\n')
      expect(logged).toEqual(['acme.http_listen: the listener failed on a request disk on fire'])
    } finally {
      await live.close()
    }
  })

  test('unknown tokens log one warning a second at most, with the count of those not logged', () => {
    let nowMs = 5000
    const logged: Record<string, unknown>[] = []
    const s = new Http01Server({ listen: { host: '127.0.0.1', port: 0 }, httpsPort: 443, challenges: otherWorker, reusePort: false, monoMs: () => nowMs, log: (_l, _m, f) => void logged.push(f ?? {}) })
    const ask = (t: string) => expect(s.answer(get(`/.well-known/acme-challenge/${t}`, 'a.test')).status).toBe(404)
    for (let i = 0; i < 5; i++) ask(`scan${i}`)
    nowMs += 999
    ask('scan5')
    expect(logged).toEqual([{ token: 'scan0' }])
    nowMs += 1
    ask('scan6')
    expect(logged).toEqual([{ token: 'scan0' }, { token: 'scan6', more_not_logged: 5 }])
  })

  test('state directories are private', () => {
    expect(statSync(store.caDir).mode & 0o777).toBe(0o700)
  })
})
