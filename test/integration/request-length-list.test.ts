/**
 * A request's Content-Length given as a list of one value ("70000, 70000") or on two lines: the
 * listener accepts it (RFC 9110 §8.6 lets a recipient read it as that one value) and must send it
 * upstream as that one decimal value. It went as "content-length: NaN" (the joined text read as a
 * number), which an origin reading it as atoi does took for 0: the body became its next requests.
 * And max_body_size must see the value: a declared 200000 twice went upstream past a 100000 limit.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { Harness, rawClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** A raw origin that keeps every byte it is sent and answers "ok" once it holds `want` bytes after a head. */
function recordingOrigin(): { port: number; got: () => string } {
  let text = ''
  const origin = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, d) {
        text += Buffer.from(d).toString('latin1')
        const end = text.indexOf('\r\n\r\n')
        const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, end + 2))
        if (end >= 0 && length && text.length - end - 4 >= Number(length[1])) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      },
    },
  })
  h.track(() => origin.stop(true))
  return { port: origin.port, got: () => text }
}

describe('a repeated request Content-Length goes upstream as its one value', () => {
  test.each([
    ['a list', 'Content-Length: 70000, 70000\r\n'],
    ['two lines', 'Content-Length: 70000\r\nX-Mid: 1\r\ncontent-length: 70000\r\n'],
  ])('%s, a streamed body: one content-length: 70000 upstream, the body after it, 200 to the client', async (_, fields) => {
    const origin = recordingOrigin()
    const proxy = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own' } }).proxy
    const c = rawClient(h, proxy.port)
    c.s.write(`POST /upload HTTP/1.1\r\nHost: a\r\n${fields}\r\n`)
    c.s.write('x'.repeat(70000))
    expect(await waitFor(() => c.got().includes('\r\n\r\nok'), 5000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 200 ')
    const sent = origin.got()
    const head = sent.slice(0, sent.indexOf('\r\n\r\n') + 2).toLowerCase()
    expect(head.match(/\r\ncontent-length:[^\r]*\r\n/g)).toEqual(['\r\ncontent-length: 70000\r\n'])
    expect(head).not.toContain('nan')
    expect(sent.length - sent.indexOf('\r\n\r\n') - 4).toBe(70000)
  })

  test('a list over max_body_size is refused with 413 before anything goes upstream', async () => {
    const origin = recordingOrigin()
    const proxy = h.proxy({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server: { listener: 'own', max_body_size: '100000' } }).proxy
    const c = rawClient(h, proxy.port)
    c.s.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 200000, 200000\r\n\r\n')
    c.s.write('x'.repeat(64000))
    expect(await waitFor(() => c.got().includes('\r\n\r\n'), 5000)).toBe(true)
    expect(c.got()).toStartWith('HTTP/1.1 413 ')
    await Bun.sleep(100)
    expect(origin.got()).toBe('')
  })
})
