import { expect, test } from 'bun:test'
import { listenError, listenErrorCode, listenFailureReason } from '../../src/lib/listen-error.ts'

test('each runtime\'s way of saying it maps to one code and one reason', () => {
  const cases: [unknown, string | undefined, string][] = [
    [Object.assign(new Error('Failed to listen at 127.0.0.1'), { code: 'EADDRINUSE' }), 'EADDRINUSE', 'address in use'], // Bun.listen
    [Object.assign(new Error('Failed to start server. Is port 9090 in use?'), { code: 'EADDRINUSE' }), 'EADDRINUSE', 'address in use'], // Bun.serve
    [Object.assign(new Error('Address already in use'), { name: 'AddrInUse' }), 'EADDRINUSE', 'address in use'], // Deno.serve
    [Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }), 'EADDRNOTAVAIL', 'address not available'],
    [Object.assign(new Error('x'), { code: 'EACCES' }), 'EACCES', 'permission denied'],
    [new Error('something else'), undefined, 'something else'],
  ]
  for (const [err, code, reason] of cases) {
    expect(listenErrorCode(err)).toBe(code)
    expect(listenFailureReason(err)).toStartWith(reason)
  }
})

test('the error is E_LISTEN and names the flag of the listener that failed', () => {
  const inUse = Object.assign(new Error('x'), { code: 'EADDRINUSE' })
  const proxy = listenError('proxy', '::1', 8080, inUse)
  expect(proxy.code).toBe('E_LISTEN')
  expect(proxy.message).toStartWith('cannot listen on [::1]:8080: address in use;')
  expect(proxy.message).toContain('--listen')
  const admin = listenError('admin', '127.0.0.1', 9091, inUse, 'worker 1 of 2 uses admin port 9090 + 1')
  expect(admin.message).toContain('address in use (worker 1 of 2 uses admin port 9090 + 1)')
  expect(admin.message).toContain('--admin')
  expect(admin.cause).toBe(inUse)
})

test('a link-local IPv6 address without its interface is told to name one (Bun says only "Failed to listen at fe80::1")', () => {
  const einval = Object.assign(new Error('Failed to listen at fe80::1'), { code: 'EINVAL' })
  const err = listenError('proxy', 'fe80::1', 8080, einval)
  expect(err.message).toStartWith('cannot listen on [fe80::1]:8080: a link-local IPv6 address (fe80::/10) needs its interface, as in [fe80::1%eth0]:8080;')
  expect(listenError('proxy', '::1', 8080, einval).message).toStartWith('cannot listen on [::1]:8080: Failed to listen at fe80::1;')
})

test('a name Bun could not listen at (it says only "Failed to listen at NAME") asks whether it resolves (eighteenth round of review)', () => {
  const failed = new Error('Failed to listen at localhost.')
  expect(listenError('proxy', 'localhost.', 8080, failed).message).toStartWith('cannot listen on localhost.:8080: Failed to listen at localhost. (does localhost. resolve? an IP address, such as 0.0.0.0 or 127.0.0.1, needs no lookup);')
  // Not for an IP, nor for a failure with a code of its own.
  expect(listenError('proxy', '127.0.0.1', 8080, new Error('Failed to listen at 127.0.0.1')).message).not.toContain('resolve')
  expect(listenError('proxy', 'host.test', 8080, Object.assign(new Error('x'), { code: 'EADDRINUSE' })).message).not.toContain('resolve')
})

test('check says which listen name does not resolve, with its key (eighteenth round of review)', async () => {
  const { unresolvedListenNames } = await import('../../src/commands/check.ts')
  const { resolveConfig } = await import('../../src/config/resolve.ts')
  const config = resolveConfig(undefined, { upstream: { url: 'http://127.0.0.1:1' }, server: { listen: 'nonexistent.invalid:8080' }, admin: { listen: 'localhost:9090' } })
  const asked: string[] = []
  const fake = async (host: string) => {
    asked.push(host)
    if (host !== 'localhost') throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
  }
  expect(await unresolvedListenNames(config, fake)).toEqual(['server.listen: the host nonexistent.invalid does not resolve (ENOTFOUND), so serve could not listen on it; give an IP address (0.0.0.0, 127.0.0.1, [::]) or a name this machine resolves'])
  expect(asked).toEqual(['nonexistent.invalid', 'localhost'])
  expect(await unresolvedListenNames(resolveConfig(undefined, { upstream: { url: 'http://127.0.0.1:1' } }), fake)).toEqual([])
  // acme.http_listen without acme.domains: nothing listens there, so its name is not looked up (second opinion).
  asked.length = 0
  expect(await unresolvedListenNames(resolveConfig(undefined, { upstream: { url: 'http://127.0.0.1:1' }, acme: { http_listen: 'nonexistent.invalid:80' } }), fake)).toEqual([])
  expect(asked).toEqual([])
})
