/**
 * A TOML key as the parser reads it, from the text of a key or table header ("a.b", "\"a.b\"",
 * "'x'", "\"retr\\u0069es\""): the key path the config's line index (load.ts) files it under.
 */

export function normaliseKey(raw: string): string {
  // Split at the dots outside quotes; a basic-string part ("...") has its escapes undone, as the
  // parser reads it ("retr\u0069es" is retries: it was indexed as written, and an error in it was
  // put on its table's line), a literal one ('...') is as written.
  const parts: string[] = []
  let start = 0
  let quote = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (quote === '"' && c === '\\') i++ // an escaped character: never the quote's end
    else if (quote !== '') quote = c === quote ? '' : quote
    else if (c === '"' || c === "'") quote = c
    else if (c === '.') [parts[parts.length], start] = [raw.slice(start, i), i + 1]
  }
  parts.push(raw.slice(start))
  return parts.map(unquoteKey).join('.')
}

const KEY_ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' }

/** One key part as the parser reads it: quotes off, a basic string's escapes (TOML 1.1's \e and \xHH too) undone. */
function unquoteKey(raw: string): string {
  const p = raw.trim()
  if (p.length >= 2 && p.startsWith("'") && p.endsWith("'")) return p.slice(1, -1)
  if (!(p.length >= 2 && p.startsWith('"') && p.endsWith('"'))) return p
  try {
    return p.slice(1, -1).replace(/\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2})|(.))/g, (_m, u4?: string, u8?: string, x2?: string, c?: string) =>
      u4 ? scalar(parseInt(u4, 16)) : u8 ? scalar(parseInt(u8, 16)) : x2 ? String.fromCharCode(parseInt(x2, 16)) : (KEY_ESCAPES[c!] ?? c!),
    )
  } catch {
    return p.slice(1, -1) // an escape the parser refuses too (a surrogate, a code point past U+10FFFF): the key as written
  }
}

/** A Unicode scalar value's character; a surrogate or a code point past U+10FFFF throws. */
function scalar(cp: number): string {
  if (cp >= 0xd800 && cp <= 0xdfff) throw new RangeError('surrogate')
  return String.fromCodePoint(cp)
}
