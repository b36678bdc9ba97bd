/**
 * The protocol client against a scripted ACME server (a fetch function): the badNonce retry
 * with the nonce from the error reply, Retry-After while polling (and its deadline through a
 * step of the wall clock), and problem documents.
 * The real server flow is covered against pebble in e2e.test.ts.
 */
import { describe, expect, setSystemTime, test } from 'bun:test'
import { AcmeClient } from '../../src/acme/client.ts'
import { AcmeError, termsOfServiceLink } from '../../src/acme/errors.ts'
import { generateAccountKey } from '../../src/acme/jws.ts'

const DIR = 'https://ca.test/dir'

interface Seen {
  method: string
  url: string
  nonce?: string
}

function fakeCa(script: (req: Seen, n: number) => Response | undefined) {
  const seen: Seen[] = []
  let nonceCounter = 0
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input)
    const method = init?.method ?? 'GET'
    const req: Seen = { method, url }
    if (method === 'POST') req.nonce = JSON.parse(Buffer.from(JSON.parse(String(init!.body)).protected, 'base64url').toString()).nonce
    seen.push(req)
    const nonce = `nonce-${++nonceCounter}`
    if (url === DIR) return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' })
    if (url === 'https://ca.test/nonce') return new Response(null, { headers: { 'replay-nonce': nonce } })
    const res = script(req, seen.filter((s) => s.url === url).length)
    if (!res) return new Response('no', { status: 404 })
    res.headers.set('replay-nonce', nonce)
    return res
  }) as typeof fetch
  return { seen, fetchFn }
}

const problem = (type: string, status: number, extra: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail: `${type} detail`, status }), { status, headers: { 'content-type': 'application/problem+json', ...extra } })

