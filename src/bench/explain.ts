/**
 * The glossary behind `proxy bench --explain` (and the README): each phase next to the names
 * other tools use, the three kinds of sample, and what each costs in round trips.
 */

export const GLOSSARY: { phase: string; meaning: string; curl: string; devtools: string; k6: string }[] = [
  { phase: 'dns', meaning: 'name lookup (absent for an IP, --resolve, or a reused connection)', curl: 'time_namelookup', devtools: 'DNS Lookup', k6: '(inside http_req_blocked)' },
  { phase: 'connect', meaning: 'TCP handshake: one round trip to the server', curl: 'time_connect − time_namelookup', devtools: 'Initial connection (minus SSL)', k6: 'http_req_connecting' },
  { phase: 'tls', meaning: 'TLS handshake: full or resumed; round trips below', curl: 'time_appconnect − time_connect', devtools: 'SSL', k6: 'http_req_tls_handshaking' },
  { phase: 'wait', meaning: 'request written → first response byte: the server and the path to it', curl: 'time_starttransfer − time_pretransfer', devtools: 'Waiting for server response (TTFB)', k6: 'http_req_waiting' },
  { phase: 'transfer', meaning: 'first byte → last byte of the response', curl: 'time_total − time_starttransfer', devtools: 'Content Download', k6: 'http_req_receiving' },
  { phase: 'total', meaning: 'start → last byte, including every phase above that happened', curl: 'time_total', devtools: '(the request bar)', k6: 'http_req_duration + http_req_blocked + connecting (k6 leaves connect out of duration)' },
]

/** RFC 5246 §7.3 and RFC 5077 §3.1 (TLS 1.2), RFC 8446 §2 and §2.2 (TLS 1.3). */
export const ROUND_TRIPS: [string, string][] = [
  ['CONNECT (TCP handshake)', '1 RTT'],
  ['TLS 1.2, full handshake', '2 RTT'],
  ['TLS 1.2, resumed (ID or ticket)', '1 RTT (abbreviated handshake: no certificate)'],
  ['TLS 1.3, full handshake', '1 RTT'],
  ['TLS 1.3, resumed (PSK)', '1 RTT (no certificate sent or checked; 0 RTT only with early data, which the bench does not send)'],
  ['WAIT', '1 RTT plus the server'],
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
  lines.push('Three kinds of sample, reported apart:')
  lines.push('  cold     a new connection with a full TLS handshake (or no TLS): dns, connect and tls happen')
  lines.push('  resumed  a new connection whose TLS handshake resumed an earlier session (offered by default, as browsers do;')
  lines.push('           --no-tls-resume makes every handshake full); per sample: tls_resumed')
  lines.push('  warm     a reused keep-alive connection (or another stream on an HTTP/2 connection): no dns, connect or tls')
  lines.push('')
  lines.push('Round trips before the request can go (RTT = one round trip to where TCP and TLS end):')
  for (const [what, rtt] of ROUND_TRIPS) lines.push(`  ${what.padEnd(34)} ${rtt}`)
  lines.push('')
  lines.push('A far user pays CONNECT and TLS in round trips to wherever TCP and TLS end: a nearby proxy makes them short;')
  lines.push('WAIT is what the origin (and the path behind the proxy) costs, and a proxy with warm upstream connections keeps it.')
  return lines.join('\n')
}
