/**
 * The TLS files the config names, read and checked before use: the listener's certificate and
 * key (each PEM the runtime can parse, and the key the certificate's) and CA bundles (upstream and
 * ACME ca_file: PEM certificates). A listener opened with a bad pair fails only inside the
 * runtime's TLS setup, after the old listener may already be gone (a reload), and there as a
 * listen error (E_LISTEN, "choose another address"); the TLS library reads every PEM block of
 * the chain, so an intermediate that is damaged or cut short fails it as a bad leaf would. A CA
 * bundle the TLS library cannot read fails every dial, as if the origin were down. Checked here
 * first, a bad file changes nothing and the error names the file to fix.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { ProxyError } from '../lib/errors.ts'
import { shownPath } from './config-paths.ts'

export interface TlsPair {
  cert: string
  key: string
  /** The leaf's start and the chain's earliest end (loadTlsPair fills them in: validityProblem, the admin's days left). */
  notBeforeMs?: number
  notAfterMs?: number
  /** Which certificate ends first when it is not the leaf: "certificate 2 of 3 (subject …)", an intermediate. */
  endsFirst?: string
}

/**
 * Reads and checks the pair. Throws E_TLS_FILES naming the key as `names` say (where it was set,
 * ResolvedConfig.fileKeys: "proxy.toml:3: server.tls_cert"; by default the bare key).
 */
export function loadTlsPair(certFile: string, keyFile: string, names: { cert?: string; key?: string } = {}): TlsPair {
  const certName = names.cert ?? 'server.tls_cert'
  const keyName = names.key ?? 'server.tls_key'
  const cert = readPem(certFile, certName)
  const key = readPem(keyFile, keyName)
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch (err) {
    throw new ProxyError('E_TLS_FILES', `${certName}: "${certFile}" holds no certificate the TLS library can read (${errText(err)}); give a PEM certificate chain, leaf first`, { cause: err })
  }
  const chain = checkChain(cert, certFile, certName)
  let privateKey: ReturnType<typeof createPrivateKey>
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new ProxyError('E_TLS_FILES', `${keyName}: "${keyFile}" holds no private key the TLS library can read (${errText(err)}); give an unencrypted PEM key`, { cause: err })
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    // The key's certificate further down the file: the pair is right, the order is not.
    const at = chain.findIndex((c, i) => i > 0 && c.checkPrivateKey(privateKey))
    if (at > 0) {
      throw new ProxyError('E_TLS_FILES', `${certName}: "${certFile}" holds the certificate of the key in "${keyFile}" (subject ${subjectOf(chain[at]!)}) as certificate ${at + 1} of ${chain.length}, after ${subjectOf(leaf)}; put it first (the TLS library serves the first certificate as the leaf), then its intermediates`)
    }
    throw new ProxyError('E_TLS_FILES', `${keyName}: "${keyFile}" is not the key of the certificate in "${certFile}" (subject ${subjectOf(leaf)}); give the pair that belongs together`)
  }
  // An expired intermediate fails clients as an expired leaf does: the chain ends with its first certificate to end.
  const ends = chain.map((c) => Date.parse(c.validTo))
  const first = ends.reduce((at, end, i) => (end < ends[at]! ? i : at), 0)
  const endsFirst = first > 0 ? `certificate ${first + 1} of ${chain.length} (subject ${subjectOf(chain[first]!)})` : undefined
  return { cert, key, notBeforeMs: Date.parse(leaf.validFrom), notAfterMs: ends[first] ?? Date.parse(leaf.validTo), endsFirst }
}

const DAY_MS = 86_400_000

/**
 * What is wrong with the pair's dates at `nowMs`, in words that say what to do: expired, not yet
 * valid, or near its end: under 7 days left and under a third of its lifetime (when a renewal,
 * certbot's or an ACME client's, would have replaced it: a 90-day certificate at 7 days, a 6-day
 * one at 2). Clients refuse an expired certificate; the listener serves it all the same, as
 * nginx does, so that this is a warning and not a failed start. undefined when the dates are fine.
 */
