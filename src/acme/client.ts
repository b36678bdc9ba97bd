/**
 * The RFC 8555 protocol client: the directory, nonces, signed POSTs (with the badNonce retry of
 * §6.5), accounts (§7.3), orders, authorizations and challenges (§7.4, §7.5), finalization,
 * certificate download (§7.4.2), polling that honours Retry-After (§7.4, §8.2), and renewal
 * information (RFC 9773). It knows nothing of files or schedules: order.ts runs one issuance,
 * manager.ts decides when.
 */
import type { KeyObject } from 'node:crypto'
import type { LogFn } from '../lib/logger.ts'
import { AcmeError, parseRetryAfterMs, problemError, termsOfServiceLink, type Problem } from './errors.ts'
import { signJws } from './jws.ts'

export interface Directory {
  newNonce: string
  newAccount: string
  newOrder: string
  renewalInfo?: string
  meta?: { termsOfService?: string }
}

export type Status = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid' | 'expired' | 'deactivated' | 'revoked'

export interface Order {
  status: Status
  identifiers: { type: string; value: string }[]
  authorizations: string[]
  finalize: string
  certificate?: string
  error?: Problem
}

export interface Challenge {
  type: string
  url: string
  status: Status
  token: string
  error?: Problem
}

export interface Authorization {
  status: Status
  identifier: { type: string; value: string }
  challenges: Challenge[]
}

export interface RenewalInfo {
  startMs: number
  endMs: number
  /** When to ask again (Retry-After, RFC 9773 §4.3). */
  retryAfterMs: number | undefined
}

export interface AcmeClientOptions {
  directoryUrl: string
  accountKey: KeyObject
  /** Where the account key is kept, for the advice when the CA refuses the account. */
  accountKeyFile?: string
  /** PEM bundle that verifies the ACME server's HTTPS (private or test CAs); default: system roots. */
  caPem?: string
  /** Injected for tests; default: the runtime's fetch. */
  fetch?: typeof fetch
  log?: LogFn
  /** Poll interval when the server gives no Retry-After, and the shortest wait when it gives one. */
  pollIntervalMs?: number
  /** Longest wait for one authorization or order to settle. */
  pollTimeoutMs?: number
  /** Longest single HTTP exchange with the ACME server. */
  requestTimeoutMs?: number
  sleep?: (ms: number) => Promise<void>
}

/** RFC 8555 §6.5 says to retry a badNonce with the fresh nonce; bounded, as pebble rejects 5% on purpose. */
const MAX_BAD_NONCE_RETRIES = 10
/** ACME replies (JSON, a PEM chain) are small; anything larger is a broken server. */
const MAX_REPLY_BYTES = 1024 * 1024
/** A server's Retry-After is honoured but capped, so one bad header cannot stall an order for days. */
const MAX_POLL_WAIT_MS = 60_000

interface Reply {
  status: number
  headers: Headers
  text: string
}

export class AcmeClient {
  private dir: Directory | undefined
  private nonce: string | undefined
  private kid: string | undefined
  private readonly fetchFn: typeof fetch
  private readonly sleep: (ms: number) => Promise<void>

