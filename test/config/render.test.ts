/** The resolved config printed back as TOML (proxy check) reads back to the same config. */
import { expect, test } from 'bun:test'
import { parseConfigText } from '../../src/config/load.ts'
import { fileShapeOf, toToml } from '../../src/config/render.ts'
import { inertKeys } from '../../src/config/ineffective.ts'
import { resolveConfig } from '../../src/config/resolve.ts'

const CASES: Record<string, string> = {
  'defaults, one upstream': '[upstream]\nurl = "https://origin.example"\n',
  'Via off': '[server]\nvia = "off"\n\n[upstream]\nurl = "https://origin.example"\n',
  'Via named': '[server]\nvia = "edge-1.example:8443"\n\n[upstream]\nurl = "https://origin.example"\n',
  'everything off the defaults': `
[server]
listen = "[::1]:8443"
max_body_size = "10MB"
max_header_size = 4096
client_body_timeout = 0
drain_timeout = "1m30s"
trusted_proxies = ["127.0.0.0/8", "::1/128"]
default_upstream = "web"

[upstream.web]
url = "http://web-lb.internal:8080"
host_header = "www.example.com"
connect_timeout = "250ms"
idle_timeout = "1.5s"
resolvers = ["127.0.0.1:5353"]
family = "ipv4"
proxy_redirect = ["http://web-lb.internal:8080/two/ /", "default"]
proxy_cookie_domain = "web-lb.internal example.com"
proxy_cookie_path = ["/app/ /"]

[upstream.api]
url = "https://api-lb.internal"
proxy_redirect = "off"
health_path = "/healthz"

[[route]]
host = "*.api.example.com"
upstream = "api"

[[route]]
path_prefix = "/v1/"
upstream = "api"

[admin]
listen = "off"

[log]
access_log = "off"
format = "text"

[cache]
max_size = "64MiB"
max_object_size = "1MiB"
stale_if_error = "5m"

[acme]
domains = ["example.com", "www.example.com"]
email = "ops@example.com"
directory = "https://acme-staging-v02.api.letsencrypt.org/directory"
http_listen = "127.0.0.1:8080"
state_dir = "/tmp/proxy-state"
`,
}

for (const [name, text] of Object.entries(CASES)) {
  test(`round trip: ${name}`, () => {
    const config = resolveConfig(parseConfigText(text, 'a.toml'))
    // As check prints it: keys of no effect as comments, so the kept file sets none of them and
    // reads back without a warning (eighteenth round of review).
    const printed = toToml(fileShapeOf(config), { inert: inertKeys(config) })
    const again = resolveConfig(parseConfigText(printed, 'b.toml'))
    // Where a key was set (file, fileKeys' lines) differs between the two files; the values may not.
    expect({ ...again, file: undefined, fileKeys: undefined }).toEqual({ ...config, file: undefined, fileKeys: undefined })
    expect(again.ineffective).toEqual([])
  })
}

test('units as the file writes them', () => {
  const config = resolveConfig(parseConfigText(CASES['everything off the defaults']!, 'a.toml'))
  const shape = fileShapeOf(config)
  expect(shape.server).toMatchObject({ listen: '[::1]:8443', max_body_size: '10MB', max_header_size: '4KiB', client_body_timeout: 0, drain_timeout: '90s', keepalive_timeout: '75s' })
  expect(shape.upstream.web).toMatchObject({ connect_timeout: '250ms', idle_timeout: '1.5s', proxy_redirect: ['http://web-lb.internal:8080/two/ /', 'default'], proxy_cookie_domain: 'web-lb.internal example.com' })
  expect(shape.upstream.api).toMatchObject({ proxy_redirect: 'off', proxy_cookie_path: 'off' })
  expect(shape.admin.listen).toBe('off')
  expect(shape.route).toHaveLength(2)
})

test('[cache] and [acme] are printed too, set or not (proxy check drops no table)', () => {
  const on = toToml(fileShapeOf(resolveConfig(parseConfigText(CASES['everything off the defaults']!, 'a.toml')))).split('\n')
  for (const line of ['[cache]', 'max_size = "64MiB"', 'max_object_size = "1MiB"', 'stale_if_error = "5m"', '[acme]', 'domains = ["example.com", "www.example.com"]', 'email = "ops@example.com"', 'http_listen = "127.0.0.1:8080"', 'state_dir = "/tmp/proxy-state"']) {
    expect(on).toContain(line)
  }
  const off = toToml(fileShapeOf(resolveConfig(parseConfigText(CASES['defaults, one upstream']!, 'a.toml')))).split('\n')
  for (const line of ['[cache]', 'max_size = 0', 'max_object_size = "8MiB"', 'stale_if_error = 0', '[acme]', 'domains = []', 'http_listen = "0.0.0.0:80"']) {
    expect(off).toContain(line)
  }
})

test('a kept check output of a config with the cache off turns the cache on with the default max_object_size', () => {
  const printed = toToml(fileShapeOf(resolveConfig(parseConfigText(CASES['defaults, one upstream']!, 'a.toml'))))
  const on = resolveConfig(parseConfigText(printed.replace('max_size = 0', 'max_size = "64MiB"'), 'b.toml'))
  expect(on.cache.maxObjectBytes).toBe(8 * 1024 * 1024)
})

test('the listener is printed as "auto": a kept check output from Bun reads back on Deno too, and the same on Bun (outside review, fourteenth round)', () => {
  const printed = toToml(fileShapeOf(resolveConfig(parseConfigText(CASES['defaults, one upstream']!, 'a.toml')))).split('\n')
  // Before: listener = "own" (what auto resolves to on Bun), which Deno refuses ("needs the Bun runtime").
  expect(printed).toContain('listener = "auto"')
})

test('printed for Deno, the [server] keys its server has no option for say so beside their value, and the text still reads back (outside review, fourteenth round: they were printed as applying)', () => {
  const config = resolveConfig(parseConfigText(CASES['everything off the defaults']!, 'a.toml'))
  const deno = toToml(fileShapeOf(config), { deno: true })
  const marked = deno.split('\n').filter((l) => l.endsWith(' # not applied on Deno')).map((l) => l.slice(0, l.indexOf(' = ')))
  expect(marked).toEqual(['http2_max_concurrent_streams', 'max_connections', 'client_header_timeout', 'client_body_timeout', 'send_timeout', 'keepalive_timeout', 'trim_interval'])
  // On Bun nothing is marked; the values are the same lines.
  const bun = toToml(fileShapeOf(config))
  expect(bun).not.toContain('not applied')
  expect(deno.replaceAll(' # not applied on Deno', '')).toBe(bun)
  const again = resolveConfig(parseConfigText(deno, 'b.toml'))
  // Printed without check's comments for keys of no effect (inert), the file sets those: warned of.
  expect({ ...again, file: undefined, fileKeys: undefined, ineffective: undefined }).toEqual({ ...config, file: undefined, fileKeys: undefined, ineffective: undefined })
})
