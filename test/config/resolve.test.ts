import { describe, expect, test } from 'bun:test'
import { parseConfigText } from '../../src/config/load.ts'
import { parseHostPort, parseUpstreamUrl, resolveConfig } from '../../src/config/resolve.ts'
import { ConfigError } from '../../src/lib/errors.ts'

function fromText(text: string, flags = {}) {
  return resolveConfig(parseConfigText(text, 'proxy.toml'), flags)
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('layers', () => {
  test('defaults apply and are in ms/bytes', () => {
    const c = resolveConfig(undefined, { upstream: { url: 'origin.example.com' } })
    expect(c.server.listen).toEqual({ host: '0.0.0.0', port: 8080 })
    expect(c.admin.listen).toEqual({ host: '127.0.0.1', port: 9090 })
    const u = c.upstreams.default!
    expect(u.scheme).toBe('http')
    expect(u.port).toBe(80)
    expect(u.connectTimeoutMs).toBe(5000)
    expect(u.tlsServerName).toBe('origin.example.com')
    expect(c.server.maxBodyBytes).toBe(0)
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.upstreams.default)).toBe(true)
  })

  test('flags override the file, the file overrides defaults', () => {
    const c = fromText('[server]\nlisten = "127.0.0.1:7000"\n[upstream]\nurl = "https://a.example"\nconnect_timeout = "2s"\nretries = 4\n', {
      server: { listen: '127.0.0.1:7001' },
      upstream: { retries: '1' },
    })
    expect(c.server.listen.port).toBe(7001)
    expect(c.upstreams.default!.connectTimeoutMs).toBe(2000)
    expect(c.upstreams.default!.retries).toBe(1)
    expect(c.upstreams.default!.port).toBe(443)
  })

  test('undefined flag values never override', () => {
    const c = fromText('[upstream]\nurl = "a.example:81"\n', { upstream: { url: undefined } })
    expect(c.upstreams.default!.port).toBe(81)
  })

  test('named upstreams and routes; the default route comes last', () => {
    const c = fromText(`
[server]
default_upstream = "web"
[upstream.api]
url = "https://api.example"
[upstream.web]
url = "http://web.example"
[[route]]
host = "*.api.example"
upstream = "api"
[[route]]
path_prefix = "/v1/"
upstream = "api"
`)
    expect(c.routes.map((r) => r.upstream)).toEqual(['api', 'api', 'web'])
    expect(c.routes[0]!.host).toBe('*.api.example')
  })
})

