/**
 * Opening a timed connection: DNS (a fresh lookup each time, no runtime cache), TCP connect and
 * the TLS handshake, with a mark at each step, ALPN offered as asked, and TLS session resumption
 * as browsers and curl do it (a new connection offers the session from an earlier handshake with
 * the same origin; RFC 8446 §2.2 for TLS 1.3 tickets, RFC 5077 for TLS 1.2). What is spoken over
 * the socket afterwards belongs to timing-client.ts (HTTP/1.1) and h2-client.ts (HTTP/2); the
 * shape both give the runner (BenchConnection) is declared here.
 */
import type { Buffer } from 'node:buffer'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { Lookup } from '../dns/lookup.ts'
import type { Marks } from './timings.ts'
import { bracketHost, hostPort, withoutFinalDot } from '../lib/net.ts'
import { outOfDescriptors } from '../runtime/dial-errors.ts'
import { connectFirst, interleaveFamilies, type Attempt } from './happy-eyeballs.ts'

export interface Target {
  scheme: 'http' | 'https'
  /** Host for the Host header and SNI. */
  host: string
  port: number
  /** Path and query. */
  path: string
  /** Where to connect: a name (looked up) or an IP. --connect-to changes it; --resolve pins it. */
  connectHost: string
  connectPort: number
  /** --resolve for connectHost:connectPort: the address to use without a lookup. */
  pinnedAddress: string | undefined
  /** --http2 / --vs-http2: offer h2 by ALPN (https only). */
  http2?: boolean
}

export interface RequestSpec {
  method: string
  headers: [string, string][]
  body: Uint8Array | undefined
  /** The client's own fields (User-Agent, Accept) not to send, lower case: curl's -H "Name:". */
  omit?: ReadonlySet<string>
}

export interface ResponseInfo {
  status: number
  bytes: number
  /** The server allows another request on this connection. */
  keepAlive: boolean
}

/** One open connection, HTTP/1.1 or HTTP/2, as the runner sees it. */
export interface BenchConnection {
  readonly info: ConnectionInfo
  /** Run-wide sequence number, so samples can be grouped by connection. */
  readonly id: number
  readonly usable: boolean
  /** Requests sent on it so far, and the most that were in flight at once. */
  requests: number
  peakInFlight: number
  request(target: Target, spec: RequestSpec, opts: ClientOptions, marks: Marks): Promise<ResponseInfo>
  close(): void
}

export interface ClientOptions {
  timeoutMs: number
  insecure: boolean
  ca: string | undefined
  lookup: Lookup
  /** Where sessions from earlier handshakes are kept; undefined (--no-tls-resume): every handshake is full. */
  tlsSessions?: TlsSessionCache
}

export interface ConnectionInfo {
  remoteAddress: string
  family: 4 | 6
  tlsVersion?: string
  alpn?: string
  cipher?: string
  /** TLS only: the handshake resumed an earlier session (an abbreviated handshake). */
  tlsResumed?: boolean
}

/**
 * A failure with a short, countable kind (ECONNREFUSED, timeout, NXDOMAIN, a TLS code, …).
 * `unprocessed`: the server said it did not process the request (an HTTP/2 stream refused or
 * above a GOAWAY's last stream id, RFC 9113 §8.7), or closed a kept-alive HTTP/1.1 connection
 * before any answer to an idempotent request (RFC 9112 §9.3.1), so it may be sent again on a
 * new connection.
 */
export class BenchRequestError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly unprocessed = false,
  ) {
    super(message)
    this.name = 'BenchRequestError'
  }
}

function kindOf(err: unknown): string {
  const e = err as { code?: string; name?: string }
  if (err instanceof BenchRequestError) return err.kind
  return e?.code ?? e?.name ?? 'error'
}

export function asBenchError(err: unknown): BenchRequestError {
  return err instanceof BenchRequestError ? err : new BenchRequestError(kindOf(err), (err as Error)?.message ?? String(err))
}

/**
 * The latest session per origin and server name, as a browser keeps it. The newest ticket wins:
 * TLS 1.3 servers may send several, and RFC 8446 §C.4 asks clients not to reuse one, but
 * curl and the runtimes' own clients do offer the same one again, and servers accept it.
 */
export class TlsSessionCache {
  private readonly sessions = new Map<string, Buffer>()
  get(key: string): Buffer | undefined {
    return this.sessions.get(key)
  }
  set(key: string, session: Buffer): void {
    this.sessions.set(key, session)
  }
}

/** OpenSSL's and node:tls's codes for a certificate that did not verify (chain, dates or name). */
const CERT_UNVERIFIED = /^(ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET_ISSUER_CERT(_LOCALLY)?|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|CERT_(HAS_EXPIRED|NOT_YET_VALID|UNTRUSTED|REJECTED|REVOKED|SIGNATURE_FAILURE|CHAIN_TOO_LONG)|INVALID_CA|HOSTNAME_MISMATCH)$/

function certAdvice(kind: string): string {
  if (kind === 'ERR_TLS_CERT_ALTNAME_INVALID' || kind === 'HOSTNAME_MISMATCH') return "the server's certificate is not for this name; use a name it holds in the URL (--resolve NAME:PORT:ADDR keeps it), or skip the check with -k"
  return "the server's certificate did not verify; give its CA with --cacert FILE, or skip the check with -k"
}

export interface Dialed {
  socket: Socket | TLSSocket
  info: ConnectionInfo
}

