/**
 * One issuance, start to finish (RFC 8555 §7.4): new order, an HTTP-01 answer for each pending
 * authorization (§8.3), finalize with a CSR, download the chain and check that it is for our key
 * and every name ordered. The protocol messages are in client.ts; where challenge answers are
 * published is the caller's (http01.ts); when to issue is manager.ts's.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import type { LogFn } from '../lib/logger.ts'
import { certInfo } from './cert-info.ts'
import { chainPem, issuerOrder, parseChain } from './chain.ts'
import { asAuthorization, asOrder, type AcmeClient, type Order } from './client.ts'
import { buildCsr, generateCertificateKey } from './csr.ts'
import { AcmeError, problemError } from './errors.ts'
import { keyAuthorization } from './jws.ts'

/** Where HTTP-01 answers go while a challenge is open; the responder serves them. */
export interface ChallengeStore {
  publish(token: string, keyAuthorization: string): void | Promise<void>
  unpublish(token: string): void | Promise<void>
}

export interface Issued {
  /** PEM chain, leaf first. */
  certPem: string
  /** PEM (PKCS#8) private key of the certificate. */
  keyPem: string
}

export interface IssueOptions {
  client: AcmeClient
  accountKey: KeyObject
  names: readonly string[]
  challenges: ChallengeStore
  log?: LogFn
  /** RFC 9773 certificate ID of the certificate this one replaces. */
  replaces?: string
  /** Injected for tests; default: a new P-256 key. */
  certificateKey?: KeyObject
  /** The clock the issued certificate's validity is checked against; default: Date.now. */
  nowMs?: () => number
}

/** How far a certificate's notBefore may be ahead of this host's clock (the CA's clock may run ahead). */
const CLOCK_SKEW_MS = 5 * 60_000

export async function issueCertificate(opts: IssueOptions): Promise<Issued> {
  const { client, names, log } = opts
  const { url: orderUrl, order } = await newOrder(opts)
  log?.('info', 'acme: order created', { names: names.join(','), order: orderUrl })
  if (order.status === 'pending') {
    for (const authzUrl of order.authorizations) await authorize(opts, authzUrl)
  }
  let current = await client.poll(orderUrl, (s) => s === 'ready' || s === 'valid', 'waiting for the order to become ready', asOrder)
  if (current.status !== 'ready' && current.status !== 'valid') throw orderFailed(current, names)
  const key = opts.certificateKey ?? generateCertificateKey()
  if (current.status === 'ready') {
    await client.finalize(current.finalize, buildCsr(names, key))
    current = await client.poll(orderUrl, (s) => s === 'valid', 'waiting for the certificate to be issued', asOrder)
    if (current.status !== 'valid') throw orderFailed(current, names)
  }
  if (!current.certificate) throw new AcmeError('E_ACME', `order for ${names.join(',')} is valid but has no certificate URL`)
  // Every certificate of the chain must parse, and is stored re-encoded (no stray text or CRLFs).
  const chain = parseChain(await client.downloadCertificate(current.certificate))
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string
  // The chain must be for this key: a CA bug or a reused order must not pair a stranger's cert with our key.
  const leafAt = chain.findIndex((c) => sameKey(c, keyPem))
  if (leafAt < 0) throw new AcmeError('E_ACME', 'the downloaded certificate does not match the key of the CSR')
  // RFC 8555 §9.1: the end-entity certificate comes first; TLS sends the chain as stored, and
  // with an intermediate first the handshake presents the wrong certificate. After it, each
  // certificate's issuer (RFC 8446 §4.4.2): clients that do not reorder fail on a reversed chain.
  if (leafAt > 0) log?.('warn', 'acme: the CA sent the certificate chain with the end-entity certificate not first; reordered', { position: leafAt + 1, of: chain.length })
  const ordered = issuerOrder(chain, leafAt)
  const leafFirst = [leafAt + 1, ...chain.map((_, i) => i + 1).filter((p) => p !== leafAt + 1)]
  if (ordered.order.some((p, i) => p !== leafFirst[i])) log?.('warn', 'acme: the CA sent the certificate chain not in issuer order (RFC 8446 §4.4.2); reordered', { stored_as_sent_positions: ordered.order.join(',') })
  if (ordered.extras.length > 0) log?.('warn', 'acme: the certificate chain holds certificates on no issuer path from the end-entity certificate; kept at its end', { positions: ordered.extras.join(','), of: chain.length })
  const certPem = chainPem(ordered.certs)
  // And for every name ordered: served, one without a name would fail every handshake for it.
  const covered = certInfo(certPem).names
  const missing = names.filter((n) => !covered.includes(n.toLowerCase()))
  if (missing.length > 0) throw new AcmeError('E_ACME', `the issued certificate lacks ${missing.join(', ')} (it names ${covered.join(', ') || 'no DNS names'}); not used, the proxy orders again later`)
  // And valid now: served, an expired or not-yet-valid one fails every handshake, and one that
  // is expired is due for renewal at once (an order after order, with no back-off).
  checkValidity(certPem, (opts.nowMs ?? Date.now)())
  log?.('info', 'acme: certificate issued', { names: names.join(',') })
  return { certPem, keyPem }
}

