/**
 * The certificate chain a CA sends (RFC 8555 §7.4.2, application/pem-certificate-chain, §9.1):
 * split into its PEM blocks, each one parsed, and written back in a canonical form. A chain with
 * a block that does not parse (bad base64, a cut-off END line, a non-certificate block) is
 * refused here: stored and served, it would make every TLS handshake fail, while the leaf alone
 * looks fine. order.ts calls this before anything is stored.
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

/** The chain as the proxy stores and serves it: each certificate re-encoded, nothing between them. */
export function chainPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString()).join('')
}

function chainError(why: string): AcmeError {
  return new AcmeError('E_ACME', `the downloaded certificate chain is damaged: ${why}; not used (served, it would fail every TLS handshake), the proxy orders again later`)
}
