/**
 * What the access log can say of a request head the listener refused before it was parsed (a bad
 * field, a cap, the header timeout): its method and target when its request line came whole and
 * well formed, its Host when a whole Host line came (as sent), a HEAD by its first bytes. Read only
 * on those error paths.
 */
import type { Buffer } from 'node:buffer'
import { crlfAt } from './chars.ts'
import { REQUEST_LINE } from './request-head.ts'

/**
 * The request line and Host of the head in b[0, end). `complete`: `end` is the head's CRLFCRLF,
 * so its last line ends there; otherwise a line without its CRLF is not taken.
 */
export function refusedRequestOf(b: Buffer, end: number, complete: boolean): { method: string; target: string; host?: string } | undefined {
  let start = 0
  while (start + 1 < end && b[start] === 0x0d && b[start + 1] === 0x0a) start += 2
  const lineEnd = crlfAt(b, start, end)
  const m = REQUEST_LINE.exec(b.toString('latin1', start, lineEnd))
  if (!m) return undefined
  const line: { method: string; target: string; host?: string } = { method: m[1]!, target: m[2]! }
  for (let at = lineEnd + 2; at < end; ) {
    const stop = crlfAt(b, at, end)
    if (stop === end && !complete) break // a line still coming
    // "host:" in any case; the first one (a second is itself a refusal's reason).
    if (stop - at > 5 && (b[at]! | 0x20) === 0x68 && (b[at + 1]! | 0x20) === 0x6f && (b[at + 2]! | 0x20) === 0x73 && (b[at + 3]! | 0x20) === 0x74 && b[at + 4] === 0x3a) {
      const host = b.toString('latin1', at + 5, stop).replace(/^[ \t]+|[ \t]+$/g, '')
      if (host !== '') line.host = host
      break
    }
    at = stop + 2
  }
  return line
}

/** Whether the first `size` bytes of `b` begin a HEAD request (after the empty lines a request may start with): for a refusal of a head that was not parsed. */
export function startsWithHead(b: Buffer, size: number): boolean {
  let i = 0
  while (i < size && (b[i] === 0x0d || b[i] === 0x0a)) i++
  return size - i >= 5 && b[i] === 0x48 && b[i + 1] === 0x45 && b[i + 2] === 0x41 && b[i + 3] === 0x44 && b[i + 4] === 0x20
}
