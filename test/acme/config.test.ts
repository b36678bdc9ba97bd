/** The [acme] table and its flags: defaults, validation, and the conflicts with tls_cert and the runtime listener. */
import { describe, expect, test } from 'bun:test'
import { resolveConfig } from '../../src/config/resolve.ts'
import { ConfigError } from '../../src/lib/errors.ts'
import { flagLayer } from '../../src/commands/flags.ts'

const base = { upstream: { url: 'http://127.0.0.1:9' } }

describe('[acme] config', () => {
  test('off by default, with the documented defaults', () => {
    const c = resolveConfig(undefined, base)
    expect(c.acme.domains).toEqual([])
    expect(c.acme.directoryUrl).toBe('https://acme-v02.api.letsencrypt.org/directory')
    expect(c.acme.httpListen).toEqual({ host: '0.0.0.0', port: 80 })
    expect(c.acme.stateDir.length).toBeGreaterThan(0)
  })

  test('flags: --acme repeats, names are lower-cased and deduplicated', () => {
    const flags = flagLayer({ upstream: 'http://127.0.0.1:9', acme: ['Example.com', 'www.example.com', 'example.com'], acmeEmail: 'ops@example.com', acmeHttpListen: '127.0.0.1:8081', stateDir: '/tmp/x', acmeDirectory: 'https://127.0.0.1:14000/dir', acmeCa: '/tmp/ca.pem' })
    const c = resolveConfig(undefined, flags)
    expect(c.acme).toEqual({ domains: ['example.com', 'www.example.com'], email: 'ops@example.com', directoryUrl: 'https://127.0.0.1:14000/dir', caFile: '/tmp/ca.pem', httpListen: { host: '127.0.0.1', port: 8081 }, stateDir: '/tmp/x' })
  })

  test.each([
    [{ domains: ['*.example.com'] }, 'acme.domains[0]'],
    [{ domains: ['example'] }, 'acme.domains[0]'],
    [{ domains: ['127.0.0.1'] }, 'acme.domains[0]'],
    [{ directory: 'http://ca.example/dir' }, 'acme.directory'],
    [{ email: 'nobody' }, 'acme.email'],
    [{ domain: ['a.example'] }, 'acme.domain'],
  ])('%j is refused at %s', (acme, keyPath) => {
    let err: unknown
    try {
      resolveConfig({ path: 'p.toml', data: { ...base, acme }, lines: new Map() } as never)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).location.keyPath).toBe(keyPath)
  })

  test('acme and tls_cert together, or acme with the runtime listener, are refused', () => {
    const withCert = () => resolveConfig(undefined, { ...base, server: { tls_cert: 'c.pem', tls_key: 'k.pem' }, acme: { domains: ['a.example'] } })
    expect(withCert).toThrow(/one or the other/)
    const runtime = () => resolveConfig(undefined, { ...base, server: { listener: 'runtime' }, acme: { domains: ['a.example'] } })
    // On Bun the runtime listener is refused on its own; on Deno, acme with it is refused.
    expect(runtime).toThrow(/not offered on Bun|own listener/)
  })
})
