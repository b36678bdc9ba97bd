/**
 * One value of one field, from the file's or a flag's units to the resolved shape: a duration to
 * milliseconds, a size to bytes, a host:port to { host, port }, "FROM TO" rules to pairs. Every
 * refusal goes through `fail`, which resolve.ts gives the file, line and key (or the flag) of.
 */
import { isIP } from 'node:net'
import { isFractionOfByte, isUnderOneMs, MAX_TIMER_MS, parseDurationMs, parseSizeBytes } from '../lib/units.ts'
import { looseIpv4, looseIpv4Problem, parseHostPort, show, zoneProblem } from './addresses.ts'
import type { Field } from './fields.ts'
import { TomlFloat, TOO_LARGE } from './load.ts'
import type { RewritePair } from './schema.ts'

/** What to write instead of a list, for the keys an nginx config gives several values. */
const LIST_HINTS: Record<string, string> = {
  url: ': one URL whose DNS name holds every server (the resolver spreads requests over all its addresses), or an [upstream.NAME] table each with a [[route]]',
  host: ': one [[route]] per host, or "*.example.com" / ".example.com" for a name and those under it',
  tls_cert: ': one certificate chain per listener (no choice by SNI); automatic HTTPS (acme.domains) holds several names in one',
  tls_key: ': the key of the one certificate',
  listen: ': one address per instance; "[::]:PORT" takes IPv4 and IPv6 alike',
}

