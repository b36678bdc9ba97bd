/** The operational log's line format: one line per event, values quoted when they must be, and no control character a terminal acts on. */
import { expect, test } from 'bun:test'
import { createLogger } from '../../src/lib/logger.ts'

function lineOf(fields: Record<string, unknown>): string {
  const lines: string[] = []
  createLogger((l) => lines.push(l))('warn', 'refused', fields)
  expect(lines).toHaveLength(1)
  return lines[0]!.replace(/^\S+ warn  refused/, '')
}

test('plain values as they are; whitespace, quotes and = quoted', () => {
  expect(lineOf({ a: 'x', n: 3, o: [1, 2], u: undefined })).toBe(' a=x n=3 o=[1,2]\n')
  expect(lineOf({ a: 'x y', b: 'p"q', c: 'k=v' })).toBe(' a="x y" b="p\\"q" c="k=v"\n')
})

test.each([
  ['CSI (U+009B), which a terminal takes for ESC [', 'x-\x9b31mRED', ' r="x-\\u009b31mRED"\n'],
  ['DEL', 'x-\x7fDEL', ' r="x-\\u007fDEL"\n'],
  ['ESC', 'x-\x1b[31m', ' r="x-\\u001b[31m"\n'],
  ['NUL', 'a\x00b', ' r="a\\u0000b"\n'],
  ['a line separator', 'a\u2028b', ' r="a\\u2028b"\n'],
  ['a newline', 'a\nb', ' r="a\\nb"\n'],
])('%s in a value is escaped, never raw', (_what, value, want) => {
  const line = lineOf({ r: value })
  expect(line).toBe(want)
  expect(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]/.test(line)).toBe(false)
})