export function validityProblem(pair: TlsPair, certFile: string, certName = 'server.tls_cert', nowMs = Date.now()): string | undefined {
  const { notBeforeMs: from, notAfterMs: to } = pair
  if (from === undefined || to === undefined || Number.isNaN(from) || Number.isNaN(to)) return undefined
  const day = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const renew = 'renew it and send SIGHUP (a reload reads the files again)'
  const which = pair.endsFirst ? `${pair.endsFirst} in "${certFile}"` : `the certificate in "${certFile}"`
  const ago = Math.floor((nowMs - to) / DAY_MS)
  // notAfter is the last moment of validity (RFC 5280 §4.1.2.5): expired after it.
  if (nowMs > to) return `${certName}: ${which} expired on ${day(to)} (${ago === 0 ? 'less than a day' : `${ago} day(s)`} ago): clients refuse it; ${renew}`
  if (nowMs < from) return `${certName}: the certificate in "${certFile}" is not valid until ${day(from)}: clients refuse it until then (is this machine's clock right?)`
  if (to - nowMs < Math.min(7 * DAY_MS, (to - from) / 3)) return `${certName}: ${which} expires on ${day(to)}, in ${((to - nowMs) / DAY_MS).toFixed(1)} day(s); ${renew}`
  return undefined
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g
const PEM_BEGIN = /-----BEGIN [^-\r\n]*-----/g
const PEM_BLOCK = /-----BEGIN ([^-\r\n]*)-----[\s\S]*?-----END \1-----/g

/**
 * Every PEM block of the certificate file has its END line, and every certificate in it (the
 * intermediates after the leaf) can be read: the TLS library reads them all and refuses the
 * whole file for one bad block. Throws E_TLS_FILES naming the block; returns the certificates.
 */
function checkChain(pem: string, certFile: string, certName: string): X509Certificate[] {
  const begun = pem.match(PEM_BEGIN)?.length ?? 0
  const whole = pem.match(PEM_BLOCK)?.length ?? 0
  if (whole < begun) {
    throw new ProxyError('E_TLS_FILES', `${certName}: "${certFile}" has ${begun - whole} PEM block(s) without their "-----END" line (the file is cut short, or a block was pasted in part); give whole PEM certificates, leaf first`)
  }
  return readCertificates(pem, certName, certFile, 'give whole PEM certificates, leaf first, then its intermediates')
}

/** Every PEM certificate in `pem`, read; E_TLS_FILES naming `key`, `file` and the one that cannot be, with `fix`. */
function readCertificates(pem: string, key: string, file: string, fix: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? []
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (err) {
      throw new ProxyError('E_TLS_FILES', `${key}: certificate ${i + 1} of ${blocks.length} in "${file}" cannot be read (${errText(err)}); ${fix}`, { cause: err })
    }
  })
}

/** A CA bundle's text (`key`: the config key named in errors), checked to hold PEM certificates only the TLS library can read. Throws E_TLS_FILES. */
export function readCaBundle(path: string, key: string): string {
  const pem = readPem(path, key)
  if (readCertificates(pem, key, path, 'give PEM CA certificates').length === 0) {
    throw new ProxyError('E_TLS_FILES', `${key}: "${path}" holds no PEM certificate ("-----BEGIN CERTIFICATE-----"); give PEM CA certificates (a DER file converts with: openssl x509 -inform DER -in FILE -out FILE.pem)`)
  }
  return pem
}

/** The largest PEM file read: a system CA bundle is about 220 KiB. */
export const MAX_PEM_BYTES = 4 * 1024 * 1024

/**
 * A PEM file's text; E_TLS_FILES naming the config key when it cannot be read. A regular file of
 * at most MAX_PEM_BYTES only, looked at before it is opened: a FIFO with no writer blocked the
 * whole process in open() (check, or a running proxy at SIGHUP), and /dev/zero was read without
 * end (1.8 GB within 9 s of a reload; an outside config fuzz, nineteenth round).
 */
export function readPem(path: string, key: string): string {
  try {
    const st = statSync(path)
    if (st.isDirectory()) throw new ProxyError('E_TLS_FILES', `${key}: "${path}" is a directory; give the path of the PEM file`)
    if (!st.isFile()) throw new ProxyError('E_TLS_FILES', `${key}: "${path}" is not a regular file (a pipe, a socket or a device); give the path of the PEM file`)
    if (st.size > MAX_PEM_BYTES) throw new ProxyError('E_TLS_FILES', `${key}: "${path}" is ${st.size} bytes, over the ${MAX_PEM_BYTES / 1024 / 1024} MiB a PEM file is read to; give the path of the PEM file`)
    return readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof ProxyError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw new ProxyError('E_TLS_FILES', `${key}: "${path}" is a directory; give the path of the PEM file`, { cause: err })
    throw new ProxyError('E_TLS_FILES', `${key}: cannot read ${shownPath(path)}: ${code ?? err}; check the path and permissions`, { cause: err })
  }
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ')
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
