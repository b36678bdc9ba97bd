/**
 * A whole reply of at most 64 KiB (one write: head and body together) that the client's socket
 * did not take before the connection ended is logged as cut: the status sent, at most the body
 * bytes the socket took, and the code that cut it (CLIENT_SEND_TIMEOUT, CLIENT_GONE); not as a
 * whole reply. The client reads nothing (paused, a small receive buffer) and pipelines requests:
 * each is read once the reply before it went to the kernel whole, so the kernel's buffers fill
 * and one reply is then taken in part.
 */
import { afterEach, expect, test } from 'bun:test'
import type { RequestRecord } from '../../src/proxy/observe/record.ts'
import { ProxyServer } from '../../src/proxy/server.ts'
import { staticSource } from '../../src/proxy/upstream/address-source.ts'
import { Harness, pausedClient, waitFor } from '../support/harness.ts'

const h = new Harness()
afterEach(() => h.closeAll())

/** Under 64 KiB with its head: written whole, in one write. */
const BODY_BYTES = 60 * 1024
/** More than the kernel's buffers hold for a client that reads nothing. */
const PIPELINED = 64

async function stuckClient(server: Record<string, string>) {
  let served = 0
  const body = new Uint8Array(BODY_BYTES).fill(120)
  const origin = h.origin({ fetch: () => (served++, new Response(body)) })
  const records: RequestRecord[] = []
  const config = h.config({ upstream: { url: `http://127.0.0.1:${origin.port}` }, server })
  const proxy = new ProxyServer(config, { sourceFor: () => staticSource([{ address: '127.0.0.1', family: 4 }]), hooks: { onRecord: (r) => void records.push({ ...r }) } }).start()
  h.track(() => proxy.close())
  const c = await pausedClient(h, proxy.port)
  c.sock.write(`GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(PIPELINED))
  expect(await waitFor(() => served >= 1)).toBe(true)
  // Until the proxy is stuck: a reply waits for the client, and the next request is not read.
  let last = -1
  for (let i = 0; i < 100 && served !== last; i++) {
    last = served
    await Bun.sleep(100)
  }
  expect(proxy.pendingRequests).toBe(0)
  expect(served).toBeLessThan(PIPELINED)
  return { c, records, served: () => served }
}

/** Every reply but the last went whole; the last is logged as cut by `code`. */
function expectLastCut(records: RequestRecord[], served: number, code: string): void {
  expect(records.length).toBe(served)
  expect(records.slice(0, -1).map((r) => [r.status, r.bytes_out, r.error])).toEqual(records.slice(0, -1).map(() => [200, BODY_BYTES, undefined]))
  const r = records.at(-1)!
  expect({ status: r.status, error: r.error }).toEqual({ status: 200, error: code })
  expect(r.bytes_out).toBeLessThan(BODY_BYTES)
}

test('a small whole reply the client does not take within send_timeout: logged with the bytes taken and CLIENT_SEND_TIMEOUT', async () => {
  const { c, records, served } = await stuckClient({ send_timeout: '1s' })
  expect(await waitFor(c.closed, 8000, 50)).toBe(true)
  expect(await waitFor(() => records.length === served())).toBe(true)
  expectLastCut(records, served(), 'CLIENT_SEND_TIMEOUT')
}, 20_000)

test('a small whole reply cut as the client leaves (a reset): logged with the bytes taken and CLIENT_GONE', async () => {
  const { c, records, served } = await stuckClient({})
  c.sock.terminate()
  expect(await waitFor(() => records.length === served())).toBe(true)
  await Bun.sleep(100) // a record that would come later than the others
  expectLastCut(records, served(), 'CLIENT_GONE')
}, 20_000)
