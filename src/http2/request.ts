/**
 * HTTP/2 request and response heads as HTTP semantics (RFC 9113 §8.2, §8.3): checking a decoded
 * request header list (pseudo-headers, lowercase names, connection-specific fields, TE) and
 * turning it into the fields an HTTP/1.1 request path expects (:authority as Host, cookies joined
 * with "; "); and, for responses, dropping the fields HTTP/2 forbids. A malformed request is a
 * stream error of type PROTOCOL_ERROR (§8.1.1). Decoding the block is hpack.ts's job.
 */
import { backslashInPath, contentLength as contentLengthOf } from '../http1/chars.ts'
import { sameAuthority } from '../lib/net.ts'
import { H2Code, streamError } from './errors.ts'
import type { HeaderField } from './hpack.ts'

/** What a :path may hold: visible ASCII but "#" (RFC 3986 path and query characters, percent-encoded otherwise). */
const PATH_CHARS = /^[\x21-\x22\x24-\x7e]+$/

export class H2Request {
  constructor(
    readonly method: string,
    /** "http" or "https" (any scheme is passed on; CONNECT has none: ""). */
    readonly scheme: string,
    /** :authority, or the Host field when :authority is absent; "" when neither was sent. */
    readonly authority: string,
    /** :path as sent (origin-form, or "*" for OPTIONS); "" for CONNECT. */
    readonly path: string,
    /**
     * Regular fields, lowercase, as names and values (in step, no pair made per field): `host`
     * first when there is an authority, one `cookie` field (§8.2.3).
     */
    readonly names: string[],
    readonly values: string[],
    /** content-length when sent; the body is checked against it (§8.1.1). */
    readonly contentLength: number | undefined,
  ) {}

  /** The regular fields as pairs (made on each call). */
  get headers(): HeaderField[] {
    return this.names.map((n, i): HeaderField => [n, this.values[i]!])
  }
}

/** Fields that are connection-specific in HTTP/1.1 and malformed in HTTP/2 (§8.2.2). */
export const CONNECTION_SPECIFIC = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade'])

// A field name is a token (RFC 9110 §5.1) in lowercase (RFC 9113 §8.2.1).
const NAME_CHARS = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHARS[c.charCodeAt(0)] = 1

/** Names already found valid: HPACK hands the same few names over and over. Bounded. */
const KNOWN_NAMES = new Set<string>()

function validName(name: string, from: number): boolean {
  if (KNOWN_NAMES.has(name)) return true
  if (name.length <= from) return false
  for (let i = from; i < name.length; i++) if (NAME_CHARS[name.charCodeAt(i)] !== 1) return false
  if (KNOWN_NAMES.size < 512 && name.length <= 64) KNOWN_NAMES.add(name)
  return true
}

/**
 * §8.2.1: no NUL, CR or LF, and no leading or trailing whitespace; and, as the HTTP/1.1 listener
 * reads a value, no other control character or DEL either (RFC 9110 §5.5: invalid, kept only
 * where no HTTP parser downstream reads them, and an upstream's HTTP/1.1 parser does).
 */
function validValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false
  }
  if (v.length === 0) return true
  const first = v.charCodeAt(0)
  const last = v.charCodeAt(v.length - 1)
  return first !== 32 && first !== 9 && last !== 32 && last !== 9
}

/** The stream error for a malformed request (§8.1.1). */
function malformed(streamId: number, why: string): Error {
  return streamError(streamId, H2Code.PROTOCOL_ERROR, `malformed request: ${why} (RFC 9113 §8.2, §8.3)`)
}

/**
 * Checks a request header list (names[i], values[i]: the decoder's, read and not kept) and
 * translates it; throws a stream error for a malformed one. Runs once per request: no closure,
 * pair or list is made that the usual request does not need.
 */