describe('AcmeClient', () => {
  test('badNonce is retried with the nonce that came with the error (RFC 8555 §6.5)', async () => {
    const ca = fakeCa((req, n) => {
      if (req.url === 'https://ca.test/acct') return n <= 2 ? problem('badNonce', 400) : new Response('{}', { status: 201, headers: { location: 'https://ca.test/acct/1' } })
      return undefined
    })
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn })
    expect(await client.account('a@b.test')).toBe('https://ca.test/acct/1')
    const posts = ca.seen.filter((s) => s.method === 'POST')
    expect(posts.length).toBe(3)
    // The first POST used the HEAD nonce; each retry used the nonce of the badNonce reply before it.
    expect(ca.seen.filter((s) => s.method === 'HEAD').length).toBe(1)
    expect(new Set(posts.map((p) => p.nonce)).size).toBe(3)
  })

  test('a badNonce that never ends is an error, not a loop', async () => {
    const ca = fakeCa((req) => (req.url === 'https://ca.test/acct' ? problem('badNonce', 400) : undefined))
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn })
    const err = (await client.account(undefined).catch((e) => e)) as AcmeError
    expect(err).toBeInstanceOf(AcmeError)
    expect(err.problemType).toBe('badNonce')
    expect(ca.seen.filter((s) => s.method === 'POST').length).toBe(11)
  })

  test('rateLimited becomes a clear error with Retry-After', async () => {
    const ca = fakeCa((req) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order') return problem('rateLimited', 429, { 'retry-after': '3600' })
      return undefined
    })
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn })
    await client.account(undefined)
    const err = (await client.newOrder(['a.test']).catch((e) => e)) as AcmeError
    expect(err.code).toBe('E_ACME')
    expect(err.problemType).toBe('rateLimited')
    expect(err.httpStatus).toBe(429)
    expect(err.retryAfterMs).toBe(3600_000)
    expect(err.message).toContain('rate limit')
    expect(err.message).toContain('staging')
  })

  test('userActionRequired names the page to visit (instance) and the new terms (Link rel=terms-of-service), RFC 8555 §7.3.3', async () => {
    const ca = fakeCa((req) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order')
        return new Response(JSON.stringify({ type: 'urn:ietf:params:acme:error:userActionRequired', detail: 'Terms of service have changed', status: 403, instance: 'https://ca.test/agree?v=2' }), {
          status: 403,
          headers: { 'content-type': 'application/problem+json', link: '<https://ca.test/dir>;rel="index", <https://ca.test/tos-v2.pdf>;rel="terms-of-service"' },
        })
      return undefined
    })
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn })
    await client.account(undefined)
    const err = (await client.newOrder(['a.test']).catch((e) => e)) as AcmeError
    expect(err.problemType).toBe('userActionRequired')
    expect(err.message).toBe(
      'new order for a.test: ACME server said 403 userActionRequired: Terms of service have changed; visit https://ca.test/agree?v=2; terms of service: https://ca.test/tos-v2.pdf (the CA needs you to act, for example to agree to new terms of service: the page it names says how; the proxy retries with back-off meanwhile)',
    )
    expect(termsOfServiceLink('<https://ca.test/t>; rel=terms-of-service')).toBe('https://ca.test/t')
    expect(termsOfServiceLink('<https://ca.test/t>; rel="terms-of-service-old"')).toBeUndefined()
    expect(termsOfServiceLink(null)).toBeUndefined()
  })

  test('polling waits as long as Retry-After says', async () => {
    const ca = fakeCa((req, n) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order/1') return Response.json({ status: n < 3 ? 'processing' : 'valid' }, { headers: { 'retry-after': String(n + 1) } })
      return undefined
    })
    const waits: number[] = []
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn, sleep: async (ms) => void waits.push(ms) })
    await client.account(undefined)
    const order = await client.poll<{ status: 'valid' }>('https://ca.test/order/1', (s) => s === 'valid', 'order')
    expect(order.status).toBe('valid')
    expect(waits).toEqual([2000, 3000])
  })

  test('a poll that runs out of time carries the CA\'s last Retry-After, so the next attempt is not sooner', async () => {
    const ca = fakeCa((req) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order/1') return Response.json({ status: 'processing' }, { headers: { 'retry-after': '3600' } })
      return undefined
    })
    // The wait (capped at 60 s) does not fit in the 30 s poll deadline: one POST, then the timeout.
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn, sleep: async () => {}, pollTimeoutMs: 30_000 })
    await client.account(undefined)
    const err = (await client.poll('https://ca.test/order/1', (s) => s === 'valid', 'waiting for the certificate').catch((e) => e)) as AcmeError
    expect(err.code).toBe('E_ACME_TIMEOUT')
    expect(err.retryAfterMs).toBe(3600_000)
    expect(err.message).toBe('waiting for the certificate: still not finished after 30 s; the CA asked to wait 3600 s; the proxy retries later')
    expect(ca.seen.filter((s) => s.url === 'https://ca.test/order/1').length).toBe(1)
  })

  test('without Retry-After, polling backs off: each wait half as long again as the last, up to ten intervals', async () => {
    const ca = fakeCa((req, n) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order/1') return Response.json({ status: n < 10 ? 'pending' : 'valid' })
      return undefined
    })
    const waits: number[] = []
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn, sleep: async (ms) => void waits.push(ms) })
    await client.account(undefined)
    await client.poll('https://ca.test/order/1', (s) => s === 'valid', 'authorization')
    expect(waits).toEqual([1000, 1500, 2250, 3375, 5063, 7595, 10000, 10000, 10000])
  })

  test('Retry-After: 0 or a date in the past waits the poll interval, not zero', async () => {
    const ca = fakeCa((req, n) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order/1') return Response.json({ status: n < 3 ? 'processing' : 'valid' }, { headers: { 'retry-after': n === 1 ? '0' : 'Thu, 01 Jan 1970 00:00:00 GMT' } })
      return undefined
    })
    const waits: number[] = []
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn, sleep: async (ms) => void waits.push(ms) })
    await client.account(undefined)
    await client.poll('https://ca.test/order/1', (s) => s === 'valid', 'order')
    expect(waits).toEqual([1000, 1000])
  })

  test('a wall clock stepped forward 2 h while polling does not cut the poll short (its deadline is monotonic)', async () => {
    const ca = fakeCa((req, n) => {
      if (req.url === 'https://ca.test/acct') return new Response('{}', { status: 200, headers: { location: 'https://ca.test/acct/1' } })
      if (req.url === 'https://ca.test/order/1') return Response.json({ status: n < 3 ? 'processing' : 'valid' }, { headers: { 'retry-after': '1' } })
      return undefined
    })
    const step = async () => void setSystemTime(new Date(Date.now() + 2 * 3_600_000))
    const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: ca.fetchFn, sleep: step, pollTimeoutMs: 10_000 })
    try {
      await client.account(undefined)
      const order = await client.poll<{ status: 'valid' }>('https://ca.test/order/1', (s) => s === 'valid', 'order')
      expect(order.status).toBe('valid')
    } finally {
      setSystemTime()
    }
  })

  test('a reply whose body stalls is E_ACME_HTTP naming the request, not a bare "operation timed out"', async () => {
    // Real fetch over loopback: headers and one byte, then nothing.
    const stalled = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{')) }), { headers: { 'content-type': 'application/json' } }) })
    try {
      const client = new AcmeClient({ directoryUrl: `http://127.0.0.1:${stalled.port}/dir`, accountKey: generateAccountKey(), requestTimeoutMs: 200 })
      const err = (await client.directory().catch((e) => e)) as AcmeError
      expect(err).toBeInstanceOf(AcmeError)
      expect(err.code).toBe('E_ACME_HTTP')
      expect(err.message).toBe(`fetching the ACME directory: the reply of the ACME server at http://127.0.0.1:${stalled.port}/dir did not finish within 0.2 s; the proxy retries later`)
    } finally {
      stalled.stop(true)
    }
  })

  test('a URL from the server that is not https (http:, file:) is refused before it is fetched (RFC 8555 §6.1)', async () => {
    for (const bad of ['http://ca.test/order', 'file:///etc/hostname']) {
      const fetched: string[] = []
      const fetchFn = (async (input: string | URL | Request) => {
        const url = String(input)
        fetched.push(url)
        if (url === DIR) return Response.json({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: bad })
        if (url === 'https://ca.test/nonce') return new Response(null, { headers: { 'replay-nonce': `n${fetched.length}` } })
        if (url === 'https://ca.test/acct') return new Response('{}', { status: 201, headers: { location: 'https://ca.test/acct/1', 'replay-nonce': `n${fetched.length}` } })
        return Response.json({ status: 'pending', identifiers: [], authorizations: [], finalize: 'https://ca.test/fin' }, { status: 201, headers: { location: 'https://ca.test/order/1' } })
      }) as typeof fetch
      const client = new AcmeClient({ directoryUrl: DIR, accountKey: generateAccountKey(), fetch: fetchFn })
      await client.account(undefined)
      const err = (await client.newOrder(['a.test']).catch((e) => e)) as AcmeError
      expect(err).toBeInstanceOf(AcmeError)
      expect(err.code).toBe('E_ACME')
      expect(err.message).toBe(`new order for a.test: the ACME server gave the URL "${bad}", which is not https; ACME is spoken over HTTPS only (RFC 8555 §6.1); check --acme-directory`)
      expect(fetched).not.toContain(bad)
    }
  })

  test('a redirect is not followed: a signed request is not re-sent elsewhere, and the error names the target', async () => {
    // Real fetch over loopback: the account request is answered with 307 to another path.
    const requested: string[] = []
    const ca = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(req): Response {
        const { pathname: path, origin: base } = new URL(req.url)
        requested.push(`${req.method} ${path}`)
        if (path === '/dir') return Response.json({ newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order` })
        if (path === '/nonce') return new Response(null, { headers: { 'replay-nonce': `n${requested.length}` } })
        if (path === '/acct') return new Response(null, { status: 307, headers: { location: '/elsewhere' } })
        return new Response('{}', { status: 201, headers: { location: `${base}/acct/1` } })
      },
    })
    try {
      const client = new AcmeClient({ directoryUrl: `http://127.0.0.1:${ca.port}/dir`, accountKey: generateAccountKey() })
      const err = (await client.account(undefined).catch((e) => e)) as AcmeError
      expect(err).toBeInstanceOf(AcmeError)
      expect(err.message).toStartWith(`creating the ACME account: the ACME server at http://127.0.0.1:${ca.port}/acct redirected (307) to "http://127.0.0.1:${ca.port}/elsewhere"`)
      expect(requested).not.toContain('POST /elsewhere')
    } finally {
      ca.stop(true)
    }
  })

  test('an unreachable server is E_ACME_HTTP', async () => {
    const client = new AcmeClient({ directoryUrl: 'https://127.0.0.1:1/dir', accountKey: generateAccountKey() })
    const err = (await client.directory().catch((e) => e)) as AcmeError
    expect(err.code).toBe('E_ACME_HTTP')
  })
})
