/**
 * Reading a config file: file -> text -> TOML tables, plus a line index so that errors about a
 * value (not only syntax errors) can name the line. Validation and defaults live in resolve.ts.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'
import { parse } from 'toml'
import { ConfigError } from '../lib/errors.ts'
import type { FileConfig } from './schema.ts'
import { isSecretKeyPath } from './fields.ts'
import { normaliseKey } from './key-path.ts'

export interface LoadedFile {
  path: string
  data: FileConfig
  /** Maps a key path as written ("server.listen", "route[1].host") to its 1-based line. */
  lines: ReadonlyMap<string, number>
}

/**
 * The largest config file read. Past it the file is refused: /dev/zero (or another device named
 * by mistake) was read without end, and a 100 MB file took 10 s and 1.6 GB to parse.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/**
 * Configs that can be read only once (a pipe, such as `--config <(envsubst < proxy.toml.in)`; a
 * FIFO; stdin), by path: their bytes as read at start, which a reload (SIGHUP) applies again, since
 * reading again finds the pipe at its end (an empty config: every limit and the admin token gone)
 * or waits for a writer (a FIFO: the whole process blocked in open()). Workers get them from the
 * supervisor (workers.ts): they cannot open its pipe.
 */
const readOnce = new Map<string, Uint8Array>()
/** Configs read as regular files: one that is a pipe at a later read (a reload) is refused before open(), which would wait for a writer. */
const readAsFile = new Set<string>()

/** The bytes of `path` if it is a config that can be read only once and was read, else undefined. */
export function readOnceConfig(path: string): Uint8Array | undefined {
  return readOnce.get(path)
}

/** What a reload says when the config can be read only once. */
export const readOnceReloadNote = (path: string) => `reload: the config ${path} is a pipe, read once at start; the reload applies it as then read (the files it names are read again); restart the proxy to change it`

/** A worker's: what the read-once config at `path` holds comes on its stdin, from its supervisor. */
export function adoptReadOnceConfigFromStdin(path: string): void {
  // fd 0 itself: a socket pair (as Bun's spawn makes it) cannot be opened again by /dev/stdin (ENXIO).
  readOnce.set(path, readCapped(path, MAX_CONFIG_BYTES, 0))
}

export function loadConfigFile(path: string): LoadedFile {
  let bytes: Uint8Array
  try {
    const kept = readOnce.get(path)
    if (kept === undefined && readAsFile.has(path) && !statSync(path).isFile()) throw new ConfigError({ file: path }, 'cannot read config: it is no longer a regular file (a pipe or a device now); a reload reads the file the proxy started with: put the file back, or restart the proxy to read a pipe')
    bytes = kept ?? readCapped(path, MAX_CONFIG_BYTES)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory; give the path of the TOML file' : String(err)
    throw new ConfigError({ file: path }, `cannot read config: ${why}`, { cause: err })
  }
  return parseConfigText(decodeUtf8(bytes, path), path)
}

/**
 * Reads at most maxBytes from path, by reads rather than the size stat gives (a pipe, such as
 * `--config <(envsubst < proxy.toml.in)`, has none); one byte more is a ConfigError.
 */
function readCapped(path: string, maxBytes: number, openFd?: number): Uint8Array {
  const buf = new Uint8Array(maxBytes + 1)
  const fd = openFd ?? openSync(path, 'r')
  let n = 0
  let regular = true
  try {
    regular = fstatSync(fd).isFile()
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null)
  } finally {
    if (openFd === undefined) closeSync(fd)
  }
  if (n > maxBytes) throw new ConfigError({ file: path }, `cannot read config: larger than ${maxBytes / 1024 / 1024} MiB (is it the TOML file? /dev/zero and other devices never end); give the path of the TOML file`)
  if (!regular) readOnce.set(path, buf.slice(0, n))
  else if (openFd === undefined) readAsFile.add(path)
  return buf.subarray(0, n)
}

/**
 * The text of a TOML file, which must be UTF-8 (TOML 1.1). A lenient decode would turn a Latin-1
 * "é" into U+FFFD inside a value (a log file path, a header) without a word; this names the line.
 */
function decodeUtf8(bytes: Uint8Array, path: string): string {
  const strict = new TextDecoder('utf-8', { fatal: true })
  try {
    return strict.decode(bytes)
  } catch {
    let start = 0
    for (let line = 1; ; line++) {
      const nl = bytes.indexOf(0x0a, start)
      const end = nl < 0 ? bytes.length : nl
      try {
        strict.decode(bytes.subarray(start, end))
      } catch {
        throw new ConfigError({ file: path, line }, 'invalid TOML: not UTF-8 text (TOML files are UTF-8); save the file as UTF-8')
      }
      if (nl < 0) throw new ConfigError({ file: path }, 'invalid TOML: not UTF-8 text (TOML files are UTF-8); save the file as UTF-8')
      start = nl + 1
    }
  }
}

