/**
 * The memory limit the kernel holds this process to (its cgroup's: v2 memory.max, or v1
 * memory.limit_in_bytes), and the start-up warning when the edge cache cannot fit in it: the
 * cache is in memory and fills as traffic comes, so a `max_size` near or above the limit is a
 * process the kernel's OOM killer ends later, under load, without a line of its own (seventeenth
 * round of outside reviews: a 200 MB cgroup, `--cache 1GiB`, killed after 44 stored objects).
 */
import { readFileSync } from 'node:fs'

/** What a worker takes beside its cache (the runtime, the heap, buffers): measured 40-110 MiB under load. */
export const WORKER_BASE_BYTES = 64 * 1024 * 1024

type Read = (path: string) => string

/** This process's cgroup memory limit in bytes, or undefined when there is none or it cannot be read (not Linux, no cgroup fs). */
export function cgroupMemoryLimitBytes(read: Read = (p) => readFileSync(p, 'utf8')): number | undefined {
  let self: string
  try {
    self = read('/proc/self/cgroup')
  } catch {
    return undefined
  }
  for (const line of self.split('\n')) {
    const [, controllers, path] = line.split(':', 3) as [string, string | undefined, string | undefined]
    if (path === undefined) continue
    // v2: one hierarchy, "0::/path"; v1: the memory controller's own.
    const file = controllers === '' ? `/sys/fs/cgroup${path}/memory.max` : controllers?.split(',').includes('memory') ? `/sys/fs/cgroup/memory${path}/memory.limit_in_bytes` : undefined
    if (file === undefined) continue
    try {
      const value = read(file).trim()
      const n = Number(value)
      // "max" (v2), or v1's "no limit" (a page-rounded 2^63-1).
      if (value !== 'max' && Number.isFinite(n) && n > 0 && n < 2 ** 60) return n
    } catch {
      // not mounted where expected: no limit known
    }
  }
  return undefined
}

/** The warning for a cache that cannot fit in `limitBytes` with `workers` processes, or undefined when it fits. */
export function cacheOverLimitWarning(cacheBytes: number, workers: number, limitBytes: number | undefined): string | undefined {
  if (cacheBytes <= 0 || limitBytes === undefined || workers * (cacheBytes + WORKER_BASE_BYTES) <= limitBytes) return undefined
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`
  return `[cache] max_size (${mib(cacheBytes)} per worker, ${workers} worker${workers > 1 ? 's' : ''}) with about ${mib(WORKER_BASE_BYTES)} each beside it is more than this process's memory limit (${mib(limitBytes)}, its cgroup's): the kernel will end the proxy (OOM) before the cache is full; lower max_size or raise the limit (systemd: MemoryMax=)`
}
