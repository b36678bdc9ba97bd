/** Bad values a config sweep found accepted: each is refused with the file, the line and the key named. */
import { expect, test } from 'bun:test'
import { parseConfigText } from '../../src/config/load.ts'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ConfigError } from '../../src/lib/errors.ts'

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
  expect(errorOf(`${UP}[admin]\ntoken = 1979-05-27T07:32:00\n`)).toBe('proxy.toml:4: admin.token: 1979-05-27T07:32:00 is not a string; quote it')
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
  expect(errorOf(`${UP}[cache]\nmax_size = "${'9'.repeat(400)}"\n`)).toBe(`proxy.toml:4: cache.max_size: "${'9'.repeat(400)}" ${tooLarge}`)
  expect(errorOf(`${UP}[server]\nkeepalive_timeout = "9999999999999999999d"\n`)).toBe('proxy.toml:4: server.keepalive_timeout: "9999999999999999999d" is longer than any clock counts in milliseconds (2^53-1 ms, about 285,000 years); use e.g. "365d"')
  // The largest that are kept print back as TOML reads them.
  const c = resolveConfig(parseConfigText(`${UP}[server]\nmax_connections = "9007199254740991"\nkeepalive_timeout = "9007199254740991ms"\n[cache]\nmax_size = "8388607GiB"\n`, 'proxy.toml'))
  expect(c.server.maxConnections).toBe(9007199254740991)
  expect(c.server.keepaliveTimeoutMs).toBe(9007199254740991)
  expect(c.cache.maxBytes).toBe(8388607 * 2 ** 30)
})