/**
 * A TOML date or time as written (1979-05-27, 07:32:00, 1979-05-27T07:32:00Z). No key takes one;
 * the parser returns the local ones as plain strings, so `access_log = 07:32` was the file
 * "07:32:00". Kept apart, it is refused as "not a string; quote it" and shown unquoted.
 */
export class TomlDateTime {
  constructor(readonly text: string) {}
  toJSON(): string {
    return this.text
  }
}

/**
 * A TOML float (1e3, 1.0, nan, inf). Every number key takes an integer, and the parser returns
 * both as JavaScript numbers, so `retries = 1e0` was 1: kept apart, an integral one is refused
 * as a float, and it is shown as TOML writes a float ("1000.0").
 */
export class TomlFloat {
  constructor(readonly value: number) {}
  get text(): string {
    const v = this.value
    if (Number.isNaN(v)) return 'nan'
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf'
    return Number.isInteger(v) && !/e/.test(String(v)) ? `${v}.0` : String(v)
  }
  toJSON(): number {
    return this.value
  }
}

/**
 * The parser's tree with integers (BigInt, as parsed with `bigint`) as numbers and floats as
 * TomlFloat. An integer past 2^53-1 calls `tooLarge`, which throws the parser's own error for it
 * (with its line and column).
 */
function numbersApart(value: unknown, tooLarge: () => never): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : tooLarge()
  if (typeof value === 'number') return new TomlFloat(value)
  if (Array.isArray(value)) return value.map((v) => numbersApart(v, tooLarge))
  if (value !== null && typeof value === 'object' && !(value instanceof TomlDateTime) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {}
    // Defined, not assigned: a key named "__proto__" stays a key (and an unknown one), not the prototype.
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: numbersApart(v, tooLarge), enumerable: true, writable: true, configurable: true })
    return out
  }
  return value
}

const asWritten = { from: (s: string) => new TomlDateTime(s.replace(/\[[^\]]*\]$/, '')) }
/** The parser's hook for Temporal objects, used to tell dates and times from strings. */
const DATES_APART = { ZonedDateTime: asWritten, PlainDateTime: asWritten, PlainDate: asWritten, PlainTime: asWritten }

/** What a number past 2^53-1 is told, whether TOML's integer (here) or a string, a flag or a unit (resolve.ts). */
export const TOO_LARGE = 'is too large (more than 2^53-1); no key takes a number that large'

export function parseConfigText(text: string, path: string): LoadedFile {
  let data: unknown
  try {
    const parsed = parse(text, { bigint: true, useTemporal: true, temporal: DATES_APART })
    data = numbersApart(parsed, () => {
      parse(text, { useTemporal: true, temporal: DATES_APART }) // throws "Integer … cannot be represented losslessly", where it is
      throw new Error('an integer past 2^53-1')
    })
  } catch (err) {
    // toml v5 reports the position in `location.start`; its `line`/`column` getters can be off.
    const e = err as { line?: number; column?: number; message?: string; location?: { start?: { line: number; column: number } } }
    const line = e.location?.start?.line ?? e.line
    const column = e.location?.start?.column ?? e.column
    // The parser's advice for a large integer ("Use the `bigint` option") is for programmers.
    const message = (e.message ?? String(err)).replace(/^(Integer \S+) cannot be represented losslessly as a JavaScript number\..*$/s, `$1 ${TOO_LARGE}`)
    // A key or table given twice: the parser names it (the line's last key may be another, inside an inline table).
    const twice = /^Cannot redefine existing key '(.*)'\.?$/s.exec(message)?.[1]
    const keyPath = line === undefined ? twice : keyAtLine(text, line, twice)
    // A secret's value (the admin token) is not written back, not even its first character (the parser's "but "s" found").
    const secret = keyPath !== undefined && isSecretKeyPath(keyPath)
    const said = secret ? message.replace(/ but ".*" found/s, ' but another character found').replace(/^Integer \S+/, 'An integer') : message
    const hint = twice !== undefined ? '; TOML takes each key and table once: remove one of the two, or merge them' : unquotedHint(text, line, secret)
    throw new ConfigError({ file: path, line, column, keyPath }, `invalid TOML: ${hint ? said.replace(/\.$/, '') : said}${hint}`, { cause: err })
  }
  return { path, data: data as FileConfig, lines: indexKeyLines(text) }
}

/**
 * A light scan of the TOML text that remembers on which line each key was set. It follows
 * [table] and [[array]] headers and dotted keys; it is only used to point at a line in an error
 * message, so a key it cannot place simply gets no line.
 */