describe('errors name the file, the line and the key', () => {
  test.each([
    ['[upstream]\nurl = "a"\nconect_timeout = "1s"\n', 'upstream.conect_timeout', 3, /did you mean "connect_timeout"/],
    ['[upstream]\nurl = "a"\nconnect_timeout = "soon"\n', 'upstream.connect_timeout', 3, /not a duration/],
    ['[server]\nlisten = "nowhere"\n[upstream]\nurl = "a"\n', 'server.listen', 2, /host:port/],
    ['[server]\nmax_body_size = "lots"\n[upstream]\nurl = "a"\n', 'server.max_body_size', 2, /not a size/],
    ['[server]\nmax_header_size = "100B"\n[upstream]\nurl = "a"\n', 'server.max_header_size', 2, /outside 1KiB\.\.1MiB/],
    ['[server]\nvia = "my proxy"\n[upstream]\nurl = "a"\n', 'server.via', 2, /not a name Via can carry/],
    ['[server]\nmax_concurrent_requests = -1\n[upstream]\nurl = "a"\n', 'server.max_concurrent_requests', 2, /whole number/],
    ['[upstream]\nurl = "ftp://a"\n', 'upstream.url', 2, /not supported/],
    ['[upstream]\nurl = "a"\nfamily = "ipv5"\n', 'upstream.family', 3, /one of/],
    ['[upstream]\nurl = "a"\nresolvers = ["dns.google"]\n', 'upstream.resolvers[0]', 3, /ip\[:port\]/],
    ['[upstream]\nurl = "a"\n[[route]]\nhost = "x.example"\nupstream = "nope"\n', 'route[0].upstream', 5, /not defined/],
    // A route without upstream beside a lone [upstream]: told its name (a new user's guess, thirteenth round).
    ['[upstream]\nurl = "a"\n[[route]]\npath_prefix = "/nocache/"\ncache = false\n', 'route[0].upstream', 3, /missing; name an \[upstream\.NAME\] \(defined: default; a lone \[upstream\] table is "default"\)/],
    ['[upstream]\nurl = "a"\n[server]\ntrusted_proxies = ["127.0.0.0/33"]\n', 'server.trusted_proxies[0]', 4, /CIDR/],
    // A prefix no request path can start with: it took no request and was taken without a word (twentieth round of outside reviews).
    ['[upstream]\nurl = "a"\n[[route]]\npath_prefix = "/search?admin"\nupstream = "default"\n', 'route[0].path_prefix', 4, /holds "\?" or "#": routes match the path alone/],
    ['[upstream]\nurl = "a"\n[[route]]\npath_prefix = "/a\\\\b/"\nupstream = "default"\n', 'route[0].path_prefix', 4, /backslash or a control character/],
    // An IPv4-mapped address with an IPv4-sized prefix is ::/8, every IPv4 client trusted; bits past the prefix mean less than written (thirteenth round of review).
    ['[upstream]\nurl = "a"\n[server]\ntrusted_proxies = ["::1/128", "::ffff:10.0.0.0/8"]\n', 'server.trusted_proxies[1]', 4, /is ::\/8 read as IPv6, a range of IPv6 clients and no IPv4 one; write "10\.0\.0\.0\/8" for the IPv4 range, or "::ffff:10\.0\.0\.0\/104"/],
    ['[upstream]\nurl = "a"\n[server]\ntrusted_proxies = ["192.168.1.10/24"]\n', 'server.trusted_proxies[0]', 4, /has bits set past its \/24 prefix, so it means 192\.168\.1\.0\/24; write that/],
    ['bogus = 1\n[upstream]\nurl = "a"\n', 'bogus', 1, /unknown key/],
    // A key written in another table's section: told where it goes (it said only "unknown key").
    ['[server]\nconnect_timeout = "5s"\n[upstream]\nurl = "a"\n', 'server.connect_timeout', 2, /unknown key; it goes in \[upstream\]$/],
    ['[upstream]\nurl = "a"\nlisten = "127.0.0.1:1"\n', 'upstream.listen', 3, /unknown key; it goes in \[server\] or \[admin\]$/],
    // A misspelt table: its header's line, and the name meant.
    ['[uptream.x]\nurl = "a"\n', 'uptream', 1, /unknown key \(did you mean "upstream"\?\)/],
    ['[upstream]\nurl = "a"\n\n[[routes]]\nupstream = "a"\n', 'routes', 4, /did you mean "route"/],
    // [upstream] url = ... and [upstream.NAME] together: says how to write it.
    ['[upstream]\nurl = "a"\n[upstream.b]\nurl = "b"\n', 'upstream.b', 3, /cannot be mixed with \[upstream\] url = "\.\.\."; name that one too/],
    // One front door on Bun: Bun.serve is not offered (it lost pipelined requests and rewrote targets).
    ['[upstream]\nurl = "a"\n[server]\nlistener = "runtime"\n', 'server.listener', 4, /not offered on Bun/],
    // A zero where it would fail every request, or spin: refused, with the default as the example.
    ['[upstream]\nurl = "a"\nheader_timeout = "0s"\n', 'upstream.header_timeout', 3, /must be more than 0; use e\.g\. "60s"/],
    ['[upstream]\nurl = "a"\nconnect_timeout = 0\n', 'upstream.connect_timeout', 3, /must be more than 0; use e\.g\. "5s"/],
    ['[upstream]\nurl = "a"\nhealth_interval = "0ms"\n', 'upstream.health_interval', 3, /must be more than 0/],
    ['[server]\nclient_header_timeout = "0s"\n[upstream]\nurl = "a"\n', 'server.client_header_timeout', 2, /must be more than 0; use e\.g\. "10s"/],
    // host_header is sent as the Host field of every request: a line break in it added a header upstream.
    ['[upstream]\nurl = "a"\nhost_header = "www.example\\r\\nX-Injected: 1"\n', 'upstream.host_header', 3, /is not host\[:port\] \(RFC 9110 §7\.2\)/],
    ['[upstream]\nurl = "a"\nhost_header = "two words"\n', 'upstream.host_header', 3, /is not host\[:port\]/],
    // SNI is a DNS name (RFC 6066 §3): a bad one used to pass check and fail every handshake.
    ['[upstream]\nurl = "https://a"\ntls_server_name = "two words"\n', 'upstream.tls_server_name', 3, /is not a DNS name or an IP address/],
    ['[upstream]\nurl = "https://a"\ntls_server_name = "https://origin.example"\n', 'upstream.tls_server_name', 3, /is not a DNS name/],
    // An empty string where unset means a default: check printed "not set", serve wrote no access log line at all.
    // Where "off" means none, the message says so: access_log = "" was how some turned the log off.
    ['[upstream]\nurl = "a"\n[log]\naccess_log = ""\n', 'log.access_log', 4, /is empty; leave it out for its default, "stdout", or "off" for none$/],
    ['[server]\nvia = ""\n[upstream]\nurl = "a"\n', 'server.via', 2, /is empty; leave it out for its default, "proxy", or "off" for none$/],
    ['[upstream]\nurl = "a"\n[acme]\ndirectory = ""\n', 'acme.directory', 4, /is empty; leave it out for its default, "https:\/\/acme-v02\.api\.letsencrypt\.org\/directory"$/],
    // The admin token: "" left the admin open ("token is not set"), and one no Authorization header carries locked everyone out (401).
    ['[upstream]\nurl = "a"\n[admin]\ntoken = ""\n', 'admin.token', 4, /is empty, which would leave the admin endpoints open; leave it out for none, or use printable ASCII/],
    ['[upstream]\nurl = "a"\n[admin]\ntoken = "s\u00e9cret"\n', 'admin.token', 4, /cannot be sent as written in an Authorization header/],
    ['[upstream]\nurl = "a"\n[admin]\ntoken = " padded "\n', 'admin.token', 4, /a space at either end/],
    ['[upstream]\nurl = "a"\n[admin]\ntoken = "a\\tb"\n', 'admin.token', 4, /cannot be sent as written/],
    // "off" is for the admin and HTTP-01 listeners; the proxy's own listener cannot be off (serve crashed, E_INTERNAL).
    ['[server]\nlisten = "off"\n[upstream]\nurl = "a"\n', 'server.listen', 2, /"off" is not host:port; use e\.g\. "0\.0\.0\.0:8080", "\[::\]:8080" or ":8080"$/],
    // A zone only on a link-local address, and a link-local one only with it: "[::1%lo]" passed check and failed at start.
    ['[server]\nlisten = "[::1%lo]:8080"\n[upstream]\nurl = "a"\n', 'server.listen', 2, /"\[::1%lo\]:8080": a zone \("%lo"\) belongs only on a link-local address \(fe80::\/10\); write "\[::1\]" without it$/],
    ['[server]\nlisten = "[fe80::1]:8080"\n[upstream]\nurl = "a"\n', 'server.listen', 2, /a link-local address is listened on through one interface; add its zone, e\.g\. "\[fe80::1%eth0\]"$/],
    ['[upstream]\nurl = "a"\n[admin]\nlisten = "[::1%1]:9090"\n', 'admin.listen', 4, /a zone \("%1"\) belongs only on a link-local address/],
    // A link-local upstream passed check, then every connect failed (no interface to dial through).
    ['[upstream]\nurl = "http://[fe80::1]:8080"\n', 'upstream.url', 2, /a link-local address \(fe80::\/10\) needs an interface zone, which an upstream URL cannot carry/],
    // Well written, but under 1 ms or a fraction of a byte: said as such, not "is not a duration/size".
    ['[server]\nclient_body_timeout = "0.4ms"\n[upstream]\nurl = "a"\n', 'server.client_body_timeout', 2, /"0\.4ms" is under 1 ms: durations are whole milliseconds; use 0 for none or at least "1ms"$/],
    ['[upstream]\nurl = "a"\nconnect_timeout = "0.0001s"\n', 'upstream.connect_timeout', 3, /"0\.0001s" is under 1 ms: durations are whole milliseconds; use at least "1ms"$/],
    ['[server]\nmax_body_size = "1.5"\n[upstream]\nurl = "a"\n', 'server.max_body_size', 2, /"1\.5" is not a whole number of bytes; write whole bytes \("1500"\) or a unit \("1\.5KiB"\)$/],
    ['[server]\nmax_body_size = 1.5\n[upstream]\nurl = "a"\n', 'server.max_body_size', 2, /1\.5 is not a whole number of bytes/],
    ['[cache]\nmax_size = "0.0001KiB"\n[upstream]\nurl = "a"\n', 'cache.max_size', 2, /is not a whole number of bytes/],
    // Past 2^31-1 ms a timer fires at once: a health check every millisecond, every connect timed out.
    ['[upstream]\nurl = "a"\nhealth_interval = "30d"\n', 'upstream.health_interval', 3, /"30d" is longer than a timer can wait \(24\.8 days\); use at most "24d"/],
    ['[server]\ndrain_timeout = "25d"\n[upstream]\nurl = "a"\n', 'server.drain_timeout', 2, /longer than a timer can wait/],
    // A trim takes the event loop 2-8 ms: every millisecond would be all it does.
    ['[server]\ntrim_interval = "500ms"\n[upstream]\nurl = "a"\n', 'server.trim_interval', 2, /"500ms" is too short: use 0 for never, or at least "1s" \(e\.g\. "60s"\)$/],
  ])('%#: %p', (text, keyPath, line, message) => {
    const err = configError(() => fromText(text))
    expect(err.code).toBe('E_CONFIG')
    expect(err.location.file).toBe('proxy.toml')
    expect(err.location.keyPath).toBe(keyPath)
    expect(err.location.line).toBe(line)
    expect(err.message).toMatch(message)
    expect(err.message.startsWith(`proxy.toml:${line}: ${keyPath}: `)).toBe(true)
  })

  test('TOML syntax errors carry line and column', () => {
    const err = configError(() => fromText('[server]\nlisten = "unterminated\n'))
    expect(err.location.line).toBe(2)
    expect(err.location.column).toBeGreaterThan(0)
  })

  test('a flag under 1 ms or of a fraction of a byte is said as such, naming the flag', () => {
    const flagNames = { 'upstream.idle_timeout': '--idle-timeout', 'server.max_body_size': '--max-body-size' }
    const ms = configError(() => resolveConfig(undefined, { upstream: { url: 'a', idle_timeout: '0.4ms' }, flagNames }))
    expect(ms.message).toBe('(flags): --idle-timeout: "0.4ms" is under 1 ms: durations are whole milliseconds; use 0 for none or at least "1ms"')
    const size = configError(() => resolveConfig(undefined, { upstream: { url: 'a' }, server: { max_body_size: '0.5B' }, flagNames }))
    expect(size.message).toBe('(flags): --max-body-size: "0.5B" is not a whole number of bytes; write whole bytes ("1500") or a unit ("1.5KiB")')
    // Malformed is still malformed.
    expect(configError(() => resolveConfig(undefined, { upstream: { url: 'a', idle_timeout: '0.4' }, flagNames })).message).toMatch(/"0\.4" is not a duration/)
  })

  test('a bad flag value names the flag', () => {
    const err = configError(() => resolveConfig(undefined, { upstream: { url: 'a', connect_timeout: 'x' }, flagNames: { 'upstream.connect_timeout': '--connect-timeout' } }))
    expect(err.location.keyPath).toBe('--connect-timeout')
  })

  test('upstream flags set the default upstream only: a bad value in another upstream names the file, not the flag', () => {
    const text = '[server]\ndefault_upstream = "web"\n[upstream.api]\nurl = "a"\nconnect_timeout = "5 m"\n[upstream.web]\nurl = "b"\n'
    const err = configError(() => fromText(text, { upstream: { connect_timeout: '3s' }, flagNames: { 'upstream.connect_timeout': '--connect-timeout' } }))
    expect(err.message).toBe('proxy.toml:5: upstream.api.connect_timeout: "5 m" is not a duration; use e.g. "250ms", "30s", "5m"')
    // The flag's own bad value, set on the default upstream web, still names the flag.
    const flagErr = configError(() => fromText(text.replace('"5 m"', '"5s"'), { upstream: { connect_timeout: 'soon' }, flagNames: { 'upstream.connect_timeout': '--connect-timeout' } }))
    expect(flagErr.location.keyPath).toBe('--connect-timeout')
  })

  test('a zero stays allowed where it means none', () => {
    const c = fromText('[server]\nclient_body_timeout = "0s"\n[upstream]\nurl = "a"\nidle_timeout = "0s"\nmax_connection_age = 0\n')
    expect([c.server.clientBodyTimeoutMs, c.upstreams.default!.idleTimeoutMs, c.upstreams.default!.maxConnectionAgeMs]).toEqual([0, 0, 0])
  })

  test('durations only compared with the clock may be longer than a timer can wait; 24d is the longest timed one', () => {
    const c = fromText('[upstream]\nurl = "a"\nstale_grace = "30d"\nmax_connection_age = "30d"\npool_idle_timeout = "30d"\nconnect_timeout = "24d"\n[cache]\nstale_if_error = "365d"\n')
    const u = c.upstreams.default!
    expect([u.staleGraceMs, u.maxConnectionAgeMs, u.poolIdleTimeoutMs, c.cache.staleIfErrorMs]).toEqual([30 * 86_400_000, 30 * 86_400_000, 30 * 86_400_000, 365 * 86_400_000])
    expect(u.connectTimeoutMs).toBe(24 * 86_400_000)
  })

  test('resolve_max_ttl and the deadlines a sweep checks may be longer than a timer can wait; the ones a timer waits on may not', () => {
    // The resolver caps its refresh timer at 2^31-1 ms; keep-alive, head, body, send and upstream idle limits are deadlines a sweep compares with the clock.
    const c = fromText('[server]\nkeepalive_timeout = "30d"\nclient_header_timeout = "30d"\nclient_body_timeout = "30d"\nsend_timeout = "30d"\n[upstream]\nurl = "a"\nresolve_max_ttl = "30d"\nidle_timeout = "30d"\n')
    const d30 = 30 * 86_400_000
    expect([c.upstreams.default!.resolveMaxTtlMs, c.upstreams.default!.idleTimeoutMs]).toEqual([d30, d30])
    expect([c.server.keepaliveTimeoutMs, c.server.clientHeaderTimeoutMs, c.server.clientBodyTimeoutMs, c.server.sendTimeoutMs]).toEqual([d30, d30, d30, d30])
    // Still more than 0.
    expect(configError(() => fromText('[upstream]\nurl = "a"\nresolve_max_ttl = "0s"\n')).message).toMatch(/upstream\.resolve_max_ttl: must be more than 0; use e\.g\. "5m"$/)
    // Passed to setTimeout: retry_timeout (the wait for a rescue), header_timeout (the request body's wait).
    for (const key of ['retry_timeout', 'header_timeout']) {
      expect(configError(() => fromText(`[upstream]\nurl = "a"\n${key} = "30d"\n`)).message).toMatch(/longer than a timer can wait/)
    }
  })

  test('"off" turns the admin and HTTP-01 listeners off; a bad address says "off" is allowed there', () => {
    const c = fromText('[upstream]\nurl = "a"\n[admin]\nlisten = "off"\n[acme]\nhttp_listen = "off"\n')
    expect([c.admin.listen, c.acme.httpListen]).toEqual([undefined, undefined])
    expect(configError(() => fromText('[upstream]\nurl = "a"\n[admin]\nlisten = "of"\n')).message).toEndWith('or ":8080", or "off"')
  })

  test.each(['origin.example.com', 'origin.example.com.', 'svc_a.internal', '192.0.2.1', '2001:db8::1'])('tls_server_name %p is taken', (name) => {
    // Taken without a final dot: SNI carries none (RFC 6066 §3).
    expect(fromText(`[upstream]\nurl = "https://a"\ntls_server_name = "${name}"\n`).upstreams.default!.tlsServerName).toBe(name.replace(/\.$/, ''))
  })

  test.each([
    ['.example.com', 'www.example.com', true],
    ['.example.com', 'example.com', true],
    ['.example.com', '*.a.example.com', true],
    ['*.example.com', 'www.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', '*.example.com', true],
    ['www.example.com', '*.example.com', false],
    ['example.com', '.example.com', false],
    ['.example.com', 'notexample.com', false],
  ])('a route of host %p before one of %p: the second never used: %p (second opinion, eighteenth round)', (first, second, shadowed) => {
    const text = `[upstream.api]\nurl = "a"\n[upstream.default]\nurl = "b"\n[[route]]\nhost = "${first}"\nupstream = "api"\n[[route]]\nhost = "${second}"\nupstream = "default"\n`
    if (shadowed) expect(configError(() => fromText(text)).message).toContain('route[1]: is never used: route[0]')
    else expect(fromText(text).routes).toHaveLength(3)
  })

  test.each(['_', '_.', '._', '*._'])('route host %p (nginx\'s server_name _) is refused, saying what to write instead (second opinion, eighteenth round)', (host) => {
    const err = configError(() => fromText(`[upstream.api]\nurl = "a"\n[upstream.default]\nurl = "b"\n[[route]]\nhost = "${host}"\nupstream = "api"\n`))
    expect(err.message).toContain('route[0].host: is nginx\'s "no name" (server_name _)')
  })

  test.each(['.', '..', 'a..b', '-bad-', 'a.-b', '*.', '*..a', 'a b'])('route host %p is refused, naming the forms it may take (eighteenth round of review)', (host) => {
    const err = configError(() => fromText(`[upstream.api]\nurl = "a"\n[upstream.default]\nurl = "b"\n[[route]]\nhost = "${host}"\nupstream = "api"\n`))
    expect(err.message).toContain('route[0].host')
    expect(err.message).toContain('".suffix" (the name and any under it)')
  })

  test.each([['.Example.com', '.example.com'], ['api.example.', 'api.example'], ['*.api.example', '*.api.example'], ['svc_a.internal', 'svc_a.internal'], ['127.0.0.1', '127.0.0.1']])('route host %p is taken as %p', (host, want) => {
    expect(fromText(`[upstream.api]\nurl = "a"\n[upstream.default]\nurl = "b"\n[[route]]\nhost = "${host}"\nupstream = "api"\n`).routes[0]!.host).toBe(want)
  })

  test('keys set to no effect are listed with where they were set: [acme] without domains, TLS keys on an http upstream, [cache] keys with the cache off (eighteenth round of review)', () => {
    const c = fromText('[upstream.default]\nurl = "http://a"\ntls_server_name = "a.test"\ninsecure = true\n[upstream.api]\nurl = "http://b"\nca_file = "/ca.pem"\n[acme]\nhttp_listen = ":80"\nemail = "ops@example.com"\n[cache]\nstale_if_error = "5m"\n')
    const why = 'has no effect: automatic HTTPS is off (acme.domains is empty), so no HTTP-01 listener or https redirect runs; list the names in acme.domains, or drop the [acme] keys'
    expect(c.ineffective).toEqual([
      `proxy.toml:9: acme.http_listen: ${why}`,
      `proxy.toml:10: acme.email: ${why}`,
      'proxy.toml:3: upstream.default.tls_server_name: has no effect: http://a:80 is plain http; give an https:// url for TLS to the upstream',
      'proxy.toml:4: upstream.default.insecure: has no effect: http://a:80 is plain http; give an https:// url for TLS to the upstream',
      'proxy.toml:7: upstream.api.ca_file: has no effect: http://b:80 is plain http; give an https:// url for TLS to the upstream',
      'proxy.toml:12: cache.stale_if_error: has no effect: the cache is off (cache.max_size is 0); set max_size, e.g. "256MiB", to turn it on',
    ])
    // Where they take effect, nothing is said.
    expect(fromText('[upstream]\nurl = "https://a"\ntls_server_name = "a.test"\n[cache]\nmax_size = "1MiB"\nstale_if_error = "5m"\n[acme]\nhttp_listen = "off"\n').ineffective).toEqual([])
    // And (second opinion): health keys without health_path, HTTP/2 keys on a plain listener; not
    // the token with the admin off (with --workers a reload keeps the supervisor's admin, its token applying).
    const more = fromText('[server]\nhttp2 = false\n[upstream]\nurl = "a"\nhealth_interval = "5s"\n[admin]\nlisten = "off"\ntoken = "abc"\n').ineffective!
    expect(more.map((l) => l.slice(0, l.indexOf(': has no effect')))).toEqual(['proxy.toml:5: upstream.health_interval', 'proxy.toml:2: server.http2'])
    expect(fromText('[server]\nhttp2 = false\ntls_cert = "c.pem"\ntls_key = "k.pem"\n[upstream]\nurl = "a"\nhealth_path = "/h"\nhealth_interval = "5s"\n[admin]\ntoken = "abc"\n').ineffective).toEqual([])
    // acme.http_listen beside one's own certificate (meant as nginx's port-80 server): pointed at server.http_redirect_listen (nineteenth round).
    expect(fromText('[server]\ntls_cert = "c.pem"\ntls_key = "k.pem"\n[upstream]\nurl = "a"\n[acme]\nhttp_listen = ":80"\n').ineffective).toEqual([`proxy.toml:7: acme.http_listen: ${why}; for a redirect to https in front of tls_cert, set server.http_redirect_listen instead`])
  })

  test.each([
    ['[upstream]\nurl = ["http://a:1", "http://b:2"]\n', 'upstream.url', 'one URL whose DNS name holds every server'],
    ['[server]\ntls_cert = ["a.pem", "b.pem"]\ntls_key = "k.pem"\n[upstream]\nurl = "a"\n', 'server.tls_cert', 'one certificate chain per listener (no choice by SNI)'],
    ['[server]\nlisten = [":1", ":2"]\n[upstream]\nurl = "a"\n', 'server.listen', 'one address per instance'],
    ['[upstream.a]\nurl = "a"\n[[route]]\nhost = ["a", "b"]\nupstream = "a"\n', 'route[0].host', 'one [[route]] per host'],
  ])('a list where one value goes (as nginx lists servers, certificates, names) says the key takes one, and what to write: %p (eighteenth round of review)', (text, key, hint) => {
    const err = configError(() => fromText(text))
    expect(err.message).toContain(`${key}: `)
    expect(err.message).toContain('is a list; this key takes one value: ')
    expect(err.message).toContain(hint)
  })

  test.each(['www.example.com', 'www.example.com:8443', '[2001:db8::1]:8443', '127.0.0.1'])('host_header %p is taken', (host) => {
    expect(fromText(`[upstream]\nurl = "a"\nhost_header = "${host}"\n`).upstreams.default!.hostHeader).toBe(host)
  })

  test.each([
    ['[upstream]\nurl = "a"\nhost_header = "a\\r\\nX-Injected: 1"\n', 'upstream.host_header: "a\\r\\nX-Injected: 1" is not host[:port]'],
    ['[upstream]\nurl = "a"\nresolvers = ["1.2.3.4\\n"]\n', 'upstream.resolvers[0]: "1.2.3.4\\n" is not ip[:port]'],
    ['[upstream]\nurl = "http://a/\\tb"\n', 'upstream.url: "http://a/\\tb" has a path'],
    ['[server]\n"a\\nb" = 1\n[upstream]\nurl = "a"\n', 'server.a\\nb: unknown key'],
    ['[server]\nlisten = inf\n[upstream]\nurl = "a"\n', 'server.listen: inf is not host:port'],
    ['[server]\nmax_connections = nan\n[upstream]\nurl = "a"\n', 'server.max_connections: nan is not a whole number'],
    ['[server]\nvia = "say \\"hi\\""\n[upstream]\nurl = "a"\n', 'server.via: "say \\"hi\\"" is not a name Via can carry'],
  ])('a value is shown as TOML writes it, on one line: %p', (text, shown) => {
    const err = configError(() => fromText(text))
    expect(err.message).not.toMatch(/[\x00-\x1f]/)
    expect(err.message).toContain(shown)
  })

  test('no upstream at all says how to add one', () => {
    expect(configError(() => resolveConfig(undefined, {})).message).toContain('--upstream')
  })

  test('tls_cert without tls_key', () => {
    // Named at the key that is there (its line), not at the missing one (no line: it said line 1).
    const loc = configError(() => fromText('[server]\ntls_cert = "c.pem"\n[upstream]\nurl = "a"\n')).location
    expect([loc.keyPath, loc.line]).toEqual(['server.tls_cert', 2])
  })
})

