/**
 * The certificate chain a CA sends (RFC 8555 §7.4.2, application/pem-certificate-chain, §9.1):
 * split into its PEM blocks, each one parsed, and written back in a canonical form. A chain with
 * a block that does not parse (bad base64, a cut-off END line, a non-certificate block) is
 * refused here: stored and served, it would make every TLS handshake fail, while the leaf alone
 * looks fine. The rest is put in issuer order (issuerOrder). order.ts calls this before anything
 * is stored.
 */
import { X509Certificate } from 'node:crypto'
import { AcmeError } from './errors.ts'

/** A whole PEM block (RFC 7468 §2): BEGIN label, base64 lines, END with the same label. */
const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** The chain's certificates, in the order sent; throws an E_ACME naming the block that is wrong. */
export function parseChain(pem: string): X509Certificate[] {
  const begins = (pem.match(/-----BEGIN /g) ?? []).length
  const blocks = [...pem.matchAll(BLOCK_RE)]
  if (blocks.length === 0) throw chainError('it holds no PEM certificate')
  // A BEGIN without its END (a reply cut short) is not a block the regex sees; count them apart.
  if (blocks.length !== begins) throw chainError(`${begins - blocks.length} of its ${begins} PEM blocks has no matching END line (cut off?)`)
  return blocks.map((b, i) => {
    if (b[1] !== 'CERTIFICATE') throw chainError(`block ${i + 1} is a ${b[1]}, not a CERTIFICATE`)
    try {
      return new X509Certificate(b[0])
    } catch (err) {
      throw chainError(`certificate ${i + 1} of ${blocks.length} does not parse (${(err as Error).message})`)
    }
  })
}

/** A chain put in the order TLS sends it; `order` gives, per certificate, its 1-based position as sent. */
export interface IssuerOrder {
  certs: X509Certificate[]
  order: number[]
  /** Positions as sent of the certificates on no issuer path from the leaf, kept at the end. */
  extras: number[]
}

/**
 * The chain as TLS sends it (RFC 8446 §4.4.2, RFC 5246 §7.4.2): the leaf (`leafAt`: order.ts
 * finds it by our key), then the certificate that issued it, then that one's issuer, up to a
 * self-signed root or the last one sent. "Issued" is X509Certificate.checkIssued: the issuer name
 * matches the candidate's subject (RFC 5280 §7.1 comparison, not bytes) and, where both carry
 * them, the authority key identifier its subject key identifier; of two candidates, the first sent
 * wins. Certificates on no such path are kept after it, in the order sent: TLS 1.3 peers must
 * tolerate extraneous ones (§4.4.2), while dropping one that the match missed would leave
 * clients without an intermediate they need.
 */
export function issuerOrder(sent: readonly X509Certificate[], leafAt: number): IssuerOrder {
  const left = sent.map((_, i) => i).filter((i) => i !== leafAt)
  const path = [leafAt]
  // Each step takes one certificate out of `left`: at most sent.length steps.
  for (let at = leafAt; !sent[at]!.checkIssued(sent[at]!); ) {
    const next = left.findIndex((i) => sent[at]!.checkIssued(sent[i]!))
    if (next < 0) break
    at = left.splice(next, 1)[0]!
    path.push(at)
  }
  const order = [...path, ...left]
  return { certs: order.map((i) => sent[i]!), order: order.map((i) => i + 1), extras: left.map((i) => i + 1) }
}

/** The chain as the proxy stores and serves it: each certificate re-encoded, nothing between them. */
export function chainPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString()).join('')
}

function chainError(why: string): AcmeError {
  return new AcmeError('E_ACME', `the downloaded certificate chain is damaged: ${why}; not used (served, it would fail every TLS handshake), the proxy orders again later`)
}
