/**
 * The cgroup memory limit read for the start-up warning of a cache that cannot fit (memory-limit.ts), from files given
 * here: cgroup v2 and v1, no limit, nothing readable (seventeenth round of outside reviews: a 200 MB cgroup and
 * `--cache 1GiB` ended in an OOM kill without a line).
 */
import { expect, test } from 'bun:test'
import { cacheOverLimitWarning, cgroupMemoryLimitBytes, WORKER_BASE_BYTES } from '../../src/runtime/memory-limit.ts'

const files = (map: Record<string, string>) => (p: string) => {
  const v = map[p]
  if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
  return v
}
const MiB = 1024 * 1024

test('cgroup v2: memory.max of the process\'s own cgroup; "max" is no limit', () => {
  expect(cgroupMemoryLimitBytes(files({ '/proc/self/cgroup': '0::/system.slice/proxy.service\n', '/sys/fs/cgroup/system.slice/proxy.service/memory.max': '209715200\n' }))).toBe(200 * MiB)
  expect(cgroupMemoryLimitBytes(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup//memory.max': 'max\n' }))).toBeUndefined()
})

test('cgroup v1: the memory controller\'s limit_in_bytes; its "no limit" value is none', () => {
  const self = '12:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n'
  expect(cgroupMemoryLimitBytes(files({ '/proc/self/cgroup': self, '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': '536870912\n' }))).toBe(512 * MiB)
  expect(cgroupMemoryLimitBytes(files({ '/proc/self/cgroup': self, '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': '9223372036854771712\n' }))).toBeUndefined()
})

test('nothing readable: no limit known', () => {
  expect(cgroupMemoryLimitBytes(files({}))).toBeUndefined()
  expect(cgroupMemoryLimitBytes(files({ '/proc/self/cgroup': '0::/a\n' }))).toBeUndefined()
})

test('the warning: only when the workers\' caches and their base do not fit', () => {
  expect(cacheOverLimitWarning(1024 * MiB, 1, 200 * MiB)).toContain('[cache] max_size (1024 MiB per worker, 1 worker)')
  expect(cacheOverLimitWarning(100 * MiB, 2, 2 * (100 * MiB + WORKER_BASE_BYTES) - 1)).toContain('2 workers')
  expect(cacheOverLimitWarning(100 * MiB, 2, 2 * (100 * MiB + WORKER_BASE_BYTES))).toBeUndefined()
  expect(cacheOverLimitWarning(0, 4, 10 * MiB)).toBeUndefined()
  expect(cacheOverLimitWarning(1024 * MiB, 1, undefined)).toBeUndefined()
})
