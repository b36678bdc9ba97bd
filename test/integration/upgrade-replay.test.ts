/**
 * An upgrade request whose upstream closes without a byte (RESET_BEFORE_RESPONSE) is sent again
 * on another address only when its method is idempotent (RFC 9110 §9.2.2), as a plain request is:
 * a POST asking to switch protocols reached two origins in an outside review.
 */
import { afterEach, expect, test } from 'bun:test'
import { freePort, Harness, rawExchange } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** Two origins on 127.0.0.2 and .3 (one port) that read a request head and close without a byte; the heads they saw. */
async function closingOrigins(): Promise<{ port: number; seen: string[] }> {
  const port = await freePort()
  const seen: string[] = []
  for (const hostname of ['127.0.0.2', '127.0.0.3']) {
    const origin = Bun.listen({
      hostname,
      port,
      socket: {
        data(s, d) {
          const text = Buffer.from(d).toString('latin1')
          if (text.includes('\r\n\r\n')) {
            seen.push(text.slice(0, text.indexOf(' ')))
            s.end()
          }
        },
      },
    })
    h.track(() => origin.stop(true))
  }
  return { port, seen }
}

test.each([
  ['POST', 1],
  ['GET', 2],
])('%s with Upgrade, its upstream closing before any answer: it reaches %p origin(s)', async (method, times) => {
  const { port, seen } = await closingOrigins()
  const { proxy } = h.proxy({ upstream: { url: `http://origin.test:${port}`, retries: 2 }, server: { listener: 'own' } }, { addresses: [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }] })
  const reply = await rawExchange(proxy.port, `${method} /up HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n`, '127.0.0.1', (c) => h.track(c))
  expect(reply).toStartWith('HTTP/1.1 502 ')
  expect(seen).toEqual(Array(times).fill(method))
})