  constructor(private readonly opts: AcmeClientOptions) {
    this.fetchFn = opts.fetch ?? fetch
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)))
  }

  get accountUrl(): string | undefined {
    return this.kid
  }

  async directory(): Promise<Directory> {
    if (this.dir) return this.dir
    const res = await this.http(this.opts.directoryUrl, { method: 'GET' }, 'fetching the ACME directory')
    // A CA down for maintenance answers 503 with Retry-After (RFC 9110 §10.2.3): the back-off honours it.
    if (res.status !== 200) throw new AcmeError('E_ACME', `fetching the ACME directory ${this.opts.directoryUrl}: status ${res.status}; check --acme-directory`, { httpStatus: res.status, retryAfterMs: retryAfter(res) })
    const dir = parseJson(res.text, 'the ACME directory') as Directory
    if (![dir.newNonce, dir.newAccount, dir.newOrder].every((u) => typeof u === 'string' && u !== '') || (dir.renewalInfo !== undefined && typeof dir.renewalInfo !== 'string')) throw new AcmeError('E_ACME', `${this.opts.directoryUrl} is not an ACME directory (no newNonce/newAccount/newOrder); check --acme-directory`)
    this.dir = dir
    return dir
  }

  /**
   * Creates the account, or finds the existing one for this key: newAccount answers 200 with the
   * same account URL when the key is known (RFC 8555 §7.3.1), so a restart needs no stored URL.
   */
  async account(email: string | undefined): Promise<string> {
    const dir = await this.directory()
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true }
    if (email) payload.contact = [`mailto:${email}`]
    const res = await this.post(dir.newAccount, payload, 'creating the ACME account', true)
    const kid = res.headers.get('location')
    if (!kid) throw new AcmeError('E_ACME', 'creating the ACME account: the server sent no account URL (Location)')
    this.kid = kid
    this.opts.log?.(res.status === 201 ? 'info' : 'debug', res.status === 201 ? 'acme: account created' : 'acme: account found', { account: kid })
    return kid
  }

  async newOrder(names: readonly string[], replaces?: string): Promise<{ url: string; order: Order }> {
    const dir = await this.directory()
    const payload: Record<string, unknown> = { identifiers: names.map((value) => ({ type: 'dns', value })) }
    // RFC 9773 §5: say which certificate this one replaces, when the server does ARI.
    if (replaces && dir.renewalInfo) payload.replaces = replaces
    const res = await this.post(dir.newOrder, payload, `new order for ${names.join(',')}`)
    const url = res.headers.get('location')
    if (!url) throw new AcmeError('E_ACME', 'new order: the server sent no order URL (Location)')
    return { url, order: asOrder(parseJson(res.text, 'the order'), 'new order') }
  }

  async getOrder(url: string): Promise<Order> {
    return asOrder(parseJson((await this.post(url, undefined, 'reading the order')).text, 'the order'), 'reading the order')
  }

  async getAuthorization(url: string): Promise<Authorization> {
    return asAuthorization(parseJson((await this.post(url, undefined, 'reading the authorization')).text, 'the authorization'), 'reading the authorization')
  }

  /** Tells the server the challenge response is in place (RFC 8555 §7.5.1: an empty JSON object). */
  async respond(challengeUrl: string): Promise<void> {
    await this.post(challengeUrl, {}, 'answering the challenge')
  }

  async finalize(finalizeUrl: string, csrDer: Uint8Array): Promise<Order> {
    const res = await this.post(finalizeUrl, { csr: Buffer.from(csrDer).toString('base64url') }, 'finalizing the order')
    return asOrder(parseJson(res.text, 'the order'), 'finalizing the order')
  }

  /** The PEM chain, leaf first (RFC 8555 §7.4.2). */
  async downloadCertificate(url: string): Promise<string> {
    const res = await this.post(url, undefined, 'downloading the certificate', false, 'application/pem-certificate-chain')
    if (!res.text.includes('-----BEGIN CERTIFICATE-----')) throw new AcmeError('E_ACME', 'downloading the certificate: the reply is not a PEM chain')
    return res.text
  }

  /**
   * Polls a resource until `done` says so, honouring Retry-After; throws on `failed` or timeout.
   * `parse` checks the reply's shape (asOrder, asAuthorization); by default only its status.
   */
  async poll<T extends { status: Status }>(url: string, done: (s: Status) => boolean, what: string, parse: (v: unknown, what: string) => T = asStatus as (v: unknown, what: string) => T): Promise<T> {
    // A duration, on the monotonic clock; Retry-After (an HTTP date maybe) is read by the wall clock.
    const deadlineMonoMs = performance.now() + (this.opts.pollTimeoutMs ?? 5 * 60_000)
    let retryAfterMs: number | undefined
    const intervalMs = this.opts.pollIntervalMs ?? 1000
    // Without a Retry-After the wait grows by half each poll, up to ten intervals (1 s, 1.5 s,
    // 2.3 s ... 10 s): a resource stuck pending costs the CA ~35 polls in 5 minutes, not 300.
    let backoffMs = intervalMs
    for (let i = 0; i < 10_000; i++) {
      const res = await this.post(url, undefined, what)
      const value = parse(parseJson(res.text, what), what)
      if (done(value.status)) return value
      if (value.status === 'invalid' || value.status === 'expired' || value.status === 'deactivated' || value.status === 'revoked') return value
      // Retry-After within bounds: no shorter than the poll interval (0 or a past date would be a
      // busy loop against the CA), no longer than MAX_POLL_WAIT_MS.
      retryAfterMs = parseRetryAfterMs(res.headers.get('retry-after'), Date.now())
      const waitMs = Math.min(MAX_POLL_WAIT_MS, retryAfterMs === undefined ? backoffMs : Math.max(intervalMs, retryAfterMs))
      if (retryAfterMs === undefined) backoffMs = Math.min(Math.round(backoffMs * 1.5), intervalMs * 10)
      if (performance.now() + waitMs > deadlineMonoMs) break
      await this.sleep(waitMs)
    }
    // The CA's last Retry-After goes with the error: the next attempt is not sooner than it asked.
    const asked = retryAfterMs === undefined ? '' : `; the CA asked to wait ${Math.ceil(retryAfterMs / 1000)} s`
    throw new AcmeError('E_ACME_TIMEOUT', `${what}: still not finished after ${Math.round((this.opts.pollTimeoutMs ?? 300_000) / 1000)} s${asked}; the proxy retries later`, { retryAfterMs })
  }

  /** RFC 9773 §4.3: the CA's suggested renewal window; undefined when it does not offer ARI. */
  async renewalInfo(certId: string): Promise<RenewalInfo | undefined> {
    const dir = await this.directory()
    if (!dir.renewalInfo) return undefined
    const res = await this.http(`${dir.renewalInfo.replace(/\/$/, '')}/${certId}`, { method: 'GET' }, 'reading renewal information')
    if (res.status !== 200) return undefined
    const body = parseJson(res.text, 'renewal information') as { suggestedWindow?: { start?: string; end?: string } }
    const startMs = Date.parse(body.suggestedWindow?.start ?? '')
    const endMs = Date.parse(body.suggestedWindow?.end ?? '')
    if (Number.isNaN(startMs) || Number.isNaN(endMs) || endMs < startMs) return undefined
    return { startMs, endMs, retryAfterMs: parseRetryAfterMs(res.headers.get('retry-after'), Date.now()) }
  }

  /** One signed POST; a badNonce is retried with the nonce that came with it (RFC 8555 §6.5). */
  private async post(url: string, payload: unknown, what: string, useJwk = false, accept?: string): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.takeNonce()
      if (!useJwk && !this.kid) throw new AcmeError('E_ACME', `${what}: no account yet; call account() first`)
      const jws = signJws(this.opts.accountKey, { url, nonce, kid: useJwk ? undefined : this.kid }, payload)
      const headers: Record<string, string> = { 'content-type': 'application/jose+json' }
      if (accept) headers.accept = accept
      const res = await this.http(url, { method: 'POST', headers, body: JSON.stringify(jws) }, what)
      if (res.status < 400) return res
      const problem = (tryJson(res.text) ?? { detail: res.text.slice(0, 200) }) as Problem
      if (problem.type === 'urn:ietf:params:acme:error:badNonce' && attempt < MAX_BAD_NONCE_RETRIES) {
        this.opts.log?.('debug', 'acme: badNonce, retrying with a fresh nonce', { url, attempt: attempt + 1 })
        continue
      }
      throw problemError(what, problem, res.status, { retryAfterMs: retryAfter(res), termsOfService: termsOfServiceLink(res.headers.get('link')), accountKeyFile: this.opts.accountKeyFile ?? 'the account key in the state directory' })
    }
  }

  private async takeNonce(): Promise<string> {
    const saved = this.nonce
    this.nonce = undefined
    if (saved) return saved
    const dir = await this.directory()
    const res = await this.http(dir.newNonce, { method: 'HEAD' }, 'getting a nonce')
    const nonce = res.headers.get('replay-nonce')
    if (!nonce) throw new AcmeError('E_ACME', `getting a nonce from ${dir.newNonce}: no Replay-Nonce header (status ${res.status})`, { httpStatus: res.status, retryAfterMs: retryAfter(res) })
    this.nonce = undefined // http() kept it; it is used now, and a nonce is good once
    return nonce
  }

  /** One HTTP exchange, with a timeout and a bounded reply; every reply's Replay-Nonce is kept. */
  private async http(url: string, init: RequestInit, what: string): Promise<Reply> {
    this.checkScheme(url, what)
    let res: Response
    const timeoutMs = this.opts.requestTimeoutMs ?? 30_000
    try {
      res = await this.fetchFn(url, {
        ...init,
        headers: { 'user-agent': 'proxy-acme/1', ...(init.headers as Record<string, string> | undefined) },
        // Not followed: a signed request is for its URL (RFC 8555 §6.4), and a hop could leave https.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        ...(this.opts.caPem ? { tls: { ca: this.opts.caPem } } : {}),
      } as RequestInit)
    } catch (err) {
      throw new AcmeError('E_ACME_HTTP', `${what}: cannot reach the ACME server at ${url}: ${(err as Error).message}; check --acme-directory, DNS and --acme-ca`, { cause: err })
    }
    const nonce = res.headers.get('replay-nonce')
    if (nonce) this.nonce = nonce
    if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
      void res.body?.cancel()
      const to = JSON.stringify(absoluteUrl(res.headers.get('location') ?? '', url).slice(0, 200))
      throw new AcmeError('E_ACME', `${what}: the ACME server at ${url} redirected (${res.status}) to ${to}; ACME requests are not redirected (each is signed for its URL, RFC 8555 §6.4). If it is the directory, give that URL to --acme-directory`, { httpStatus: res.status })
    }
    let text = ''
    try {
      if (init.method !== 'HEAD') text = await readLimited(res, what)
    } catch (err) {
      if (err instanceof AcmeError) throw err
      // The same timeout covers the body: a CA that sends its headers and then trickles.
      const how = (err as Error).name === 'TimeoutError' ? `did not finish within ${timeoutMs / 1000} s` : `was cut off (${(err as Error).message})`
      throw new AcmeError('E_ACME_HTTP', `${what}: the reply of the ACME server at ${url} ${how}; the proxy retries later`, { cause: err })
    }
    return { status: res.status, headers: res.headers, text }
  }

  /**
   * Every URL the server hands out (directory entries, Location, order and authorization fields)
   * is fetched: it must be https like the directory (RFC 8555 §6.1). Not http, which would carry
   * the signed requests and the certificate in clear text, and not file:, which the runtime's
   * fetch reads from the local disk. (Tests run a directory on http: then http is the scheme.)
   */
  private checkScheme(url: string, what: string): void {
    const want = new URL(this.opts.directoryUrl).protocol
    let got: string | undefined
    try {
      got = new URL(url).protocol
    } catch {
      // not an absolute URL
    }
    if (got !== want) throw new AcmeError('E_ACME', `${what}: the ACME server gave the URL ${JSON.stringify(String(url).slice(0, 200))}, which is not ${want.slice(0, -1)}; ACME is spoken over HTTPS only (RFC 8555 §6.1); check --acme-directory`)
  }
}

