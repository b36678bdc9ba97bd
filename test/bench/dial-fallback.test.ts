/**
 * The bench's connect tries a name's addresses in turn, as curl does: one that refuses hands over
 * to the next (src/bench/dial.ts). Loopback only: 127.0.0.1 refuses, 127.0.0.2 listens.
 */
import { afterAll, expect, test } from 'bun:test'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { BenchRequestError, dial } from '../../src/bench/dial.ts'
import type { Lookup } from '../../src/dns/lookup.ts'

const servers: Server[] = []
afterAll(() => servers.forEach((s) => s.close()))

/** A port that 127.0.0.2 listens on and 127.0.0.1 refuses (tried a few times: another process might hold it on 127.0.0.1). */
async function listeningOnSecond(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    const s = createServer((c) => c.end())
    await new Promise<void>((r) => s.listen(0, '127.0.0.2', () => r()))
    servers.push(s)
    const port = (s.address() as AddressInfo).port
    const probe = createServer()
    const free = await new Promise<boolean>((r) => {
      probe.once('error', () => r(false))
      probe.listen(port, '127.0.0.1', () => probe.close(() => r(true)))
    })
    if (free) return port
  }
  throw new Error('no port free on 127.0.0.1 that 127.0.0.2 could take')
}

const both: Lookup = async () => ({ addresses: [{ address: '127.0.0.1', family: 4 }, { address: '127.0.0.2', family: 4 }], ttlMs: undefined, source: 'test' })

test('an address that refuses hands over to the next of the name: connected to 127.0.0.2 (outside sweep, twentieth session)', async () => {
  const port = await listeningOnSecond()
  const target = { scheme: 'http' as const, host: 'two.test', port, path: '/', connectHost: 'two.test', connectPort: port, pinnedAddress: undefined }
  const { socket, info } = await dial(target, { timeoutMs: 5000, insecure: false, ca: undefined, lookup: both }, { start: performance.now() }, ['http/1.1'])
  socket.destroy()
  // Before: ECONNREFUSED from the first address, the second never tried.
  expect(info.remoteAddress).toBe('127.0.0.2')
})

test('with every address refusing, the last refusal is the error', async () => {
  const port = await listeningOnSecond()
  servers.pop()!.close()
  await Bun.sleep(10)
  const target = { scheme: 'http' as const, host: 'two.test', port, path: '/', connectHost: 'two.test', connectPort: port, pinnedAddress: undefined }
  const err = await dial(target, { timeoutMs: 5000, insecure: false, ca: undefined, lookup: both }, { start: performance.now() }, ['http/1.1']).then(() => undefined, (e) => e)
  expect(err).toBeInstanceOf(BenchRequestError)
  expect((err as BenchRequestError).kind).toBe('ECONNREFUSED')
  expect((err as BenchRequestError).message).toContain('127.0.0.2')
})