/** Connect errors after which the next address of the name is tried (curl does the same). */
const NEXT_ADDRESS_ON = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT'])

/** One TCP connect, within `limitMs`; cancel() closes it (a losing attempt of connectFirst). */
function connectTcp(address: string, port: number, limitMs: number): Attempt<Socket> {
  let cancel = () => {}
  const done = new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: address, port })
    s.setNoDelay(true)
    const timer = setTimeout(() => {
      s.destroy()
      reject(new BenchRequestError('timeout', `connect to ${hostPort(address, port)} timed out`))
    }, limitMs)
    cancel = () => {
      clearTimeout(timer)
      s.removeAllListeners()
      s.on('error', () => {})
      s.destroy()
    }
    s.once('connect', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      // Bun reports a socket it could not make for lack of descriptors as ECONNREFUSED (runtime/dial-errors.ts): told apart here, as the bench's own limit, not the server's refusal.
      const kind = kindOf(err)
      if (kind === 'EMFILE' || kind === 'ENFILE' || (kind === 'ECONNREFUSED' && outOfDescriptors())) return reject(new BenchRequestError('EMFILE', `no file descriptor left for the connection (the bench's own limit, ulimit -n): raise it or lower -c`))
      // node:net says "connect ECONNREFUSED ::1:443": the address as host:port, bracketed (RFC 3986 §3.2.2).
      reject(new BenchRequestError(kind, err.message.replace(`${address}:${port}`, hostPort(address, port))))
    })
  })
  return { done, cancel: () => cancel() }
}

/** DNS, TCP and TLS, recording marks. `alpn` is what to offer (TLS only). */
export async function dial(target: Target, opts: ClientOptions, marks: Marks, alpn: string[]): Promise<Dialed> {
  // Where to connect: the pinned address, the literal, or each address the name has in turn.
  let candidates: { address: string; family: 4 | 6 }[]
  if (target.pinnedAddress !== undefined) candidates = [{ address: target.pinnedAddress, family: isIP(target.pinnedAddress) === 6 ? 6 : 4 }]
  else {
    const literal = isIP(target.connectHost)
    if (literal) candidates = [{ address: target.connectHost, family: literal as 4 | 6 }]
    else {
      marks.dnsStart = performance.now()
      try {
        candidates = (await opts.lookup(target.connectHost, { family: 'auto', timeoutMs: Math.min(opts.timeoutMs, 5000) })).addresses
      } catch (err) {
        throw new BenchRequestError((err as { code?: string }).code ?? 'DNS', (err as Error).message)
      }
      marks.dnsEnd = performance.now()
    }
  }
  marks.connectStart = performance.now()
  const remaining = () => Math.max(1, opts.timeoutMs - (performance.now() - marks.start))
  // As curl: an address that refuses (or cannot be reached) hands over to the next at once, one
  // still connecting after 250 ms has the next raced beside it (RFC 8305, happy-eyeballs.ts), all
  // within the time left; CONNECT counts until the first connects.
  if (candidates.length === 0) throw new BenchRequestError('NODATA', `${target.connectHost} has no address`)
  const won = await connectFirst(interleaveFamilies(candidates), (c) => connectTcp(c.address, target.connectPort, remaining()), (err) => NEXT_ADDRESS_ON.has((err as BenchRequestError).kind))
  const tcp = won.value
  const { address, family } = won.candidate
  marks.connectEnd = performance.now()
  if (target.scheme === 'http') return { socket: tcp, info: { remoteAddress: address, family } }
  // Without a final dot, as curl sends it (RFC 6066 §3): a server choosing its certificate by name knows no dotted one.
  const servername = isIP(target.host) ? undefined : withoutFinalDot(target.host)
  const sessionKey = `${target.host}:${target.port}/${target.connectHost}:${target.connectPort}`
  const cache = opts.tlsSessions
  const tls = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({
      socket: tcp,
      servername,
      ca: opts.ca,
      rejectUnauthorized: !opts.insecure,
      ALPNProtocols: alpn,
      session: cache?.get(sessionKey),
    })
    // TLS 1.3 tickets arrive after the handshake (RFC 8446 §4.6.1): keep listening for them.
    if (cache) s.on('session', (session: Buffer) => cache.set(sessionKey, session))
    const timer = setTimeout(() => {
      s.destroy()
      reject(new BenchRequestError('timeout', 'TLS handshake timed out'))
    }, remaining())
    s.once('secureConnect', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      tcp.destroy()
      const e = asBenchError(err)
      reject(CERT_UNVERIFIED.test(e.kind) ? new BenchRequestError(e.kind, `${e.message}: ${certAdvice(e.kind)}`) : e)
    })
  })
  marks.tlsEnd = performance.now()
  const cipher = tls.getCipher()
  return {
    socket: tls,
    info: {
      remoteAddress: address,
      family,
      tlsVersion: tls.getProtocol() ?? undefined,
      alpn: typeof tls.alpnProtocol === 'string' ? tls.alpnProtocol : undefined,
      cipher: cipher?.name,
      tlsResumed: tls.isSessionReused(),
    },
  }
}

/** The Host header (HTTP/1.1) or :authority (HTTP/2) for a target: the port only when not the default. */
export function hostHeader(t: Target): string {
  const h = bracketHost(t.host)
  return t.port === (t.scheme === 'https' ? 443 : 80) ? h : `${h}:${t.port}`
}