async function readLimited(res: Response, what: string): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const parts: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.length
    if (total > MAX_REPLY_BYTES) {
      void reader.cancel()
      throw new AcmeError('E_ACME', `${what}: the ACME server's reply is over ${MAX_REPLY_BYTES} bytes`)
    }
    parts.push(value)
  }
  return Buffer.concat(parts).toString('utf8')
}

function absoluteUrl(location: string, base: string): string {
  try {
    return new URL(location, base).href
  } catch {
    return location
  }
}

function retryAfter(res: Reply): number | undefined {
  return parseRetryAfterMs(res.headers.get('retry-after'), Date.now())
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The fields of an order (RFC 8555 §7.1.3) the client relies on; else an E_ACME naming what is wrong. */
export function asOrder(v: unknown, what: string): Order {
  const o = asStatus(v, what) as Partial<Order>
  if (!Array.isArray(o.authorizations) || !o.authorizations.every((u) => typeof u === 'string')) throw malformed(what, 'an order', 'no "authorizations" list of URLs')
  if (typeof o.finalize !== 'string') throw malformed(what, 'an order', 'no "finalize" URL')
  if (o.certificate !== undefined && typeof o.certificate !== 'string') throw malformed(what, 'an order', '"certificate" is not a URL')
  return o as Order
}

/** The fields of an authorization (RFC 8555 §7.1.4), and of its http-01 challenges, the client relies on. */
export function asAuthorization(v: unknown, what: string): Authorization {
  const a = asStatus(v, what) as Partial<Authorization>
  if (typeof a.identifier?.value !== 'string') throw malformed(what, 'an authorization', 'no "identifier" value')
  if (!Array.isArray(a.challenges) || !a.challenges.every((c) => typeof c?.type === 'string')) throw malformed(what, 'an authorization', 'no "challenges" list')
  for (const c of a.challenges) {
    if (c.type === 'http-01' && (typeof c.url !== 'string' || typeof c.token !== 'string' || typeof c.status !== 'string')) throw malformed(what, 'an authorization', 'an http-01 challenge without "url", "token" or "status"')
  }
  return a as Authorization
}

function asStatus(v: unknown, what: string): { status: Status } {
  if (Array.isArray(v) || typeof (v as { status?: unknown }).status !== 'string') throw malformed(what, 'an ACME object', 'no "status"')
  return v as { status: Status }
}

function malformed(what: string, expected: string, why: string): AcmeError {
  return new AcmeError('E_ACME', `${what}: the ACME server's reply is not ${expected} (${why}); the proxy retries later. Check --acme-directory`)
}

function parseJson(text: string, what: string): unknown {
  const v = tryJson(text)
  if (v === undefined || typeof v !== 'object' || v === null) throw new AcmeError('E_ACME', `${what}: the ACME server's reply is not JSON`)
  return v
}
