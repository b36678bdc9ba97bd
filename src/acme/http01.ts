/**
 * The plain-HTTP side of automatic HTTPS (--acme-http-listen): answers HTTP-01 challenges at
 * /.well-known/acme-challenge/<token> (RFC 8555 §8.3: GET and HEAD; any other method there is a
 * 405) and sends every other request to https with 308 (RFC 9110 §15.4.9, which keeps the
 * method and body); a request without Host (HTTP/1.0) goes to the first --acme name, a
 * malformed Host gets a plain 400. Answers are published to the
 * state directory too, so with several workers on one port whichever worker the CA reaches can
 * answer. Without challenges it is the redirect alone: --http-redirect-listen, in front of a
 * listener with its own certificate. The runtime's server is enough here (runtime/listener.ts:
 * Bun.serve, Deno.serve): short requests, no streaming.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { HostPort } from '../config/schema.ts'
import { ProxyError } from '../lib/errors.ts'
import { listen, type Listener } from '../runtime/listener.ts'
import { listenFailureReason } from '../lib/listen-error.ts'
import { hostPort } from '../lib/net.ts'
import { httpDateNow } from '../lib/clock.ts'
import type { LogFn } from '../lib/logger.ts'
import type { ChallengeStore } from './order.ts'
import type { StateStore } from './store.ts'

const PREFIX = '/.well-known/acme-challenge/'
/** Host header: a name or IPv4 with an optional (maybe empty) port, or a bracketed IPv6 literal (RFC 9110 §7.2). */
const HOST_RE = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{0,5}))?$/

/** Answers kept in memory and mirrored to the state directory for the other workers. */
export class FileChallengeStore implements ChallengeStore {
  private readonly mem = new Map<string, string>()
  constructor(private readonly store: StateStore) {}

  publish(token: string, keyAuthorization: string): void {
    this.mem.set(token, keyAuthorization)
    const file = this.store.challengeFile(token)
    if (file) writeFileSync(file, keyAuthorization, { mode: 0o644 })
  }

  unpublish(token: string): void {
    this.mem.delete(token)
    const file = this.store.challengeFile(token)
    if (file) rmSync(file, { force: true })
  }

  lookup(token: string): string | undefined {
    const hit = this.mem.get(token)
    if (hit !== undefined) return hit
    const file = this.store.challengeFile(token)
    if (!file) return undefined
    try {
      return readFileSync(file, 'utf8')
    } catch {
      return undefined
    }
  }
}

export interface Http01Options {
  listen: HostPort
  /** The HTTPS port redirects point at; 443 is left out of the URL. */
  readonly httpsPort: number
  /** HTTP-01 answers; undefined: a redirect listener only (every path is redirected). */
  challenges: { lookup(token: string): string | undefined } | undefined
  /** The setting that asked for this listener, for errors and logs (acme.http_listen by default). */
  setting?: { key: string; flag: string; what: string }
  /** Where a request without Host (HTTP/1.0, RFC 9112 §3.2) is redirected: the first --acme name. */
  defaultHost?: string
  reusePort: boolean
  log?: LogFn
  /** Injected for tests: the clock of the unknown-token log's throttle (monotonic: it times a second). */
  monoMs?: () => number
}

/** Requests for unknown tokens (scanners, a CA retrying after we gave up) log one line a second at most. */
const UNKNOWN_TOKEN_LOG_EVERY_MS = 1000

const ACME_SETTING = { key: 'acme.http_listen', flag: '--acme-http-listen', what: 'HTTP-01 challenges and https redirects' }

export class Http01Server {
  private server: Listener | undefined
  private unknownLoggedAtMonoMs = -Infinity
  private unknownNotLogged = 0

  constructor(private readonly opts: Http01Options) {}

  start(): this {
    const { listen: at } = this.opts
    const setting = this.opts.setting ?? ACME_SETTING
    try {
      // Never a development error page (source lines, paths) to whoever connects to port 80 (listener.ts).
      this.server = listen({
        hostname: at.host,
        port: at.port,
        tls: undefined,
        reusePort: this.opts.reusePort,
        idleTimeoutS: 10,
        // Any declared length: the runtime reads past an unread body and drops it, the connection kept (a 413 for a large form POST stopped the redirect; nginx redirects it too).
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        fetch: (req) => this.answer(req),
        onError: (err) => this.opts.log?.('error', `${setting.key}: the listener failed on a request`, { error: err instanceof Error ? err.message : String(err) }),
      })
    } catch (err) {
      // A start failure like the proxy's own listener (E_LISTEN, exit 3).
      const ca = this.opts.challenges ? '; the CA must reach it on port 80' : ''
      // A proxy draining after SIGTERM keeps ACME's port while an order of its own ends (serve.ts): stopping it would cut that order.
      const draining = this.opts.challenges ? ' (a proxy that is draining keeps it until its ACME order ends: start again once it has exited)' : ''
      throw new ProxyError('E_LISTEN', `cannot listen on ${hostPort(at.host, at.port)} for ${setting.what}: ${listenFailureReason(err)}; stop the process that uses that port (ss -tanp 'sport = :${at.port}' shows it)${draining}, or choose another address with ${setting.flag} <host:port> (${setting.key} in the config file)${ca}`, { cause: err })
    }
    return this
  }