export function indexKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>()
  const arrayCounts = new Map<string, number>()
  let prefix = ''
  // The inline tables and arrays open at this line ("server = {" or "route = [" left open: TOML
  // 1.1 lets an inline table span lines), innermost last: the keys inside are theirs.
  const inline: Open[] = []
  const rows = blankMultilineStrings(text).split(/\r?\n/)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.trim()
    if (inline.length > 0) {
      inlineKeys(row, inline, lines, i + 1)
      continue
    }
    if (row === '' || row.startsWith('#')) continue
    // A header ([table], [[array]]) ends with "]": a row without one is not tried (a 400 KB row of a broken file cost the header patterns 0.7 s).
    const header = row.startsWith('[') && row.includes(']')
    const arr = header && /^\[\[\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\]"'])+?)\s*\]\]/.exec(row)
    if (arr) {
      const name = normaliseKey(arr[1]!)
      const n = arrayCounts.get(name) ?? 0
      arrayCounts.set(name, n + 1)
      prefix = `${name}[${n}]`
      lines.set(prefix, i + 1)
      continue
    }
    const table = header && /^\[\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\]"'])+?)\s*\]/.exec(row)
    if (table) {
      // [route.extra] after [[route]] is a table of the last route (route[N].extra), as the parser reads it.
      const name = normaliseKey(table[1]!)
      const array = [...arrayCounts.keys()].filter((a) => name.startsWith(`${a}.`)).sort((x, y) => y.length - x.length)[0]
      prefix = array === undefined ? name : `${array}[${arrayCounts.get(array)! - 1}]${name.slice(array.length)}`
      lines.set(prefix, i + 1)
      continue
    }
    const kv = /^((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=/.exec(row)
    if (kv) {
      const key = normaliseKey(kv[1]!)
      const full = prefix ? `${prefix}.${key}` : key
      lines.set(full, i + 1)
      const rest = row.slice(kv[0].length).trimStart()
      if (rest.startsWith('{') || rest.startsWith('[')) {
        inline.push(rest.startsWith('{') ? full : { array: full, n: 0 })
        inlineKeys(rest.slice(1), inline, lines, i + 1)
      }
    }
  }
  return lines
}

/**
 * The text with the insides of multi-line strings ("""...""" and '''...''') blanked, line breaks
 * kept: a line inside one that looks like a [table] or a key = (a rule list, a note) is no key
 * and must not move the scan's lines (an error was placed on line 1 for one on line 5).
 */
function blankMultilineStrings(text: string): string {
  let out = ''
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === '#') {
      const newline = text.indexOf('\n', i)
      const end = newline < 0 ? text.length : newline
      out += text.slice(i, end)
      i = end
    } else if (text.startsWith('"""', i) || text.startsWith("'''", i)) {
      const delim = text.slice(i, i + 3)
      let j = i + 3
      for (;;) {
        const k = text.indexOf(delim, j)
        if (k < 0) {
          j = text.length
          break
        }
        let slashes = 0
        while (delim === '"""' && text[k - 1 - slashes] === '\\') slashes++
        if (slashes % 2 === 1) {
          j = k + 1
          continue
        }
        j = k + 3
        while (j < text.length && j - k < 5 && text[j] === delim[0]) j++ // up to two quotes more end the string (TOML)
        break
      }
      // An empty string of the same quote, then blanks (the closing quotes too): the scan sees a string closed on its line.
      out += delim[0]! + delim[0]! + ` ${text.slice(i + 3, j)}`.replace(/[^\n]/g, ' ')
      i = j
    } else if (c === '"' || c === "'") {
      let j = i + 1
      while (j < text.length && text[j] !== c && text[j] !== '\n') j += c === '"' && text[j] === '\\' ? 2 : 1
      out += text.slice(i, j + 1)
      i = j + 1
    } else {
      out += c
      i++
    }
  }
  return out
}

/**
 * The key a line sets (the last one the scan places there), for a syntax error's message;
 * undefined when none. `named`: the key the parser named (relative to its inline table, without
 * array indexes): the scan's key on that line that ends with it, when there is one.
 */
function keyAtLine(text: string, line: number, named?: string): string | undefined {
  let found: string | undefined
  let match: string | undefined
  for (const [key, at] of indexKeyLines(text)) {
    if (at !== line || /\]$/.test(key)) continue
    found = key
    const plain = key.replace(/\[\d+\]/g, '')
    if (named !== undefined && (plain === named || plain.endsWith(`.${named}`))) match = key
  }
  return match ?? (named !== undefined && found === undefined ? named : found)
}

/**
 * Advice for the usual mistake behind the parser's list of expected characters: a string value
 * left unquoted (connect_timeout = 3s, max_size = 64MiB, url = http://...).
 */
