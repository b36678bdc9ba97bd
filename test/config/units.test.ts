import { describe, expect, test } from 'bun:test'
import { formatDurationMs, isFractionOfByte, isUnderOneMs, parseDurationMs, parseSizeBytes } from '../../src/lib/units.ts'

describe('parseDurationMs', () => {
  test.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['0', 0],
    [' 10s ', 10_000],
  ])('%p -> %p', (raw, ms) => expect(parseDurationMs(raw)).toBe(ms))
  test.each(['', '10', 's', '10x', '-5s', '5s junk', '1.s'])('%p is rejected', (raw) => expect(parseDurationMs(raw)).toBeUndefined())
})

test.each(['0.4ms', '0.0001s'])('%p (under a millisecond, which would round to "none") is rejected', (raw) => expect(parseDurationMs(raw)).toBeUndefined())

test('isUnderOneMs and isFractionOfByte tell a refused value from a malformed one', () => {
  expect(['0.4ms', '0.0001s', '0', '1ms', '0.4', 'x'].map(isUnderOneMs)).toEqual([true, true, false, false, false, false])
  expect(['0.4', '1.5', '0.5B', '0.0001KiB', '1.5KiB', '2', '-1', 'x'].map(isFractionOfByte)).toEqual([true, true, true, true, false, false, false, false])
})

describe('parseSizeBytes', () => {
  test.each([
    ['64KiB', 65536],
    ['1MB', 1_000_000],
    ['2GiB', 2 * 1024 ** 3],
    ['512', 512],
    ['16k', 16384],
    ['0', 0],
  ])('%p -> %p', (raw, bytes) => expect(parseSizeBytes(raw)).toBe(bytes))
  test.each(['', 'KiB', '10 parsecs', '-1'])('%p is rejected', (raw) => expect(parseSizeBytes(raw)).toBeUndefined())
  // Each would round to 0, which means "no limit" for max_body_size and the like; 1.5 bytes is no size either.
  test.each(['0.4', '1.5', '0.5B', '0.0001KiB'])('%p (a fraction of a byte) is rejected', (raw) => expect(parseSizeBytes(raw)).toBeUndefined())
  test.each([['1.5KiB', 1536], ['0.5MB', 500_000], ['0.0', 0]])('%p -> %p (whole bytes)', (raw, bytes) => expect(parseSizeBytes(raw)).toBe(bytes))
})

test('formatDurationMs round-trips through parseDurationMs', () => {
  for (const ms of [0, 250, 1000, 1500, 60_000, 3_600_000, 90_000]) expect(parseDurationMs(formatDurationMs(ms))).toBe(ms)
})