  get port(): number {
    return this.server?.port ?? 0
  }

  answer(req: Request): Response {
    // CONNECT's target is an authority ("a.test:443"), not a path to redirect; nginx says 405 too.
    if (req.method === 'CONNECT') return plain(405, 'CONNECT is not served here\n', { allow: 'GET, HEAD' })
    const target = originForm(req.url)
    if (target === undefined) return plain(400, 'bad request target\n')
    const query = target.indexOf('?')
    const path = query < 0 ? target : target.slice(0, query)
    if (this.opts.challenges && path.startsWith(PREFIX)) {
      // RFC 8555 §8.3: the CA GETs the answer. HEAD is GET without the body (RFC 9110 §9.3.2);
      // anything else is 405 whether or not the token is known, and a 405 names what is allowed (§15.5.6).
      const head = req.method === 'HEAD'
      if (req.method !== 'GET' && !head) return plain(405, 'only GET and HEAD are served on the challenge path\n', { allow: 'GET, HEAD' })
      const token = path.slice(PREFIX.length)
      const keyAuth = this.opts.challenges.lookup(token)
      if (keyAuth === undefined) {
        this.logUnknownToken(token)
        return plain(404, 'no such challenge\n')
      }
      this.opts.log?.('info', 'acme: http-01 challenge answered', { token, ...(head ? { method: 'HEAD' } : {}) })
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(keyAuth)), date: httpDateNow() }
      return new Response(head ? null : keyAuth, { headers })
    }
    const name = redirectName(req.headers.get('host'), this.opts.defaultHost)
    if (name === undefined) return plain(400, 'a valid Host header is needed to redirect to https\n')
    const port = this.opts.httpsPort === 443 ? '' : `:${this.opts.httpsPort}`
    return new Response(null, { status: 308, headers: { location: `https://${name}${port}${target}`, date: httpDateNow() } })
  }

  private logUnknownToken(token: string): void {
    const nowMonoMs = this.opts.monoMs ? this.opts.monoMs() : performance.now()
    if (nowMonoMs - this.unknownLoggedAtMonoMs < UNKNOWN_TOKEN_LOG_EVERY_MS) {
      this.unknownNotLogged++
      return
    }
    this.opts.log?.('warn', 'acme: http-01 challenge for an unknown token', { token, ...(this.unknownNotLogged > 0 ? { more_not_logged: this.unknownNotLogged } : {}) })
    this.unknownLoggedAtMonoMs = nowMonoMs
    this.unknownNotLogged = 0
  }

  async close(): Promise<void> {
    await this.server?.stop(true)
    this.server = undefined
  }
}

function plain(status: number, body: string, headers: Record<string, string> = {}): Response {
  // Date on every answer (RFC 9110 §6.6.1): Bun.serve adds one to GET answers but not to HEAD ones.
  return new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', date: httpDateNow(), ...headers } })
}

/**
 * The request target as path and query. Bun gives an absolute URL when the Host header made
 * one, else the target as sent ("/x"); new URL() would throw on the second, so neither is parsed.
 */
function originForm(url: string): string | undefined {
  if (url.startsWith('/')) return url
  const rest = /^https?:\/\/[^/?#]*(.*)$/is.exec(url)?.[1]
  if (rest === undefined) return undefined
  if (rest === '' || rest.startsWith('?')) return `/${rest}`
  return rest.startsWith('/') ? rest : undefined
}

/**
 * The name to redirect to: the Host header's, without its port. A request with no Host at all
 * (legal in HTTP/1.0) goes to `fallback`; a Host that is present but not a host[:port] (empty,
 * "a b", "user@host", a port over 65535) gets undefined, which is a 400.
 */
function redirectName(host: string | null, fallback: string | undefined): string | undefined {
  if (host === null) return fallback
  const m = HOST_RE.exec(host)
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined
  return m[1]
}