function unquotedHint(text: string, line: number | undefined, secret: boolean): string {
  if (line === undefined) return ''
  const row = text.split(/\r?\n/)[line - 1] ?? ''
  // A basic string left open at the end of its line (one quote, or an odd number of them).
  if (/^\s*[A-Za-z0-9_.-]+\s*=\s*"/.test(row) && !row.includes('"""') && (row.replace(/\\./g, '').match(/"/g)?.length ?? 0) % 2 === 1) return '; the string is not closed: end it with " on the same line'
  const m = /^\s*[A-Za-z0-9_."'-]+\s*=\s*([^\s"'[{#=][^#]*?)\s*(?:#.*)?$/.exec(row)
  if (!m) return ''
  const value = m[1]!
  // TOML's own unquoted values: numbers, booleans, dates and times.
  if (/^(?:true|false|[+-]?(?:inf|nan)|[+-]?[0-9_]+(?:\.[0-9_]+)?(?:[eE][+-]?[0-9_]+)?|0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|\d{4}-\d{2}-\d{2}.*|\d{2}:\d{2}.*)$/.test(value)) return ''
  return secret ? '; a string is written in double quotes (the value is not shown: it is a secret)' : `; a string is written in double quotes: "${value.replace(/["\\]/g, '\\$&')}"`
}

const INLINE_KEY = /^((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=\s*/

/** An inline table open around the scan (its key), or an array (its key, and the index of its element now: the commas seen). */
type Open = string | { array: string; n: number }

/**
 * The keys set in `text`, a piece of an inline table's or array's body (`open` holds the tables
 * and arrays open around it, innermost last), at line `line`: each "key =" at the start or after a
 * comma, a nested "{" opening a table (in an array, the element KEY[n]), a "[" after "=" an array,
 * a "}" or "]" closing one. Strings are skipped whole; a comment ends the line. Approximate, as
 * the scan is: a key it cannot place gets no line.
 */
function inlineKeys(text: string, open: Open[], lines: Map<string, number>, line: number): void {
  let at = 0
  let expectKey = true
  while (at < text.length && open.length > 0) {
    const c = text[at]!
    const top = open[open.length - 1]!
    const kv = expectKey && typeof top === 'string' && c !== ' ' && c !== '\t' ? INLINE_KEY.exec(text.slice(at)) : null
    if (kv) {
      // A key ("name", "quoted", dotted.key) and its "=".
      const full = `${top}.${normaliseKey(kv[1]!)}`
      lines.set(full, line)
      at += kv[0].length
      expectKey = false
      if (text[at] === '{' || text[at] === '[') {
        open.push(text[at] === '{' ? full : { array: full, n: 0 })
        at++
        expectKey = true
      }
    } else if (c === ' ' || c === '\t') {
      at++
    } else if (c === '#') {
      return
    } else if (c === ',') {
      if (typeof top !== 'string') top.n++
      expectKey = true
      at++
    } else if (c === '}' || c === ']') {
      open.pop()
      expectKey = false
      at++
    } else if (c === '{' || c === '[') {
      // An element of an array: a table KEY[n] (its keys follow), or an array in it.
      const element = typeof top === 'string' ? undefined : `${top.array}[${top.n}]`
      if (element !== undefined) lines.set(element, line)
      open.push(element === undefined ? top : c === '{' ? element : { array: element, n: 0 })
      at++
      expectKey = true
    } else if (c === '"' || c === "'") {
      // A string; as an element of an array, KEY[n] is its line (a bad one in a list over several lines is put there).
      if (typeof top !== 'string') lines.set(`${top.array}[${top.n}]`, line)
      const end = c === '"' ? /^"(?:[^"\\]|\\.)*"/.exec(text.slice(at)) : /^'[^']*'/.exec(text.slice(at))
      at += end ? end[0].length : text.length
      expectKey = false
    } else {
      at++
      expectKey = false
    }
  }
}

/**
 * The first line of a key under `keyPath` ([uptream.x] for "uptream", [[routes]] for "routes"),
 * from an index of every key's parents (each prefix that ends before a "." or "[") made once per
 * file: a scan of every key per lookup made a check of 3,000 upstreams take 11-45 s.
 */
export function firstLineUnder(lines: ReadonlyMap<string, number>, keyPath: string): number | undefined {
  let under = parentsIndex.get(lines)
  if (!under) {
    under = new Map()
    for (const [key, line] of lines) {
      for (let i = 1; i < key.length; i++) {
        if (key[i] !== '.' && key[i] !== '[') continue
        const parent = key.slice(0, i)
        const first = under.get(parent)
        if (first === undefined || line < first) under.set(parent, line)
      }
    }
    parentsIndex.set(lines, under)
  }
  return under.get(keyPath)
}
const parentsIndex = new WeakMap<ReadonlyMap<string, number>, Map<string, number>>()