export function coerceField(field: Field, raw: unknown, fail: (problem: string) => never): unknown {
  const k = field.kind
  // A secret's value is never written back in an error (the admin token in a list was: second opinion, eighteenth round).
  const shown = field.secret ? 'the value (not shown)' : show(raw)
  // A list where one value goes (url = ["http://a", "http://b"] as nginx lists servers): one
  // value, not a quoted list; until the eighteenth round of outside reviews "quote it" led to a worse error.
  if (Array.isArray(raw) && (k.type === 'string' || k.type === 'hostport')) fail(`${shown} is a list; this key takes one value${LIST_HINTS[field.key] ?? ''}`)
  if (raw instanceof TomlFloat && (k.type === 'int' || k.type === 'size' || k.type === 'duration')) {
    // 1e3 and 1.0 are floats to TOML, and no key takes one; 1.5, nan and inf are told what they are below.
    const v = raw.value
    const isFloat = `${shown} is a float (written with a decimal point or an exponent)`
    if (k.type === 'duration') fail(`${isFloat}; write a duration such as "30s"${v === 0 ? ', or the integer 0' : ''}`)
    if (Number.isInteger(v)) fail(k.type === 'int' ? `${isFloat}; an integer is expected: write ${v}` : `${isFloat}; an integer of bytes is expected: write ${v}, or a size such as "64KiB"`)
    raw = v
  }
  switch (k.type) {
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDurationMs(raw) : typeof raw === 'number' && raw === 0 ? 0 : undefined
      if (ms === undefined && typeof raw === 'string' && isUnderOneMs(raw)) fail(`${shown} is under 1 ms: durations are whole milliseconds; use ${k.positive ? '' : '0 for none or '}at least "1ms"`)
      if (ms === undefined) fail(`${shown} is not a duration; use e.g. "250ms", "30s", "5m"`)
      if (k.positive && ms <= 0) fail(`must be more than 0; use e.g. "${field.default}"`)
      if (k.minMs !== undefined && ms > 0 && ms < k.minMs) fail(`${shown} is too short: use 0 for never, or at least "${k.minMs / 1000}s" (e.g. "${field.default}")`)
      if (!k.untimed && ms > MAX_TIMER_MS) fail(`${shown} is longer than a timer can wait (24.8 days); use at most "24d"`)
      // Past 2^53-1 ms the count is rounded, and check printed it as "8.64e+23s", which no parser reads back.
      if (ms > Number.MAX_SAFE_INTEGER) fail(`${shown} is longer than any clock counts in milliseconds (2^53-1 ms, about 285,000 years); use e.g. "365d"`)
      return ms
    }
    case 'size': {
      const bytes = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw : typeof raw === 'string' ? parseSizeBytes(raw) : undefined
      if (bytes === undefined && (typeof raw === 'string' ? isFractionOfByte(raw) : typeof raw === 'number' && Number.isFinite(raw) && raw > 0)) fail(`${shown} is not a whole number of bytes; write whole bytes ("1500") or a unit ("1.5KiB")`)
      if (bytes === undefined) fail(`${shown} is not a size; use e.g. "64KiB", "10MB", or 0`)
      if (bytes > Number.MAX_SAFE_INTEGER) fail(`${shown} ${TOO_LARGE}`)
      return bytes
    }
    case 'int': {
      const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw
      // A string or a flag of more digits than a TOML integer may hold was kept rounded.
      if (typeof n === 'number' && n > Number.MAX_SAFE_INTEGER) fail(`${shown} ${TOO_LARGE}`)
      if (typeof n !== 'number' || !Number.isInteger(n) || n < k.min || (k.max !== undefined && n > k.max)) {
        fail(`${shown} is not a whole number from ${k.min}${k.max !== undefined ? ` to ${k.max}` : ' up'}`)
      }
      return n
    }
    case 'bool':
      if (typeof raw !== 'boolean') fail(`${shown} is not true or false`)
      return raw
    case 'string':
      if (typeof raw !== 'string') fail(`${shown} is not a string; quote it`)
      // "" is never unset: where unset means a default, it would silently mean something else (no
      // log at all); where it means none, something else again (tls_cert = "" served plain HTTP).
      // Where "off" means none, the one who wrote "" for none learns its spelling.
      if (raw === '' && field.default !== undefined) fail(`is empty; leave it out for its default, ${show(field.default)}${k.off ? ', or "off" for none' : ''}`)
      if (raw === '') fail(field.empty ?? `is empty; remove it to leave it unset${unsetMeaning(field)}`)
      // A path cannot hold one (the runtime refuses to open it); a header, a name or a URL cannot either.
      if (raw.includes('\0')) fail(`${shown} holds a NUL byte (\\u0000), which ${k.path ? 'no file path' : 'no value of this key'} can hold; remove it`)
      return raw
    case 'enum':
      if (typeof raw !== 'string' || !k.values.includes(raw)) fail(`${shown} is not one of: ${k.values.join(', ')}`)
      return raw
    case 'list': {
      const list = typeof raw === 'string' ? [raw] : raw
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) fail(`${shown} is not a list of strings`)
      return list
    }
    case 'rewrites':
      return coerceRewrites(k.keywords, raw, fail)
    case 'hostport': {
      if (raw === 'off' && k.off) return undefined
      const hp = typeof raw === 'string' ? parseHostPort(raw) : undefined
      // "0x7f.1:80" listened on 127.0.0.1: the resolver reads such a name as the address.
      const [, host, port] = (!hp && typeof raw === 'string' && /^([^:[\]]+):(\d+)$/.exec(raw)) || []
      const read = host === undefined ? undefined : looseIpv4(host)
      if (read === '') fail(`${looseIpv4Problem(host!, read, () => '')}; use e.g. "0.0.0.0:8080"`)
      if (read !== undefined) fail(looseIpv4Problem(host!, read, (a) => `write ${show(`${a}:${port}`)}`))
      const zone = !hp && typeof raw === 'string' ? /^\[([^\]]+)\]:\d+$/.exec(raw)?.[1] : undefined
      const problem = zone !== undefined && isIP(zone) === 6 ? zoneProblem(zone) : undefined
      if (problem) fail(`${shown}: ${problem}`)
      if (!hp) fail(`${shown} is not host:port; use e.g. "0.0.0.0:8080", "[::]:8080" or ":8080"${k.off ? ', or "off"' : ''}`)
      return hp
    }
  }
}

/** "FROM TO" pairs and keywords -> rules; "off" stands alone and means none. */
function coerceRewrites(keywords: readonly string[], raw: unknown, fail: (problem: string) => never): (string | RewritePair)[] {
  const list = typeof raw === 'string' ? [raw] : raw
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) fail(`${show(raw)} is not a string or a list of strings`)
  const entries = (list as string[]).map((e) => e.trim())
  if (entries.includes('off')) {
    if (!keywords.includes('off') || entries.length > 1) fail('"off" stands alone; remove it, or the other entries')
    return []
  }
  return entries.map((entry) => {
    if (keywords.includes(entry)) return entry
    const parts = entry.split(/\s+/)
    if (parts.length !== 2 || parts[0] === '') {
      const allowed = [...keywords.map((w) => `"${w}"`), '"FROM TO"'].join(', ')
      fail(`${show(entry)} is not one of: ${allowed}; e.g. "http://origin.internal:8080/ https://www.example.com/"`)
    }
    return { from: parts[0]!, to: parts[1]! }
  })
}

/** " (then: the system's roots)": what leaving the key out means, from its doc's "Default: …". */
function unsetMeaning(field: Field): string {
  const said = /Default: (.+?)\.?$/.exec(field.doc)?.[1]
  return said === undefined ? '' : ` (then: ${said})`
}
