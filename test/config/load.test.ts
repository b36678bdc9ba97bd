/** Reading a config file: what is refused before any key is looked at, with the file (and line) named. */
import { afterAll, expect, test } from 'bun:test'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { indexKeyLines, loadConfigFile, MAX_CONFIG_BYTES, parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ConfigError } from '../../src/lib/errors.ts'
import { testDir } from '../support/temp-dir.ts'

const dir = testDir('proxy-load-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function loadError(path: string): ConfigError {
  try {
    loadConfigFile(path)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

test('a file that is not UTF-8 is refused at the line of the first bad byte (TOML 1.1), not read with U+FFFD in a value', () => {
  const path = join(dir, 'latin1.toml')
  // "café" in Latin-1: 0xE9 alone is no UTF-8 sequence.
  writeFileSync(path, Buffer.concat([Buffer.from('[upstream]\nurl = "http://127.0.0.1:1"\n[log]\naccess_log = "/var/log/caf'), Buffer.from([0xe9]), Buffer.from('.log"\n')]))
  const err = loadError(path)
  expect(err.location).toEqual({ file: path, line: 4 })
  expect(err.message).toBe(`${path}:4: invalid TOML: not UTF-8 text (TOML files are UTF-8); save the file as UTF-8`)
})

test('UTF-8 with a byte order mark and CRLF line ends is read', () => {
  const path = join(dir, 'bom.toml')
  writeFileSync(path, '\ufeff[upstream]\r\nurl = "http://caf\u00e9.example"\r\n')
  expect(loadConfigFile(path).data).toEqual({ upstream: { url: 'http://caf\u00e9.example' } })
  expect(loadConfigFile(path).lines.get('upstream.url')).toBe(2)
})

test('a directory given as the config says so, instead of the runtime\'s EISDIR text', () => {
  const path = join(dir, 'conf.d')
  mkdirSync(path)
  expect(loadError(path).message).toBe(`${path}: cannot read config: it is a directory; give the path of the TOML file`)
})

test('an integer past 2^53-1 is refused at its line and column without the parser\'s advice to programmers', () => {
  let err: unknown
  try {
    parseConfigText('[server]\nmax_connections = 9223372036854775807\n', 'proxy.toml')
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(ConfigError)
  expect((err as ConfigError).message).toBe('proxy.toml:2:19: server.max_connections: invalid TOML: Integer 9223372036854775807 is too large (more than 2^53-1); no key takes a number that large')
})

/** The message of the ConfigError parsing `text` throws. */
function syntaxError(text: string): string {
  try {
    parseConfigText(text, 'proxy.toml')
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error('expected a ConfigError')
}

test('a TOML syntax error names the key of its line, and says what to do for an unquoted or unclosed string', () => {
  // The parser's list of what it expected stays (it is exact); the advice follows it.
  expect(syntaxError('[upstream]\nurl = "http://a"\nconnect_timeout = 3s\n')).toMatch(/^proxy\.toml:3:20: upstream\.connect_timeout: invalid TOML: Expected .* but "s" found; a string is written in double quotes: "3s"$/)
  expect(syntaxError('[upstream]\nurl = http://a:8080\n')).toMatch(/^proxy\.toml:2:7: upstream\.url: invalid TOML: .* but "h" found; a string is written in double quotes: "http:\/\/a:8080"$/)
  expect(syntaxError('[server]\nmax_body_size = 64MiB # large\n')).toMatch(/; a string is written in double quotes: "64MiB"$/)
  expect(syntaxError('[upstream]\nurl = "http://a"\nconnect_timeout = "3s\n')).toMatch(/^proxy\.toml:3:22: upstream\.connect_timeout: invalid TOML: .*; the string is not closed: end it with " on the same line$/)
  // No advice where the mistake is another: a doubled "=", a broken table header (no key on its line).
  expect(syntaxError('[upstream]\nurl = "a"\nx = = 1\n')).toMatch(/^proxy\.toml:3:5: upstream\.x: invalid TOML: Expected [^;]* but "=" found\.$/)
  expect(syntaxError('[upstream\nurl = "a"\n')).toMatch(/^proxy\.toml:1:10: invalid TOML: Expected [^;]*found\.$/)
})

test('the admin token left unquoted is not written back, not even its first character (nineteenth round: the hint echoed it into journald)', () => {
  for (const text of ['[admin]\ntoken = s3cr3t-Token-42\n', '[admin]\ntoken = s3cr3t-Token-42 # note\n', 'admin.token = s3cr3t-Token-42\n', '[admin]\ntoken = "s3cr3t-Token-42\n']) {
    const said = syntaxError(text)
    expect(said).toContain('admin.token: invalid TOML')
    expect(said).not.toContain('s3cr3t')
    expect(said).not.toContain('"s"')
  }
  expect(syntaxError('[admin]\ntoken = s3cr3t\n')).toEndWith('but another character found; a string is written in double quotes (the value is not shown: it is a secret)')
  // All digits, past 2^53-1: the parser's message named the number (third review).
  for (const token of ['8462917503826491736', '0x7462917503826491']) {
    const said = syntaxError(`[admin]\ntoken = ${token}\n`)
    expect(said).toStartWith('proxy.toml:2:9: admin.token: invalid TOML: An integer is too large')
    expect(said).not.toMatch(/\d{10}/)
  }
})

test('a key or table given twice is named as the parser names it, with what to do (outside review, fifteenth round: a repeated inline table was blamed on its last key, and no advice was given)', () => {
  const advice = "; TOML takes each key and table once: remove one of the two, or merge them"
  expect(syntaxError('[server]\nlisten = "127.0.0.1:1"\nlisten = "127.0.0.1:2"\n')).toBe(`proxy.toml:3:1: server.listen: invalid TOML: Cannot redefine existing key 'server.listen'${advice}`)
  expect(syntaxError('server = { listen = "127.0.0.1:1", via = "edge" }\nserver = { listen = "127.0.0.1:1", via = "edge" }\n')).toBe(`proxy.toml:2:1: server: invalid TOML: Cannot redefine existing key 'server'${advice}`)
  expect(syntaxError('[upstream]\nurl = "http://a"\n[upstream]\nretries = 1\n')).toBe(`proxy.toml:3:1: upstream: invalid TOML: Cannot redefine existing key 'upstream'${advice}`)
  // The parser names a key relative to its inline table and without array indexes: the path is the scan's (second opinion on the change).
  const keyOf = (text: string) => /^proxy\.toml:[\d:]+ ([^:]+): /.exec(syntaxError(text))?.[1]
  expect(keyOf('server = { listen = "127.0.0.1:1", listen = "127.0.0.1:2" }\n')).toBe('server.listen')
  expect(keyOf('[upstream]\nurl = "http://a"\n[[route]]\nupstream = "default"\n[[route]]\npath_prefix = "/a"\npath_prefix = "/b"\n')).toBe('route[1].path_prefix')
  expect(keyOf('route = [ { upstream = "default" }, { path_prefix = "/a", path_prefix = "/b" } ]\n')).toBe('route[1].path_prefix')
  expect(keyOf(`[upstream]\nurl = "http://a"\n"it's" = 1\n"it's" = 2\n`)).toBe("upstream.it's")
})

test('a one-line triple-quoted string in an array or inline table closes there: the keys after it keep their lines (second opinion, fifteenth round: every later key lost its line)', () => {
  const lines = indexKeyLines(['[server]', 'trusted_proxies = ["""10.0.0.0/8""", "192.168.0.0/16"]', "via = '''p'''", 'x = { a = """q""" }', 'bogus = 1'].join('\n'))
  expect([lines.get('server.trusted_proxies'), lines.get('server.via'), lines.get('server.x.a'), lines.get('server.bogus')]).toEqual([2, 3, 4, 5])
})

test('a file past MAX_CONFIG_BYTES is refused before it is parsed (a device such as /dev/zero never ends), one at the limit is read', () => {
  const head = '[upstream]\nurl = "http://127.0.0.1:1"\n'
  const atLimit = join(dir, 'at-limit.toml')
  writeFileSync(atLimit, head + '#'.repeat(MAX_CONFIG_BYTES - head.length - 1) + '\n')
  expect(loadConfigFile(atLimit).data).toEqual({ upstream: { url: 'http://127.0.0.1:1' } })
  const over = join(dir, 'over.toml')
  writeFileSync(over, head + '#'.repeat(MAX_CONFIG_BYTES - head.length) + '\n')
  // Before: read whole and parsed (a 100 MB file took 10 s and 1.6 GB; /dev/zero, memory until it ran out).
  const err = loadError(over)
  expect(err.location).toEqual({ file: over })
  expect(err.message).toBe(`${over}: cannot read config: larger than 4 MiB (is it the TOML file? /dev/zero and other devices never end); give the path of the TOML file`)
})

test('keys inside inline tables, on one line or across lines (TOML 1.1), get their own lines for errors', () => {
  const text = [
    'server = {', // 1
    '  listen = "127.0.0.1:1",', // 2
    '  viaa = "p", # a comment, with = in it', // 3
    '  nested = { a = 1,', // 4
    '    "b" = "x = {y}" },', // 5
    '}', // 6
    'upstream = { url = "http://a", retries = -1 }', // 7
    '[log]', // 8
    'access_log = "off"', // 9
  ].join('\n')
  const lines = indexKeyLines(text)
  expect(Object.fromEntries(lines)).toEqual({
    server: 1,
    'server.listen': 2,
    'server.viaa': 3,
    'server.nested': 4,
    'server.nested.a': 4,
    'server.nested.b': 5,
    upstream: 7,
    'upstream.url': 7,
    'upstream.retries': 7,
    log: 8,
    'log.access_log': 9,
  })
  // Through the resolver: the error is at the key's own line, not the table's first.
  expect(() => resolveConfig(parseConfigText('server = {\n listen = "127.0.0.1:1",\n viaa = "p"\n}\n[upstream]\nurl = "http://127.0.0.1:9"\n', 'proxy.toml'))).toThrow('proxy.toml:3: server.viaa: unknown key')
})

test('tables in an inline array (route = [ {...}, {...} ]) get their lines, element by element (outside review, fifteenth round: an error in one named no line)', () => {
  const text = [
    'route = [', // 1
    '  { host = "a.test", upstream = "web" },', // 2
    '  { host = "b.test", upstream = "web",', // 3
    '    cache = "no" },', // 4
    ']', // 5
    'x = [["a", { k = 1 }], [2]]', // 6
    '[upstream.web]', // 7
    'url = "http://127.0.0.1:9"', // 8
  ].join('\n')
  expect(Object.fromEntries(indexKeyLines(text))).toEqual({
    route: 1,
    'route[0]': 2,
    'route[0].host': 2,
    'route[0].upstream': 2,
    'route[1]': 3,
    'route[1].host': 3,
    'route[1].upstream': 3,
    'route[1].cache': 4,
    x: 6,
    'x[0]': 6,
    'x[0][0]': 6,
    'x[0][1]': 6,
    'x[0][1].k': 6,
    'x[1]': 6,
    'upstream.web': 7,
    'upstream.web.url': 8,
  })
  expect(() => resolveConfig(parseConfigText(text.replace(/^x = .*$/m, ''), 'proxy.toml'))).toThrow('proxy.toml:4: route[1].cache: "no" is not true or false')
})

test('keys and elements as the parser reads them get their own lines: a quoted key with escapes, a string element of a list over several lines, a table name with "]" in quotes (outside review, twenty-first round: each was put on its table\'s or list\'s first line, or on none)', () => {
  const UP = '[upstream]\nurl = "http://127.0.0.1:9"\n'
  const error = (text: string) => {
    try {
      resolveConfig(parseConfigText(text, 'proxy.toml'))
      return 'ok'
    } catch (err) {
      return (err as Error).message
    }
  }
  expect(error(`${UP}\n"retr\\u0069es" = 99\n`)).toStartWith('proxy.toml:4: upstream.retries:')
  expect(error(`${UP}"caf\\u00e9" = 1\n`)).toStartWith('proxy.toml:3: upstream.café: unknown key')
  expect(error(`${UP}resolvers = [\n  "127.0.0.1:53",\n  "a b",\n]\n`)).toStartWith('proxy.toml:5: upstream.resolvers[1]:')
  expect(Object.fromEntries(indexKeyLines('[upstream."a]b"]\nurl = 1\n[[route]]\nhost = "x"\n'))).toEqual({ 'upstream.a]b': 1, 'upstream.a]b.url': 2, 'route[0]': 3, 'route[0].host': 4 })
})

test('lines inside a multi-line string are no keys or tables, and [route.x] after [[route]] is the last route\'s (errors named the wrong line)', () => {
  const text = [
    '[upstream]', // 1
    'url = "http://a"', // 2
    'retries = 99', // 3
    'proxy_redirect = """', // 4
    '[x] /y', // 5
    'retries = 5"""', // 6
    "note = '''", // 7
    '[[route]]', // 8
    "'''", // 9
    'connect_timeout = "forever"', // 10
    '[[route]]', // 11
    'host = "x.example"', // 12
    '[route.extra]', // 13
    'foo = 1', // 14
  ].join('\n')
  const lines = indexKeyLines(text)
  expect(lines.get('upstream.retries')).toBe(3)
  expect(lines.get('upstream.connect_timeout')).toBe(10)
  expect(lines.has('x')).toBe(false)
  expect(lines.get('route[0]')).toBe(11)
  expect(lines.get('route[0].extra.foo')).toBe(14)
  // An escaped quote does not end a basic multi-line string.
  expect(indexKeyLines('a = """x \\""" still\n[t]\n"""\nb = 1\n').get('b')).toBe(4)
})
