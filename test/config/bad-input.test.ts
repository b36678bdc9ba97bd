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
