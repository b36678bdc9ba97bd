/** The glossary behind `proxy bench --explain` (and the README): each phase next to the names other tools use. */

export const GLOSSARY: { phase: string; meaning: string; curl: string; devtools: string; k6: string }[] = [
  { phase: 'dns', meaning: 'name lookup (absent for an IP, --resolve, or a reused connection)', curl: 'time_namelookup', devtools: 'DNS Lookup', k6: '(inside http_req_blocked)' },
  { phase: 'connect', meaning: 'TCP handshake: one round trip to the server', curl: 'time_connect − time_namelookup', devtools: 'Initial connection (minus SSL)', k6: 'http_req_connecting' },
  { phase: 'tls', meaning: 'TLS handshake: one or two more round trips', curl: 'time_appconnect − time_connect', devtools: 'SSL', k6: 'http_req_tls_handshaking' },
  { phase: 'wait', meaning: 'request written → first response byte: the server and the path to it', curl: 'time_starttransfer − time_pretransfer', devtools: 'Waiting for server response (TTFB)', k6: 'http_req_waiting' },
  { phase: 'transfer', meaning: 'first byte → last byte of the response', curl: 'time_total − time_starttransfer', devtools: 'Content Download', k6: 'http_req_receiving' },
  { phase: 'total', meaning: 'start → last byte, including every phase above that happened', curl: 'time_total', devtools: '(the request bar)', k6: 'http_req_duration + http_req_blocked + connecting (k6 leaves connect out of duration)' },
]

export function explainText(): string {
  const lines = [
    'proxy bench phases (all in milliseconds; curl -w times are cumulative, so the phases are their differences)',
    '',
  ]
  for (const g of GLOSSARY) {
    lines.push(`${g.phase.toUpperCase()}: ${g.meaning}`)
    lines.push(`    curl -w: ${g.curl}`)
    lines.push(`    browser devtools: ${g.devtools}`)
    lines.push(`    k6: ${g.k6}`)
  }
  lines.push('')
  lines.push('cold = a new connection (dns, connect and tls happen); warm = a reused keep-alive connection (they are absent).')
  lines.push('A far user pays CONNECT and TLS in round trips to wherever TCP and TLS end: a nearby proxy makes them short;')
  lines.push('WAIT is what the origin (and the path behind the proxy) costs, and a proxy with warm upstream connections keeps it.')
  return lines.join('\n')
}
