/**
 * Marks to phases, in one place. A sample records absolute performance.now() marks; the phases
 * are derived here, and a phase that did not happen (DNS for an IP literal, connect and TLS on a
 * reused connection, TLS on plain HTTP) is absent, never zero.
 */

export interface Marks {
  /** The request was started (cold: before DNS; warm: before writing). */
  start: number
  dnsStart?: number
  dnsEnd?: number
  connectStart?: number
  connectEnd?: number
  tlsEnd?: number
  /** The request bytes were handed to the kernel. */
  requestWritten?: number
  firstByte?: number
  end?: number
}

export const PHASES = ['dns', 'connect', 'tls', 'wait', 'transfer', 'total'] as const
export type Phase = (typeof PHASES)[number]
export type Phases = Partial<Record<Phase, number>>

export function phasesOf(m: Marks): Phases {
  const p: Phases = {}
  if (m.dnsStart !== undefined && m.dnsEnd !== undefined) p.dns = m.dnsEnd - m.dnsStart
  if (m.connectStart !== undefined && m.connectEnd !== undefined) p.connect = m.connectEnd - m.connectStart
  if (m.connectEnd !== undefined && m.tlsEnd !== undefined) p.tls = m.tlsEnd - m.connectEnd
  if (m.requestWritten !== undefined && m.firstByte !== undefined) p.wait = m.firstByte - m.requestWritten
  if (m.firstByte !== undefined && m.end !== undefined) p.transfer = m.end - m.firstByte
  if (m.end !== undefined) p.total = m.end - m.start
  return p
}

/** How long a finished request took when that is past `limitMs` (its timer fired late, or not at all), else undefined. */
export function cameLateMs(m: Marks, limitMs: number): number | undefined {
  if (m.end === undefined) return undefined
  const took = m.end - m.start
  return took > limitMs ? took : undefined
}
