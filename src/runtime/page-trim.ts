/**
 * Gives back the pages of the program's own files that it mapped and does not use now: the
 * executable's code and read-only data, and its shared libraries'. Start-up touches ~30 MiB of
 * a compiled proxy's 110 MB (Bun's parser, module loader and bytecode, every command's code), and
 * JSC's compiler touches more while it compiles the hot paths; the kernel keeps all of it mapped,
 * so RSS counts it for good, though the proxy runs from a third of it (measured: idle RSS 45.5 ->
 * 21.3 MiB after one trim, its file-backed part 37.2 -> 12.3 MiB).
 *
 * How: madvise(MADV_DONTNEED) on each private mapping of a file that is not writable and holds no
 * copied-on-write page (smaps' `Anonymous: 0 kB`); for such a mapping the call only drops the
 * page-table entries. The pages stay in the page cache, where the kernel reclaims unmapped clean
 * pages first when memory is short, and the next use of one maps it again (a minor fault; the
 * kernel maps its cached neighbours with it). A writable mapping (.data, the embedded module
 * graph) or one a relocation wrote to is never touched: there the call would throw the copies
 * away. serve.ts trims right after its listener opens and every `trim_interval` after that (a
 * worker's supervisor, workers.ts, after it starts them); one trim took 2-8 ms (reading smaps,
 * then the page-table walk over what is mapped).
 *
 * Linux on Bun only (libc's madvise through bun:ffi); elsewhere a trim does nothing.
 */
import { readFileSync } from 'node:fs'
import { libcFunction } from './receive-buffer.ts'

/** <asm-generic/mman-common.h>, the same on x86_64 and arm64. */
const MADV_DONTNEED = 4

/** One mapping a trim may drop: its start address and length, bytes. */
export interface TrimRange {
  address: number
  lengthBytes: number
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ *(.*)$/
const ANONYMOUS = /^Anonymous: +(\d+) kB/
const RSS = /^Rss: +(\d+) kB/

/**
 * The mappings of a /proc/PID/smaps text that a trim may drop: private, not writable, of a file
 * (not a device), with pages resident and none of them copied on write. Pure, for the tests.
 */
export function trimmableRanges(smaps: string): TrimRange[] {
  const out: TrimRange[] = []
  let candidate: TrimRange | undefined
  let rssKiB = 0
  let anonymousKiB = -1
  const settle = () => {
    if (candidate && rssKiB > 0 && anonymousKiB === 0) out.push(candidate)
    candidate = undefined
  }
  for (const line of smaps.split('\n')) {
    const h = HEADER.exec(line)
    if (h) {
      settle()
      const perms = h[3]!
      const path = h[4]!
      rssKiB = 0
      anonymousKiB = -1
      if (perms[1] !== '-' || perms[3] !== 'p' || !path.startsWith('/') || path.startsWith('/dev/')) continue
      const start = parseInt(h[1]!, 16)
      candidate = { address: start, lengthBytes: parseInt(h[2]!, 16) - start }
      continue
    }
    if (!candidate) continue
    const r = RSS.exec(line)
    if (r) rssKiB = Number(r[1])
    const a = ANONYMOUS.exec(line)
    if (a) anonymousKiB = Number(a[1])
  }
  settle()
  return out
}

type Madvise = (address: number, lengthBytes: number, advice: number) => number
let madvise: Madvise | null | undefined

/**
 * Drops this process's trimmable mappings (above) from its page tables; returns the bytes of
 * address space advised (what was resident of them left RSS), or undefined where it cannot (off
 * Linux, off Bun, no /proc).
 */
export function trimMappedFilePages(): number | undefined {
  if (madvise === undefined) madvise = libcFunction<Madvise>('madvise', ['u64', 'u64', 'i32'], 'i32')
  if (!madvise) return undefined
  let smaps: string
  try {
    smaps = readFileSync('/proc/self/smaps', 'latin1')
  } catch {
    return undefined
  }
  let bytes = 0
  for (const r of trimmableRanges(smaps)) {
    if (madvise(r.address, r.lengthBytes, MADV_DONTNEED) === 0) bytes += r.lengthBytes
  }
  return bytes
}

/**
 * Trims now and then every `intervalMs`; 0 means never (not even now). The timer does not keep
 * the process alive.
 */
export class PageTrimmer {
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(intervalMs: number) {
    this.retime(intervalMs)
  }

  /** A new interval (a reload's): from 0 to more, a trim at once; to 0, no more trims. */
  retime(intervalMs: number): void {
    const wasOff = this.timer === undefined
    this.close()
    if (intervalMs <= 0) return
    if (wasOff && trimMappedFilePages() === undefined) return
    this.timer = setInterval(trimMappedFilePages, intervalMs)
    this.timer.unref?.()
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
