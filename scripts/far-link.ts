/**
 * A far link for benchmarks and tests: a network namespace whose one address is reached from this
 * one over a link with a round-trip time of the caller's choosing, made of two TUN devices and this
 * process moving each IP packet from one to the other after half the round trip. Real TCP runs
 * across it end to end (windows, slow start, autotuning: what decides a far origin's throughput),
 * where a user-space relay would end TCP at itself. For machines without tc's netem (this
 * project's has no kernel modules). Linux and root only (ip, /dev/net/tun, bun:ffi's ioctl).
 *
 *   bun scripts/far-link.ts [--rtt-ms 100] [--ns far] [--near 10.77.0.1] [--far 10.77.0.2]
 *
 * Prints `ready <near> <far> <ns>` once packets flow, and removes the namespace when it gets
 * SIGINT or SIGTERM (the TUN devices end with the process). Run a server in the far end with
 * `ip netns exec <ns> ...` bound to <far>, and reach it from here at <far>. Packets are never
 * dropped or reordered; the link's rate is what this process can copy (tens of MB/s).
 */
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, read, writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { libcFunction } from '../src/runtime/receive-buffer.ts'

const { values } = parseArgs({
  options: {
    'rtt-ms': { type: 'string', default: '100' },
    ns: { type: 'string', default: 'far' },
    near: { type: 'string', default: '10.77.0.1' },
    far: { type: 'string', default: '10.77.0.2' },
  },
})
const rttMs = Number(values['rtt-ms'])
if (!Number.isFinite(rttMs) || rttMs < 0) throw new Error('--rtt-ms wants a number of milliseconds, 0 or more')
const ns = values.ns!
const near = values.near!
const far = values.far!
const oneWayMs = rttMs / 2

// <linux/if_tun.h>
const TUNSETIFF = 0x400454ca
const IFF_TUN = 0x0001
const IFF_NO_PI = 0x1000

type Ioctl = (fd: number, request: bigint, arg: Uint8Array) => number
const ioctl = libcFunction<Ioctl>('ioctl', ['i32', 'u64', 'ptr'], 'i32')
if (!ioctl) throw new Error('far-link needs Bun on Linux (bun:ffi and libc ioctl)')

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] })
}

/** Opens a TUN device named `name` (no packet-information prefix: each read is one IP packet). */
function openTun(name: string): number {
  const fd = openSync('/dev/net/tun', 'r+')
  const ifreq = new Uint8Array(40)
  ifreq.set(new TextEncoder().encode(name))
  new DataView(ifreq.buffer).setUint16(16, IFF_TUN | IFF_NO_PI, true)
  if (ioctl!(fd, BigInt(TUNSETIFF), ifreq) !== 0) {
    closeSync(fd)
    throw new Error(`TUNSETIFF ${name} failed (root and /dev/net/tun needed)`)
  }
  return fd
}

const nearDev = `${ns.slice(0, 8)}-n`
const farDev = `${ns.slice(0, 8)}-f`
try {
  execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
} catch {
  // none left from an earlier run
}
ip('netns', 'add', ns)
ip('-n', ns, 'link', 'set', 'lo', 'up')
const nearFd = openTun(nearDev)
const farFd = openTun(farDev)
ip('link', 'set', farDev, 'netns', ns)
ip('addr', 'add', near, 'peer', far, 'dev', nearDev)
ip('link', 'set', nearDev, 'up')
ip('-n', ns, 'addr', 'add', far, 'peer', near, 'dev', farDev)
ip('-n', ns, 'link', 'set', farDev, 'up')

let closed = false

/** One direction: packets read from `fromFd` are written to `toFd` oneWayMs later, in order. */
function pump(fromFd: number, toFd: number): void {
  const due: { atMs: number; packet: Uint8Array }[] = []
  let head = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const flush = (): void => {
    timer = undefined
    const nowMs = performance.now()
    while (head < due.length && due[head]!.atMs <= nowMs) {
      try {
        writeSync(toFd, due[head]!.packet)
      } catch {
        // the far end went down; drop it as a link would
      }
      due[head++] = undefined as never
    }
    if (head === due.length) {
      due.length = 0
      head = 0
    } else {
      if (head > 4096) {
        due.splice(0, head)
        head = 0
      }
      timer = setTimeout(flush, Math.max(0, due[head]!.atMs - nowMs))
    }
  }
  const buffer = new Uint8Array(65536)
  const next = (): void => {
    if (closed) return
    read(fromFd, buffer, 0, buffer.length, null, (error, bytes) => {
      if (closed) return
      if (error) {
        console.error(`far-link: read failed: ${error.message}`)
        return
      }
      due.push({ atMs: performance.now() + oneWayMs, packet: buffer.slice(0, bytes) })
      if (timer === undefined) timer = setTimeout(flush, oneWayMs)
      next()
    })
  }
  next()
}

pump(nearFd, farFd)
pump(farFd, nearFd)

function close(): void {
  if (closed) return
  closed = true
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  } catch {
    // already gone
  }
  process.exit(0)
}
process.on('SIGINT', close)
process.on('SIGTERM', close)
console.log(`ready ${near} ${far} ${ns}`)
