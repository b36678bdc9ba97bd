/**
 * What the HTTP/2 stack costs per request on its own, without sockets or an upstream: a
 * ServerSession (src/http2/session.ts) is fed request heads the way h2load sends them (ten
 * HEADERS frames a read, HPACK-coded by an encoder of its own, a WINDOW_UPDATE after them), and
 * each request is answered as an upstream's answer is: nginx's usual response head parsed from
 * bytes (http1/response-head.ts), its HPACK block coded from those bytes (ForwardedReply.h2Head), and
 * a 100-byte body. Prints µs per request (wall and this process's CPU); run it a few times and
 * compare builds by their ratio, as ab-cpu.ts does for the whole proxy.
 *
 *   bun scripts/h2-session.ts [--requests 300000] [--per-read 10]
 *
 * --per-read: requests in one read (h2load -m10 puts ten in a read; a browser one to a few).
 *
 * No sockets, no timers; the loop is bounded by --requests.
 */
import { Buffer } from 'node:buffer'
import { parseResponseHeadBytes } from '../src/http1/response-head.ts'
import * as F from '../src/http2/frames.ts'
import { HpackEncoder } from '../src/http2/hpack.ts'
import { ServerSession } from '../src/http2/session.ts'
import { concatBytes } from '../src/lib/bytes.ts'
import { ForwardedReply } from '../src/proxy/forwarded-reply.ts'

const args = process.argv.slice(2)
const opt = (name: string, def: number) => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : def
}
const REQUESTS = Math.max(100_000, opt('--requests', 300_000))
const PER_READ = Math.max(1, Math.min(100, opt('--per-read', 10)))
const WARM_READS = Math.floor(50_000 / PER_READ)

const RESPONSE = 'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 13:24:48 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\nConnection: keep-alive\r\n\r\n'
const responseBytes = Buffer.from(RESPONSE, 'latin1')
const body = new Uint8Array(100).fill(0x78)

let sentBytes = 0
let closed = false
const session = new ServerSession({
  write: (b) => {
    sentBytes += b.byteLength
    return true
  },
  close: () => (closed = true),
  onRequest: (stream) => {
    const head = parseResponseHeadBytes(responseBytes, RESPONSE.length - 4, 'GET')
    const reply = new ForwardedReply(head, head.raw!, crypto.randomUUID(), false, body)
    stream.respondWith(reply.h2Head(body.byteLength)!, false)
    stream.end(body)
  },
})

// The client's reads, made before the clock starts: a Buffer each, as a socket read is.
const client = new HpackEncoder(4096)
let streamId = 1
function read(): Buffer {
  const parts: Uint8Array[] = []
  for (let n = 0; n < PER_READ; n++) {
    const block = client.encode([[':method', 'GET'], [':path', '/small'], [':scheme', 'https'], [':authority', '127.0.0.1:18401'], ['user-agent', 'h2load nghttp2/1.52.0']])
    parts.push(F.headerFrames(streamId, block, true, F.MIN_MAX_FRAME_SIZE))
    streamId += 2
  }
  // Window credit for what the answers take (each answer's DATA is 100 bytes).
  parts.push(F.windowUpdateFrame(0, PER_READ * body.byteLength))
  return Buffer.from(concatBytes(parts))
}
session.receive(concatBytes([F.PREFACE, F.settingsFrame([]), F.SETTINGS_ACK]))
const reads = Array.from({ length: REQUESTS / PER_READ }, read)

/** Feeds reads [from, to), letting the session's flush (a microtask) run after each. */
async function feed(from: number, to: number): Promise<void> {
  for (let r = from; r < to; r++) {
    session.receive(reads[r]!)
    await null
  }
}

await feed(0, WARM_READS)
const started = performance.now()
const cpu = process.cpuUsage()
await feed(WARM_READS, reads.length)
const used = process.cpuUsage(cpu)
const measured = (reads.length - WARM_READS) * PER_READ
if (session.streamCount !== 0 || closed) throw new Error(`the session did not answer every request (${session.streamCount} open, closed: ${closed})`)
console.log(`${measured} requests: ${(((performance.now() - started) * 1000) / measured).toFixed(2)} µs per request (wall), ${((used.user + used.system) / measured).toFixed(2)} µs CPU; ${(sentBytes / 1e6).toFixed(1)} MB sent`)
