/**
 * The TLS policy of every listener the proxy ends clients' TLS on (the proxy's own, with a
 * certificate from files or from ACME, and the standalone HTTP/2 one): which TLS 1.2 cipher
 * suites a client may choose. Bun's default list also offers suites without forward secrecy
 * (RSA key exchange, as AES128-SHA) and CBC-mode ones, which TLS scanners mark weak. This list
 * is ECDHE key exchange with AEAD ciphers only, as Mozilla's "intermediate" profile (less the
 * DHE suites BoringSSL does not have) and Caddy's defaults: every client of the last decade
 * has one of them. TLS 1.3 suites are all AEAD and are not affected; TLS 1.0 and 1.1 are off in
 * Bun already.
 */
export const SERVER_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')