export function toRequest(streamId: number, fieldNames: readonly string[], fieldValues: readonly string[]): H2Request {
  let method: string | undefined
  let scheme: string | undefined
  let authority: string | undefined
  let path: string | undefined
  let host: string | undefined
  let contentLength: number | undefined
  let cookies: string[] | undefined
  // Host first when there is an authority: its place is kept and filled in at the end.
  const names = ['host']
  const values = ['']
  let regular = false
  for (let i = 0; i < fieldNames.length; i++) {
    const name = fieldNames[i]!
    const value = fieldValues[i]!
    if (!validValue(value)) throw malformed(streamId, `bad characters in the value of ${name}`)
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular) throw malformed(streamId, 'pseudo-header after a regular field')
      if (name === ':method') {
        if (method !== undefined) throw malformed(streamId, `${name} twice`)
        method = value
      } else if (name === ':scheme') {
        if (scheme !== undefined) throw malformed(streamId, `${name} twice`)
        scheme = value
      } else if (name === ':authority') {
        if (authority !== undefined) throw malformed(streamId, `${name} twice`)
        authority = value
      } else if (name === ':path') {
        if (path !== undefined) throw malformed(streamId, `${name} twice`)
        path = value
      }
      // :protocol needs SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), which we do not send.
      else throw malformed(streamId, `pseudo-header ${name} not allowed in a request`)
      continue
    }
    regular = true
    if (!validName(name, 0)) throw malformed(streamId, `field name ${JSON.stringify(name)} is not a lowercase token`)
    if (CONNECTION_SPECIFIC.has(name)) throw malformed(streamId, `connection-specific field ${name}`)
    if (name === 'te') {
      if (value.toLowerCase() !== 'trailers') throw malformed(streamId, 'TE other than "trailers"')
    } else if (name === 'cookie') {
      ;(cookies ??= []).push(value)
      continue
    } else if (name === 'host') {
      if (host !== undefined) throw malformed(streamId, 'host twice')
      host = value
      continue
    } else if (name === 'content-length') {
      // Digits read by their value as HTTP/1.1 reads them (leading zeros: RFC 9110 §8.6), sent upstream
      // as one number; a list, which no HTTP/2 sender has a reason to write, stays malformed.
      const n = value.includes(',') ? 'invalid' : contentLengthOf(value, contentLength)
      if (typeof n !== 'number') throw malformed(streamId, 'bad content-length')
      contentLength = n
      continue
    }
    names.push(name)
    values.push(value)
  }
  if (method === undefined || (method !== 'GET' && method !== 'POST' && (method === '' || !validName(method.toLowerCase(), 0)))) throw malformed(streamId, 'missing or bad :method')
  if (method === 'CONNECT') {
    if (scheme !== undefined || path !== undefined || !authority) throw malformed(streamId, 'CONNECT needs :authority only (§8.5)')
  } else {
    if (!scheme || !validScheme(scheme)) throw malformed(streamId, 'missing or bad :scheme')
    if (!path) throw malformed(streamId, 'missing or empty :path')
    if (path !== '*' && path.charCodeAt(0) !== 47 /* / */ && (scheme === 'http' || scheme === 'https')) throw malformed(streamId, ':path not in origin form')
    if (path === '*' && method !== 'OPTIONS') throw malformed(streamId, ':path "*" only for OPTIONS')
    // absolute-path ["?" query] (§8.3.1): visible ASCII, no fragment, as an HTTP/1.1 target must be;
    // a space would split the request line this path becomes upstream.
    if (!PATH_CHARS.test(path)) throw malformed(streamId, ':path has a space, a control or non-ASCII byte, or a fragment')
    if (backslashInPath(path)) throw malformed(streamId, ':path has a backslash before its query (URL parsers read it as "/")')
  }
  if (authority !== undefined) {
    // §8.3.1: no userinfo for http(s); Host, when also sent, must name the same thing.
    if (authority.includes('@')) throw malformed(streamId, ':authority with userinfo')
    // The same authority, as HTTP/1.1's absolute-form is compared (the scheme's default port alike).
    if (host !== undefined && !sameAuthority(host, authority, scheme ?? 'https')) throw malformed(streamId, 'Host differs from :authority')
  }
  const hostValue = authority || host
  if (hostValue) values[0] = hostValue
  else {
    names.shift()
    values.shift()
  }
  if (contentLength !== undefined) {
    names.push('content-length')
    values.push(String(contentLength))
  }
  if (cookies !== undefined) {
    names.push('cookie')
    values.push(cookies.join('; '))
  }
  return new H2Request(method, scheme ?? '', hostValue ?? '', path ?? '', names, values, contentLength)
}

function validScheme(s: string): boolean {
  return s === 'https' || s === 'http' || /^[a-zA-Z][a-zA-Z0-9+.-]*$/.test(s)
}

/** Checks trailers (§8.1): no pseudo-headers, lowercase token names, clean values. */
export function checkTrailers(streamId: number, fields: HeaderField[]): HeaderField[] {
  for (const [name, value] of fields) {
    if (!validName(name, 0) || CONNECTION_SPECIFIC.has(name) || !validValue(value)) {
      throw streamError(streamId, H2Code.PROTOCOL_ERROR, `malformed trailer field ${JSON.stringify(name)} (RFC 9113 §8.1)`)
    }
  }
  return fields
}

/**
 * Response fields as HTTP/2 sends them: names lowercased, connection-specific fields and `te`
 * dropped (§8.2.2), the Connection field's listed names dropped too, pseudo-headers refused.
 * A 304's content-length goes too: it is the size of a body not sent, which §8.1.1 allows on a
 * HEADERS frame that ends the stream, but clients read as the length of this one (Go's transport
 * fails reading such a 304: "unexpected EOF"). A 304 SHOULD NOT carry representation metadata
 * but the fields RFC 9110 §15.4.5 lists, Content-Length not among them, and a cache never takes it
 * from one (RFC 9111 §3.2).
 */
export function responseFields(status: number, headers: Iterable<HeaderField>): HeaderField[] {
  const out: HeaderField[] = [[':status', String(status)]]
  let dropped: Set<string> | undefined
  for (const field of headers) {
    const [rawName, value] = field
    const name = rawName.toLowerCase()
    if (name === 'connection') {
      dropped ??= new Set()
      for (const token of value.split(',')) dropped.add(token.trim().toLowerCase())
      continue
    }
    if (CONNECTION_SPECIFIC.has(name) || name === 'te' || name.charCodeAt(0) === 58) continue
    if (status === 304 && name === 'content-length') continue
    out.push(name === rawName ? field : [name, value])
  }
  return dropped ? out.filter(([n]) => !dropped!.has(n)) : out
}

/** Response trailers as HTTP/2 sends them: the same filtering as responseFields, no pseudo-headers (§8.1). */
export function trailerFields(headers: Iterable<HeaderField>): HeaderField[] {
  return responseFields(0, headers).slice(1)
}
