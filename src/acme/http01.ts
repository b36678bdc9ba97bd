/**
 * The plain-HTTP side of automatic HTTPS (--acme-http-listen): answers HTTP-01 challenges at
 * /.well-known/acme-challenge/<token> (RFC 8555 §8.3) and sends every other request to https
 * with 308 (RFC 9110 §15.4.9, which keeps the method and body). Answers are published to the
 * state directory too, so with several workers on one port whichever worker the CA reaches can
 * answer. Bun.serve is enough here: short requests, no streaming (automatic HTTPS needs the
 * own listener, hence Bun, anyway).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'bun'
import type { HostPort } from '../config/schema.ts'
import type { LogFn } from '../lib/logger.ts'
import { AcmeError } from './errors.ts'
import type { ChallengeStore } from './order.ts'
import type { StateStore } from './store.ts'

const PREFIX = '/.well-known/acme-challenge/'
/** Host header: a name or IPv4 with an optional port, or a bracketed IPv6 literal (RFC 9110 §7.2). */
const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

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
  challenges: { lookup(token: string): string | undefined }
  reusePort: boolean
  log?: LogFn
}

export class Http01Server {
  private server: Server<undefined> | undefined

  constructor(private readonly opts: Http01Options) {}

  start(): this {
    const { listen } = this.opts
    try {
      this.server = Bun.serve({
        hostname: listen.host,
        port: listen.port,
        reusePort: this.opts.reusePort,
        idleTimeout: 10,
        maxRequestBodySize: 64 * 1024,
        fetch: (req) => this.answer(req),
      })
    } catch (err) {
      throw new AcmeError('E_ACME_STATE', `cannot listen on ${listen.host}:${listen.port} for HTTP-01 challenges: ${(err as Error).message}; port 80 must be free (or set --acme-http-listen)`, { cause: err })
    }
    return this
  }

  get port(): number {
    return this.server?.port ?? 0
  }

  answer(req: Request): Response {
    const url = new URL(req.url)
    if (url.pathname.startsWith(PREFIX)) {
      const token = url.pathname.slice(PREFIX.length)
      const keyAuth = this.opts.challenges.lookup(token)
      this.opts.log?.(keyAuth ? 'info' : 'warn', keyAuth ? 'acme: http-01 challenge answered' : 'acme: http-01 challenge for an unknown token', { token })
      if (keyAuth === undefined) return new Response('no such challenge\n', { status: 404 })
      return new Response(keyAuth, { headers: { 'content-type': 'application/octet-stream' } })
    }
    const host = req.headers.get('host')
    if (!host || !HOST_RE.test(host)) return new Response('a Host header is needed to redirect to https\n', { status: 400 })
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '')
    const port = this.opts.httpsPort === 443 ? '' : `:${this.opts.httpsPort}`
    return new Response(null, { status: 308, headers: { location: `https://${name}${port}${url.pathname}${url.search}` } })
  }

  async close(): Promise<void> {
    await this.server?.stop(true)
    this.server = undefined
  }
}
