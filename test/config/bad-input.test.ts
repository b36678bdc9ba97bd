/** Bad values a config sweep found accepted: each is refused with the file, the line and the key named. */
import { expect, test } from 'bun:test'
import { parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ConfigError } from '../../src/lib/errors.ts'
import { ACME_FIELDS, ADMIN_FIELDS, CACHE_FIELDS, LOG_FIELDS, ROUTE_FIELDS, SERVER_FIELDS, UPSTREAM_FIELDS } from '../../src/config/fields.ts'

const UP = '[upstream]\nurl = "http://127.0.0.1:9000"\n'

function errorOf(text: string, flags = {}): string {
  try {
    resolveConfig(parseConfigText(text, 'proxy.toml'), flags)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error('expected a ConfigError')
}

test('an unquoted local date or time is not taken as the string it looks like (the parser returns those as strings)', () => {
  expect(errorOf(`${UP}[log]\naccess_log = 07:32\n`)).toBe('proxy.toml:4: log.access_log: 07:32:00 is not a string; quote it')
  expect(errorOf(`${UP}[server]\ntls_cert = 1979-05-27\ntls_key = "k.pem"\n`)).toBe('proxy.toml:4: server.tls_cert: 1979-05-27 is not a string; quote it')
  // A secret's value is not written back (second opinion, eighteenth round).
  expect(errorOf(`${UP}[admin]\ntoken = 1979-05-27T07:32:00\n`)).toBe('proxy.toml:4: admin.token: the value (not shown) is not a string; quote it')
  expect(errorOf(`${UP}[admin]\ntoken = ["s3cret"]\n`)).toBe('proxy.toml:4: admin.token: the value (not shown) is a list; this key takes one value')
  expect(errorOf(`${UP}[server]\nvia = 1979-05-27T07:32:00Z\n`)).toBe('proxy.toml:4: server.via: 1979-05-27T07:32:00Z is not a string; quote it')
  expect(errorOf('[upstream.x]\nurl = 1979-05-27\n')).toBe('proxy.toml:2: upstream.x.url: 1979-05-27 is not a string; quote it')
  expect(errorOf(`${UP}[[route]]\nhost = 07:32:00\nupstream = "default"\n`)).toBe('proxy.toml:4: route[0].host: 07:32:00 is not a string; quote it')
  expect(errorOf(`${UP}[acme]\ndomains = [1979-05-27]\n`)).toBe('proxy.toml:4: acme.domains: [1979-05-27] is not a list of strings')
})

test('a number past 2^53-1 (a string, a flag, or a unit\'s multiple) is refused: it was kept rounded, and check printed what TOML cannot read back', () => {
  const tooLarge = 'is too large (more than 2^53-1); no key takes a number that large'
  expect(errorOf(`${UP}[server]\nmax_connections = "18446744073709551616"\n`)).toBe(`proxy.toml:4: server.max_connections: "18446744073709551616" ${tooLarge}`)
  expect(errorOf(UP, { server: { max_concurrent_requests: '99999999999999999999' }, flagNames: { 'server.max_concurrent_requests': '--max-concurrent-requests' } })).toBe(`(flags): --max-concurrent-requests: "99999999999999999999" ${tooLarge}`)
  expect(errorOf(`${UP}[cache]\nmax_size = "99999999999999999999999GiB"\n`)).toBe(`proxy.toml:4: cache.max_size: "99999999999999999999999GiB" ${tooLarge}`)
  // A value past 200 characters is quoted cut, with its length (a 3 MB one made a 3 MB log line at each reload).
  expect(errorOf(`${UP}[cache]\nmax_size = "${'9'.repeat(400)}"\n`)).toBe(`proxy.toml:4: cache.max_size: "${'9'.repeat(199)}... (402 characters in all) ${tooLarge}`)
  expect(errorOf(`${UP}[server]\nkeepalive_timeout = "9999999999999999999d"\n`)).toBe('proxy.toml:4: server.keepalive_timeout: "9999999999999999999d" is longer than any clock counts in milliseconds (2^53-1 ms, about 285,000 years); use e.g. "365d"')
  // The largest that are kept print back as TOML reads them.
  const c = resolveConfig(parseConfigText(`${UP}[server]\nmax_connections = "9007199254740991"\nkeepalive_timeout = "9007199254740991ms"\n[cache]\nmax_size = "8388607GiB"\n`, 'proxy.toml'))
  expect(c.server.maxConnections).toBe(9007199254740991)
  expect(c.server.keepaliveTimeoutMs).toBe(9007199254740991)
  expect(c.cache.maxBytes).toBe(8388607 * 2 ** 30)
})

test('an upstream URL is refused for what the URL parser would drop or dial elsewhere: an empty query, fragment or userinfo, port 0, a host no DNS name can be', () => {
  const url = (u: string) => errorOf(`[upstream]\nurl = "${u}"\n`)
  expect(url('http://h.example?')).toBe('proxy.toml:2: upstream.url: "http://h.example?" has a path or query; give only scheme://host[:port]')
  expect(url('http://h.example/#')).toBe('proxy.toml:2: upstream.url: "http://h.example/#" has a path or query; give only scheme://host[:port]')
  expect(url('http://@h.example')).toBe('proxy.toml:2: upstream.url: "http://@h.example" has credentials; they are not supported in the upstream URL')
  expect(url('http://:@h.example:8080')).toBe('proxy.toml:2: upstream.url: "http://:@h.example:8080" has credentials; they are not supported in the upstream URL')
  expect(url('http://h.example:0')).toBe('proxy.toml:2: upstream.url: "http://h.example:0" has port 0, which cannot be dialled; give the origin\'s port, e.g. "http://h.example:8080"')
  // A colon with no port after it: the parser took the scheme's port (80) without a word.
  expect(url('http://127.0.0.1:')).toBe('proxy.toml:2: upstream.url: "http://127.0.0.1:" has a colon but no port; give the port ("http://127.0.0.1:8080") or leave the colon out for 80')
  expect(url('https://h.example:/')).toContain('has a colon but no port; give the port ("https://h.example:8080") or leave the colon out for 443')
  expect(url('http://h%2eexample')).toBe('proxy.toml:2: upstream.url: "http://h%2eexample" has a percent-encoded host, which the URL parser decodes to "h.example"; write the host as it is')
  // A bare "-5s" was taken as a host name, and check printed tls_server_name = "-5s", which is refused when read back.
  expect(url('-5s')).toBe('proxy.toml:2: upstream.url: "-5s": "-5s" is not a DNS name or an IP address; use e.g. "https://origin.example.com"')
  expect(errorOf('', { upstream: { url: '-1' }, flagNames: { 'upstream.url': '--upstream' } })).toBe('(flags): --upstream: "-1": "-1" is not a DNS name or an IP address; use e.g. "https://origin.example.com"')
  // Still taken: a bare host:port, a final dot, an underscore, a name in Unicode (sent as its punycode), brackets.
  for (const ok of ['h.example:8080', 'http://h.example.', 'http://my_host:80', 'http://bücher.example', 'http://[::1]:8080', 'https://h.example:443/']) {
    expect(resolveConfig(parseConfigText(`[upstream]\nurl = "${ok}"\n`, 'proxy.toml')).upstreams.default!.url).toBeString()
  }
})

test('a [[route]] that an earlier one makes unreachable is refused at its line, naming the route that takes its requests', () => {
  const two = (a: string, b: string) => errorOf(`${UP}[[route]]\n${a}\nupstream = "default"\n[[route]]\n${b}\nupstream = "default"\n`)
  const never = (by: string) => `is never used: route[0] (line ${by}) comes first and matches every request it would; remove it, or put the narrower route first`
  expect(two('host = "a.example"', 'host = "A.example."')).toBe(`proxy.toml:6: route[1]: ${never('3')}`)
  expect(two('path_prefix = "/"', 'path_prefix = "/api/"')).toBe(`proxy.toml:6: route[1]: ${never('3')}`)
  expect(two('path_prefix = "/api"', 'host = "a.example"\npath_prefix = "/api/v2"')).toBe(`proxy.toml:6: route[1]: ${never('3')}`)
  // Prefixes compared as the router reads them: "/%61pi/" is "/api/" (it passed and took route[1]'s requests); "/api/../web/" is "/web/" (it was refused).
  expect(two('path_prefix = "/%61pi/"', 'path_prefix = "/api/v2/"')).toBe(`proxy.toml:6: route[1]: ${never('3')}`)
  expect(resolveConfig(parseConfigText(`${UP}[[route]]\npath_prefix = "/api"\nupstream = "default"\n[[route]]\npath_prefix = "/api/../web/"\nupstream = "default"\n`, 'proxy.toml')).routes).toHaveLength(3)
  // Reachable: the narrower first, another host, a prefix the first does not start.
  for (const [a, b] of [['path_prefix = "/api/"', 'path_prefix = "/"'], ['host = "a.example"', 'host = "b.example"'], ['host = "a.example"\npath_prefix = "/x"', 'host = "a.example"'], ['path_prefix = "/api/"', 'path_prefix = "/ap"']]) {
    expect(resolveConfig(parseConfigText(`${UP}[[route]]\n${a}\nupstream = "default"\n[[route]]\n${b}\nupstream = "default"\n`, 'proxy.toml')).routes).toHaveLength(3)
  }
})

test('an empty string for a key without a default is refused, not taken as unset (tls_cert = "" with tls_key = "" served plain HTTP)', () => {
  expect(errorOf(`${UP}[server]\ntls_cert = ""\ntls_key = ""\n`)).toBe('proxy.toml:4: server.tls_cert: is empty; remove it to leave it unset (the listener then serves plain HTTP), or give the path of a PEM certificate chain')
  expect(errorOf(`${UP}ca_file = ""\n`)).toBe("proxy.toml:3: upstream.ca_file: is empty; remove it to leave it unset (then: the system's roots)")
  expect(errorOf(`${UP}health_path = ""\n`)).toBe('proxy.toml:3: upstream.health_path: is empty; remove it to leave it unset (then: passive checks only)')
  expect(errorOf(`${UP}[[route]]\nhost = ""\npath_prefix = "/api/"\nupstream = "default"\n`)).toBe('proxy.toml:4: route[0].host: is empty; remove it to leave it unset (then: any host)')
  expect(errorOf(`${UP}[[route]]\nhost = "a.example"\npath_prefix = ""\nupstream = "default"\n`)).toBe('proxy.toml:5: route[0].path_prefix: is empty; remove it to leave it unset (then: any path)')
  // Required keys say so.
  expect(errorOf('[upstream]\nurl = ""\n')).toBe('proxy.toml:2: upstream.url: is empty; it is required: set the origin, e.g. url = "https://origin.example.com"')
  expect(errorOf(`${UP}[[route]]\nhost = "a.example"\nupstream = ""\n`)).toBe('proxy.toml:5: route[0].upstream: is empty; it is required: name an [upstream.NAME]')
  // The same from a flag ("--tls-cert ''", an unset variable in --tls-cert "$CERT").
  const flagNames = { 'server.tls_cert': '--tls-cert', 'server.tls_key': '--tls-key' }
  expect(errorOf(UP, { server: { tls_cert: '', tls_key: '' }, flagNames })).toBe('(flags): --tls-cert: is empty; remove it to leave it unset (the listener then serves plain HTTP), or give the path of a PEM certificate chain')
  // Every string key without a default, in every table: none takes "" as unset.
  const at: Record<string, [string, string]> = {
    server: [UP, '[server]'],
    upstream: ['', '[upstream]\nurl = "http://127.0.0.1:9000"'],
    route: [UP, '[[route]]\nupstream = "default"\npath_prefix = "/x/"'],
    admin: [UP, '[admin]'],
    log: [UP, '[log]'],
    acme: [UP, '[acme]'],
    cache: [UP, '[cache]'],
  }
  const tables = { server: SERVER_FIELDS, upstream: UPSTREAM_FIELDS, route: ROUTE_FIELDS, admin: ADMIN_FIELDS, log: LOG_FIELDS, acme: ACME_FIELDS, cache: CACHE_FIELDS }
  let swept = 0
  for (const [table, fields] of Object.entries(tables)) {
    for (const f of fields.filter((f) => f.kind.type === 'string' && f.default === undefined)) {
      const [before, header] = at[table]!
      const body = `${header.replace(/^(path_prefix|upstream|url) = .*$/gm, (line, key) => (key === f.key ? '' : line))}\n${f.key} = ""\n`
      expect(errorOf(`${before}${body}`)).toMatch(new RegExp(`^proxy\\.toml:\\d+: ${table === 'route' ? 'route\\[0\\]' : table}\\.${f.key}: is empty[,;] `))
      swept++
    }
  }
  expect(swept).toBe(15)
})

test('a NUL byte in a path key (or any string key) is refused: no file path can hold one, and check passed it', () => {
  const nul = (table: string, key: string) => errorOf(`${UP}[${table}]\n${key} = "/var/lib/a\\u0000b"\n`)
  const noPath = 'holds a NUL byte (\\u0000), which no file path can hold; remove it'
  expect(nul('log', 'access_log')).toBe(`proxy.toml:4: log.access_log: "/var/lib/a\\u0000b" ${noPath}`)
  expect(nul('acme', 'state_dir')).toBe(`proxy.toml:4: acme.state_dir: "/var/lib/a\\u0000b" ${noPath}`)
  expect(nul('acme', 'ca_file')).toBe(`proxy.toml:4: acme.ca_file: "/var/lib/a\\u0000b" ${noPath}`)
  expect(errorOf(`${UP}ca_file = "/etc/ca\\u0000.pem"\n`)).toBe(`proxy.toml:3: upstream.ca_file: "/etc/ca\\u0000.pem" ${noPath}`)
  expect(errorOf(`${UP}[server]\ntls_cert = "c\\u0000.pem"\ntls_key = "k.pem"\n`)).toBe(`proxy.toml:4: server.tls_cert: "c\\u0000.pem" ${noPath}`)
  expect(errorOf(`${UP}[server]\ntls_cert = "c.pem"\ntls_key = "k\\u0000.pem"\n`)).toBe(`proxy.toml:5: server.tls_key: "k\\u0000.pem" ${noPath}`)
  // Keys that are not paths: refused too (health_path went into the request line as it was, email into the ACME account).
  expect(errorOf(`${UP}health_path = "/healthz\\u0000"\n`)).toBe('proxy.toml:3: upstream.health_path: "/healthz\\u0000" holds a NUL byte (\\u0000), which no value of this key can hold; remove it')
  expect(errorOf(`${UP}[acme]\nemail = "ops\\u0000@example.com"\n`)).toBe('proxy.toml:4: acme.email: "ops\\u0000@example.com" holds a NUL byte (\\u0000), which no value of this key can hold; remove it')
})

test('a listen host in a loose IPv4 form (hex, octal, fewer than four parts) is refused naming the address it would be, not bound to it', () => {
  const listen = (table: string, key: string, v: string) => errorOf(`${UP}[${table}]\n${key} = "${v}"\n`)
  const loose = 'is not an IPv4 address as RFC 3986 writes one (four decimal numbers, no leading zeros), and would be read as'
  expect(listen('server', 'listen', '0x7f.1:80')).toBe(`proxy.toml:4: server.listen: "0x7f.1" ${loose} 127.0.0.1; write "127.0.0.1:80"`)
  expect(listen('server', 'listen', '0177.0.0.1:8080')).toBe(`proxy.toml:4: server.listen: "0177.0.0.1" ${loose} 127.0.0.1; write "127.0.0.1:8080"`)
  expect(listen('server', 'listen', '127.1:8080')).toBe(`proxy.toml:4: server.listen: "127.1" ${loose} 127.0.0.1; write "127.0.0.1:8080"`)
  expect(listen('server', 'listen', '2130706433:8080')).toBe(`proxy.toml:4: server.listen: "2130706433" ${loose} 127.0.0.1; write "127.0.0.1:8080"`)
  expect(listen('admin', 'listen', '0x7f.0.0.1:9090')).toBe(`proxy.toml:4: admin.listen: "0x7f.0.0.1" ${loose} 127.0.0.1; write "127.0.0.1:9090"`)
  expect(listen('acme', 'http_listen', '0.0.0.0.:80')).toBe(`proxy.toml:4: acme.http_listen: "0.0.0.0." ${loose} 0.0.0.0; write "0.0.0.0:80"`)
  expect(listen('server', 'listen', '1.2.3.999:80')).toBe('proxy.toml:4: server.listen: "1.2.3.999" is not an IPv4 address (four decimal numbers from 0 to 255); use e.g. "0.0.0.0:8080"')
  expect(errorOf(UP, { server: { listen: '0x7f.1:80' }, flagNames: { 'server.listen': '--listen' } })).toBe(`(flags): --listen: "0x7f.1" ${loose} 127.0.0.1; write "127.0.0.1:80"`)
  // An ACME name that ends in a number is read as an address too.
  expect(errorOf(`${UP}[acme]\ndomains = ["0x7f.1"]\n`)).toBe(`proxy.toml:4: acme.domains[0]: "0x7f.1" ${loose} 127.0.0.1; list DNS names only`)
  // Names and canonical addresses are still taken.
  for (const ok of ['127.0.0.1:80', 'localhost:80', 'edge-1.example:80', 'svc_a:80', '[::1]:80', ':80', 'a1.x7f:80', '0x7f.example:80']) {
    expect(resolveConfig(parseConfigText(`${UP}[server]\nlisten = "${ok}"\n`, 'proxy.toml')).server.listen.port).toBe(80)
  }
})

test('a TOML float where an integer goes (1e3, 1.0) is refused naming the key, not taken as the integer it equals', () => {
  const float = '(written with a decimal point or an exponent)'
  expect(errorOf(`[server]\nmax_connections = 1e3\n${UP}`)).toBe(`proxy.toml:2: server.max_connections: 1000.0 is a float ${float}; an integer is expected: write 1000`)
  expect(errorOf(`${UP}retries = 1.0\n`)).toBe(`proxy.toml:3: upstream.retries: 1.0 is a float ${float}; an integer is expected: write 1`)
  expect(errorOf(`${UP}prewarm = 2E0\n`)).toBe(`proxy.toml:3: upstream.prewarm: 2.0 is a float ${float}; an integer is expected: write 2`)
  expect(errorOf(`[server]\nmax_body_size = 1e3\n${UP}`)).toBe(`proxy.toml:2: server.max_body_size: 1000.0 is a float ${float}; an integer of bytes is expected: write 1000, or a size such as "64KiB"`)
  expect(errorOf(`[server]\nkeepalive_timeout = 0.0\n${UP}`)).toBe(`proxy.toml:2: server.keepalive_timeout: 0.0 is a float ${float}; write a duration such as "30s", or the integer 0`)
  expect(errorOf(`${UP}connect_timeout = 5e3\n`)).toBe(`proxy.toml:3: upstream.connect_timeout: 5000.0 is a float ${float}; write a duration such as "30s"`)
  // Shown as TOML writes a float wherever it is refused.
  expect(errorOf(`${UP}[acme]\ndomains = [1.0]\n`)).toBe('proxy.toml:4: acme.domains: [1.0] is not a list of strings')
  expect(errorOf(`[server]\nhttp2 = 1.0\n${UP}`)).toBe('proxy.toml:2: server.http2: 1.0 is not true or false')
  // Integers in any TOML form are taken: hex, underscores, -0.
  const c = resolveConfig(parseConfigText(`[server]\nmax_connections = 0x10\nmax_concurrent_requests = 1_000\nmax_body_size = -0\n${UP}retries = 3\n`, 'proxy.toml'))
  expect([c.server.maxConnections, c.server.maxConcurrentRequests, c.server.maxBodyBytes, c.upstreams.default!.retries]).toEqual([16, 1000, 0, 3])
})

test('a key named "__proto__" stays a key (an unknown one), not the prototype of its table: it was dropped silently', () => {
  expect(errorOf(`${UP}[server]\n"__proto__" = { listen = "127.0.0.1:1" }\n`)).toBe('proxy.toml:4: server.__proto__: unknown key')
  expect(errorOf(`${UP}"__proto__" = 1\n`)).toBe('proxy.toml:3: upstream.__proto__: unknown key')
  // With the flags the command line always gives (a flagNames table, here empty): "__proto__" was
  // looked up there as a flag's name, found Object.prototype, and the error's own formatting
  // failed (E_INTERNAL, exit 1). "toString" the same.
  const cli = { flagNames: {} }
  const TOP = 'unknown key; expected one of: server, upstream, route, admin, log, acme, cache'
  expect(errorOf(`__proto__ = 1\n${UP}`, cli)).toBe(`proxy.toml:1: __proto__: ${TOP}`)
  expect(errorOf(`${UP}[__proto__]\nx = 1\n`, cli)).toBe(`proxy.toml:3: __proto__: ${TOP}`)
  expect(errorOf(`"__proto__".url = "x"\n`, cli)).toBe(`proxy.toml:1: __proto__: ${TOP}`)
  expect(errorOf(`toString = 1\n${UP}`, cli)).toBe(`proxy.toml:1: toString: ${TOP}`)
})

test('a health_path that a request target cannot hold (a line break, a space, a fragment, a bad escape) is refused: it was sent as the check\'s request line', () => {
  expect(errorOf(`${UP}health_path = "/h HTTP/1.1\\r\\nX-Injected: 1\\r\\n"\n`)).toBe('proxy.toml:3: upstream.health_path: "/h HTTP/1.1\\r\\nX-Injected: 1\\r\\n" holds " ", which a request target cannot; write it %-escaped (a space is "%20"), e.g. "/healthz?full=1"')
  expect(errorOf(`${UP}health_path = "/h\\n"\n`)).toContain('upstream.health_path: "/h\\n" holds "\\n"')
  expect(errorOf(`${UP}health_path = "/h#top"\n`)).toContain('holds "#"')
  expect(errorOf(`${UP}health_path = "/h%zz"\n`)).toContain('holds "%"')
  expect(errorOf(`${UP}health_path = "/ü"\n`)).toContain('holds "ü"')
  const c = resolveConfig(parseConfigText(`${UP}health_path = "/status/deep-1_2.x~?full=1&a=%20b;c=@:d"\n`, 'proxy.toml'))
  expect(c.upstreams.default!.healthPath).toBe('/status/deep-1_2.x~?full=1&a=%20b;c=@:d')
})

test('an upstream named after a property every object has ("toString", "constructor", "__proto__") is not taken as defined: requests crashed on a pool that did not exist', () => {
  const A = '[upstream.a]\nurl = "http://127.0.0.1:9000"\n'
  expect(errorOf(`[server]\ndefault_upstream = "toString"\n${A}`)).toBe('proxy.toml:2: server.default_upstream: names upstream "toString", which is not defined; define [upstream.toString] or set server.default_upstream')
  expect(errorOf(`${A}[[route]]\nhost = "x.com"\nupstream = "constructor"\n`)).toBe('proxy.toml:5: route[0].upstream: names "constructor", which is not defined; defined: a')
  // "__proto__" was dropped silently, leaving no upstream, or one a route named and no pool had.
  expect(errorOf('[upstream.__proto__]\nurl = "http://127.0.0.1:9000"\n')).toBe('proxy.toml:1: upstream.__proto__: "__proto__" cannot name an upstream; choose another name')
  // As names of their own, defined, they are upstreams like any other.
  const c = resolveConfig(parseConfigText(`[server]\ndefault_upstream = "constructor"\n[upstream.constructor]\nurl = "http://127.0.0.1:9000"\n[upstream.toString]\nurl = "http://127.0.0.1:9001"\n[[route]]\nhost = "x.com"\nupstream = "toString"\n`, 'proxy.toml'))
  expect(Object.keys(c.upstreams)).toEqual(['constructor', 'toString'])
  expect(c.routes[0]!.upstream).toBe('toString')
  expect(new Map(Object.entries(c.upstreams)).get('toString')!.port).toBe(9001)
})

test('settings that contradict each other are refused naming the key, not adjusted or left to fail at start', () => {
  const cli = { flagNames: {} }
  // The admin endpoint on the proxy's own port (serve then stopped with "address in use" caused by itself).
  expect(errorOf(`[server]\nlisten = "127.0.0.1:19430"\n[admin]\nlisten = "127.0.0.1:19430"\n${UP}`, cli)).toBe("proxy.toml:4: admin.listen: 127.0.0.1:19430 is the proxy's own listen address (127.0.0.1:19430); give the admin endpoint another port")
  expect(errorOf(`[server]\nlisten = "0.0.0.0:8080"\n[admin]\nlisten = "127.0.0.1:8080"\n${UP}`, cli)).toContain("admin.listen: 127.0.0.1:8080 is the proxy's own listen address (0.0.0.0:8080)")
  // "localhost" is a loopback address (check passed, serve blamed "another process"); an IPv6 address beside 0.0.0.0 is free (it was refused).
  expect(errorOf(`[server]\nlisten = "localhost:19431"\n[admin]\nlisten = "127.0.0.1:19431"\n${UP}`, cli)).toContain("admin.listen: 127.0.0.1:19431 is the proxy's own listen address (localhost:19431)")
  expect(resolveConfig(parseConfigText(`[server]\nlisten = "0.0.0.0:19432"\n[admin]\nlisten = "[::1]:19432"\n${UP}`, 'proxy.toml'), cli).admin.listen?.host).toBe('::1')
  // A clash set by one side only is named by that side: a --listen onto the default admin port (it named admin.listen, set nowhere).
  expect(errorOf(UP, { server: { listen: '127.0.0.1:9090' }, flagNames: { 'server.listen': '--listen' } })).toBe("(flags): --listen: 127.0.0.1:9090 takes the admin endpoint's address (admin.listen, 127.0.0.1:9090 by default); listen on another port, or move the admin with --admin (admin.listen)")
  // As resolve_max_ttl below the default resolve_min_ttl, and eject_max_time below the default eject_time (both named resolve_min_ttl / eject_time, set nowhere).
  expect(errorOf(UP, { upstream: { resolve_max_ttl: '1s' }, flagNames: { 'upstream.resolve_max_ttl': '--resolve-max-ttl' } })).toBe('(flags): --resolve-max-ttl: is smaller than resolve_min_ttl (5000 ms); make it at least that, or lower resolve_min_ttl')
  expect(errorOf(`${UP}eject_max_time = "100ms"\n`, cli)).toBe('proxy.toml:3: upstream.eject_max_time: is smaller than eject_time (1000 ms, the first ejection); make it at least that, or lower eject_time')
  // Upstream flags beside two named upstreams and no default_upstream: which one is not said (it read "upstream.default.url: missing", no line).
  expect(errorOf('[upstream.a]\nurl = "http://127.0.0.1:9001"\n[upstream.b]\nurl = "http://127.0.0.1:9002"\n', { upstream: { connect_timeout: '1s' }, flagNames: { 'upstream.connect_timeout': '--connect-timeout' } })).toBe('proxy.toml: server.default_upstream: is not set, and the upstream flags apply to the default upstream; set default_upstream to one of "a", "b", or pass --upstream <url> for a new one')
  // The HTTP-01 listener there (serve then blamed --listen, which it opens first).
  expect(errorOf(`[server]\nlisten = "127.0.0.1:8443"\n[acme]\ndomains = ["a.example"]\nhttp_listen = "127.0.0.1:8443"\n${UP}`, cli)).toBe("proxy.toml:5: acme.http_listen: 127.0.0.1:8443 is the proxy's own listen address (127.0.0.1:8443); the HTTP-01 listener needs port 80 (or another port), the proxy its HTTPS one")
  // An ejection that starts longer than its longest (as resolve_min_ttl over resolve_max_ttl already was).
  expect(errorOf(`${UP}eject_time = "1m"\neject_max_time = "10s"\n`, cli)).toBe('proxy.toml:3: upstream.eject_time: is larger than eject_max_time (the longest an ejection lasts); make it at most that, or raise eject_max_time')
  // A largest object over the whole budget was lowered to it without a word; the default still is.
  expect(errorOf(`${UP}[cache]\nmax_size = "1MiB"\nmax_object_size = "2MiB"\n`, cli)).toBe('proxy.toml:5: cache.max_object_size: is larger than max_size (1048576 bytes): no response that large could be stored; make it at most max_size')
  expect(resolveConfig(parseConfigText(`${UP}[cache]\nmax_size = "1MiB"\n`, 'proxy.toml'), cli).cache.maxObjectBytes).toBe(1024 * 1024)
  // Different ports, or the admin off, are fine.
  expect(resolveConfig(parseConfigText(`[server]\nlisten = "127.0.0.1:8080"\n[admin]\nlisten = "127.0.0.1:8081"\n${UP}`, 'proxy.toml'), cli).admin.listen?.port).toBe(8081)
})

test('server.http_redirect_listen: in front of a TLS listener only, on a port of its own', () => {
  const cli = { flagNames: {} }
  const TLS = 'tls_cert = "/etc/proxy/cert.pem"\ntls_key = "/etc/proxy/key.pem"\n'
  const ok = resolveConfig(parseConfigText(`[server]\nlisten = "0.0.0.0:443"\n${TLS}http_redirect_listen = "0.0.0.0:80"\n${UP}`, 'proxy.toml'), cli)
  expect(ok.server.httpRedirectListen).toEqual({ host: '0.0.0.0', port: 80 })
  expect(resolveConfig(parseConfigText(UP, 'proxy.toml'), cli).server.httpRedirectListen).toBeUndefined()
  expect(errorOf(`[server]\nlisten = "0.0.0.0:8080"\nhttp_redirect_listen = "0.0.0.0:80"\n${UP}`, cli)).toBe('proxy.toml:3: server.http_redirect_listen: redirects to https, but the listener serves plain HTTP; set tls_cert and tls_key (or acme.domains), or remove the key')
  expect(errorOf(`[server]\nlisten = "0.0.0.0:443"\n${TLS}http_redirect_listen = "127.0.0.1:443"\n${UP}`, cli)).toBe('proxy.toml:5: server.http_redirect_listen: 127.0.0.1:443 takes the port of server.listen (0.0.0.0:443); give it a port of its own')
  expect(errorOf(`[server]\nlisten = "0.0.0.0:443"\n${TLS}http_redirect_listen = "127.0.0.1:9090"\n${UP}`, cli)).toContain('takes the port of admin.listen (127.0.0.1:9090)')
  expect(errorOf(`[server]\nlisten = "0.0.0.0:443"\nhttp_redirect_listen = ":80"\n[acme]\ndomains = ["a.example"]\n${UP}`, cli)).toBe('proxy.toml:3: server.http_redirect_listen: 0.0.0.0:80 takes the port of acme.http_listen (0.0.0.0:80); give it a port of its own; with acme.domains, acme.http_listen redirects to https itself: remove this key')
  // With ACME's own listener off, it may stand in for it (the redirect without the challenges).
  expect(resolveConfig(parseConfigText(`[server]\nlisten = "0.0.0.0:443"\nhttp_redirect_listen = ":80"\n[acme]\ndomains = ["a.example"]\nhttp_listen = "off"\n${UP}`, 'proxy.toml'), cli).server.httpRedirectListen?.port).toBe(80)
})

test('tls_cert without tls_key (or the other way) is named where the one given is: its line, or its flag', () => {
  expect(errorOf(`${UP}[server]\nlisten = "127.0.0.1:8443"\ntls_cert = "/etc/proxy/cert.pem"\n`, { flagNames: {} })).toBe('proxy.toml:5: server.tls_cert: is set without tls_key; tls_cert and tls_key go together: set both or neither')
  expect(errorOf(`[server]\ntls_key = "/etc/proxy/key.pem"\n${UP}`, { flagNames: {} })).toBe('proxy.toml:2: server.tls_key: is set without tls_cert; tls_cert and tls_key go together: set both or neither')
  expect(errorOf(UP, { server: { tls_cert: '/c.pem' }, flagNames: { 'server.tls_cert': '--tls-cert' } })).toBe('(flags): --tls-cert: is set without tls_key; tls_cert and tls_key go together: set both or neither')
})

test('a key that only its sub-tables or dotted keys set is located at the first of them, not at its table\'s line', () => {
  // [upstream] with a url, then [upstream.x.y]: "upstream.x" is a named upstream mixed in; it was reported at line 1.
  expect(errorOf('[upstream]\nurl = "http://127.0.0.1:9"\n[upstream.x.y]\nz = 1\n', { flagNames: {} })).toMatch(/^proxy\.toml:3: upstream\.x: named upstreams/)
  expect(errorOf('[upstream]\nurl = "http://127.0.0.1:9"\na.a.b = 1\n', { flagNames: {} })).toMatch(/^proxy\.toml:3: upstream\.a: named upstreams/)
})
