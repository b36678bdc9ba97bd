/**
 * The bench's untimed warm-up (src/bench/warm-up.ts): it runs the client code once against a
 * server of its own, begins a TLS handshake when a target is https, and never reaches a target.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { warmUp } from '../../src/bench/warm-up.ts'
import { createLookup } from '../../src/dns/lookup.ts'
import { bench } from './run-bench.ts'

let server: Server
let port = 0
let connections = 0
let requests = 0
const open = new Set<Socket>()

beforeAll(async () => {
  server = createServer((s) => {
    connections++
    open.add(s)
    s.on('close', () => open.delete(s))
    s.on('error', () => {})
    let head = ''
    s.on('data', (d) => {
      head += d.toString('latin1')
      while (head.includes('\r\n\r\n')) {
        head = head.slice(head.indexOf('\r\n\r\n') + 4)
        requests++
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
  })
  port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)))
})
afterAll(async () => {
  for (const s of open) s.destroy()
  await new Promise<void>((r) => server.close(() => r()))
})

const client = { timeoutMs: 5000, insecure: false, ca: undefined, lookup: createLookup() }

test('a plain warm-up makes a whole request and answer; asked for TLS it also begins a handshake', async () => {
  expect(await warmUp(client, false)).toEqual({ request: true, tlsBegun: false })
  expect(await warmUp(client, true)).toEqual({ request: true, tlsBegun: true })
  expect(await warmUp({ ...client, insecure: true }, true)).toEqual({ request: true, tlsBegun: true })
})

test('the targets see only the timed requests: one connection for -n 1; three on each side for --vs -n 3 --no-keepalive', async () => {
  connections = 0
  requests = 0
  const one = await bench([`http://127.0.0.1:${port}/`, '-n', '1', '--json'])
  expect(one.code).toBe(0)
  expect([connections, requests]).toEqual([1, 1])
  connections = 0
  requests = 0
  const vs = await bench([`http://127.0.0.1:${port}/a`, '--vs', `http://127.0.0.1:${port}/b`, '-n', '3', '--no-keepalive', '--json'])
  expect(vs.code).toBe(0)
  expect([connections, requests]).toEqual([6, 6])
})
