/**
 * A reload's graceful stop of the own listener (http1-listener.ts stop(false, grace)) reaching a
 * connection whose last reply, said keep-alive, is still held for the round's write batch: the
 * client sends its next request as soon as it reads that reply, and it must be answered (with
 * Connection: close), not met by a FIN. The connection had been finished at once when its reply
 * was not flushed yet: under load an outside review lost 14 requests in 10 certificate reloads
 * (45 with a moved listen host), each on a kept-alive connection that had answered ~200 before.
 */
import { afterEach, expect, test } from 'bun:test'
import { listenHttp1, type Http1Listener } from '../../../src/proxy/downstream/http1-listener.ts'
import type { ProxyReply } from '../../../src/proxy/message.ts'
import { Harness, rawClient, waitFor } from '../../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

const reply = (body: string): ProxyReply => ({ status: 200, statusText: 'OK', headers: [['content-type', 'text/plain']], body })

test('a stop begun in the turn a keep-alive reply was written keeps the grace: the next request is answered with Connection: close', async () => {
  let listener!: Http1Listener
  let stopped: Promise<void> | undefined
  listener = listenHttp1({
    hostname: '127.0.0.1',
    port: 0,
    tls: undefined,
    reusePort: false,
    maxConnections: 0,
    maxHeaderBytes: 16 * 1024,
    headerTimeoutMs: 5000,
    keepaliveTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    sendTimeoutMs: 5000,
    handle(req, _client, sink) {
      sink.answer(reply(`ok ${req.target}`))
      // As a reload's stop of the old listener: once the reply is written, in the same turn (still in the batch).
      if (req.target === '/first') queueMicrotask(() => (stopped = listener.stop(false, 1000)))
    },
    upgrade() {},
    refuse: (code) => ({ status: 400, statusText: 'Bad Request', headers: [], body: code }),
    onQuietClose() {},
    onError(err) {
      throw err
    },
  })
  h.track(() => void listener.stop(true))
  const c = rawClient(h, listener.port)
  c.s.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.got().endsWith('ok /first') || c.closed(), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got().toLowerCase()).not.toContain('connection: close') // it went out keep-alive
  c.clear()
  c.s.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n')
  expect(await waitFor(() => c.closed(), 3000)).toBe(true)
  expect(c.got()).toStartWith('HTTP/1.1 200 ')
  expect(c.got().toLowerCase()).toContain('\r\nconnection: close\r\n')
  expect(c.got()).toEndWith('ok /next')
  await stopped
})