/**
 * RFC 9773 §5: `replaces` names the certificate being renewed. A CA that refuses it (the old
 * one was already replaced, say by another process's order) must not block renewal: order again
 * without it.
 */
async function newOrder(opts: IssueOptions): Promise<{ url: string; order: Order }> {
  if (!opts.replaces) return opts.client.newOrder(opts.names)
  try {
    return await opts.client.newOrder(opts.names, opts.replaces)
  } catch (err) {
    if (!(err instanceof AcmeError) || (err.problemType !== 'alreadyReplaced' && err.httpStatus !== 409)) throw err
    opts.log?.('info', 'acme: the CA refused "replaces"; ordering without it', { error: err.message })
    return opts.client.newOrder(opts.names)
  }
}

async function authorize(opts: IssueOptions, authzUrl: string): Promise<void> {
  const { client } = opts
  const authz = await client.getAuthorization(authzUrl)
  if (authz.status === 'valid') return
  const name = authz.identifier.value
  const challenge = authz.challenges.find((c) => c.type === 'http-01')
  if (!challenge) throw new AcmeError('E_ACME', `the CA offers no http-01 challenge for ${name} (offered: ${authz.challenges.map((c) => c.type).join(', ')}); wildcard names need DNS-01, which the proxy does not do`)
  await opts.challenges.publish(challenge.token, keyAuthorization(challenge.token, opts.accountKey))
  try {
    if (challenge.status === 'pending') await client.respond(challenge.url)
    const done = await client.poll(authzUrl, (s) => s === 'valid', `validating ${name}`, asAuthorization)
    if (done.status !== 'valid') {
      const failed = done.challenges.find((c) => c.type === 'http-01')
      const problem = failed?.error ?? { detail: `authorization is ${done.status}` }
      throw problemError(`http-01 validation of ${name}`, problem, problem.status ?? 403)
    }
    opts.log?.('info', 'acme: name validated', { name })
  } finally {
    await opts.challenges.unpublish(challenge.token)
  }
}

function orderFailed(order: Order, names: readonly string[]): AcmeError {
  return problemError(`order for ${names.join(',')} is ${order.status}`, order.error ?? {}, order.error?.status ?? 403)
}

function checkValidity(certPem: string, nowMs: number): void {
  const { notBeforeMs, notAfterMs } = certInfo(certPem)
  const iso = (ms: number) => new Date(ms).toISOString()
  if (notAfterMs <= nowMs) throw new AcmeError('E_ACME', `the issued certificate expired at ${iso(notAfterMs)} (this host's clock says ${iso(nowMs)}); not used, the proxy orders again later. Check this host's clock`)
  if (notBeforeMs > nowMs + CLOCK_SKEW_MS) throw new AcmeError('E_ACME', `the issued certificate is not valid until ${iso(notBeforeMs)} (this host's clock says ${iso(nowMs)}); not used, the proxy orders again later. Check this host's clock`)
}

function sameKey(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    return false
  }
}