describe('parsers', () => {
  test.each([
    ['http://a.example', { scheme: 'http', host: 'a.example', port: 80 }],
    ['https://a.example', { scheme: 'https', host: 'a.example', port: 443 }],
    ['a.example:8081', { scheme: 'http', host: 'a.example', port: 8081 }],
    ['https://[::1]:8443', { scheme: 'https', host: '::1', port: 8443 }],
    ['127.1.2.3', { scheme: 'http', host: '127.1.2.3', port: 80 }],
  ])('parseUpstreamUrl(%p)', (raw, want) => expect(parseUpstreamUrl(raw)).toEqual(want as never))
  test.each(['https://a.example/path', 'ftp://a', 'http://user:pw@a', 'http://'])('parseUpstreamUrl(%p) is an error', (raw) => expect(typeof parseUpstreamUrl(raw)).toBe('string'))
  // The URL parser (WHATWG) would dial another address than the one written: refused (RFC 3986 §3.2.2).
  test.each([
    ['010.0.0.1', /"010\.0\.0\.1" is not an IPv4 address as RFC 3986 writes one .* would dial 8\.0\.0\.1/],
    ['http://127.1:8080', /"127\.1" is not an IPv4 address/],
    ['https://0x7f.0.0.1', /would dial 127\.0\.0\.1/],
    ['http://2130706433', /would dial 127\.0\.0\.1/],
    ['origin.example ', /has a space or control character/],
    ['http://a\nb.example', /"http:\/\/a\\nb\.example" has a space or control character/],
    ['http://a\tb.example:8080', /has a space or control character/],
  ])('parseUpstreamUrl(%p) is refused, not rewritten', (raw, message) => expect(parseUpstreamUrl(raw)).toMatch(message))
  test.each([
    ['http://::1:8080', '"http://[::1]:8080"'],
    ['::1:8080', '"http://[::1]:8080"'],
    ['https://2001:db8::1', '"https://[2001:db8::1]"'],
  ])('an IPv6 upstream without brackets, %p, is told to write %s (RFC 3986 §3.2.2)', (raw, want) => {
    expect(parseUpstreamUrl(raw)).toContain(`an IPv6 address goes in brackets; use ${want}`)
  })
  test.each([
    ['0.0.0.0:8080', { host: '0.0.0.0', port: 8080 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['[::1]:9090', { host: '::1', port: 9090 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::]:443', { host: '::', port: 443 }],
    ['edge-1.example:80', { host: 'edge-1.example', port: 80 }],
    ['my_service:8080', { host: 'my_service', port: 8080 }],
    ['[fe80::1%eth0]:8080', { host: 'fe80::1%eth0', port: 8080 }],
  ])('parseHostPort(%p)', (raw, want) => expect(parseHostPort(raw)).toEqual(want))
  test.each(['8080', 'host:', 'host:99999', '::1:80', '999.1.1.1:80', '1.2.3:80', '[1.2.3.4]:80', '[nothing]:80', 'a b:80', 'a_b!:80', '[::1%lo]:80', '[fe80::1]:80'])('parseHostPort(%p) is invalid', (raw) => expect(parseHostPort(raw)).toBeUndefined())
})

test('path_prefix: what a request target cannot hold raw (non-ASCII, a space) is %-encoded as requests carry it; the rest as written (outside review, twentieth round)', () => {
  const c = fromText('[upstream]\nurl = "http://127.0.0.1:1"\n[[route]]\npath_prefix = "/café/"\nupstream = "default"\n[[route]]\npath_prefix = "/my docs/"\nupstream = "default"\n[[route]]\npath_prefix = "/api/v1;x=1/"\nupstream = "default"\n[[route]]\npath_prefix = "/a{b}/100%/"\nupstream = "default"\n')
  expect(c.routes.slice(0, 4).map((r) => r.pathPrefix)).toEqual(['/caf%C3%A9/', '/my%20docs/', '/api/v1;x=1/', '/a%7Bb%7D/100%25/'])
})
