/**
 * HeadReader (http1/head-reader.ts): the end of a head found across reads of any size, from a
 * read kept as it came or from a grown buffer, and a head ended by bare LFs told apart from one
 * still coming, and empty lines before a request head dropped. Appends of one byte each cross
 * every boundary.
 */
import { describe, expect, test } from 'bun:test'
import { Buffer } from 'node:buffer'
import { HeadReader } from '../../src/http1/head-reader.ts'

/** Appends `text` in pieces of `step` bytes; after each, what findEnd and bareLfEnd say. */
function feed(text: string, step: number): { ends: number[]; bareAt: number } {
  const r = new HeadReader()
  const ends: number[] = []
  let bareAt = -1
  for (let at = 0; at < text.length; at += step) {
    r.append(Buffer.from(text.slice(at, at + step), 'latin1'))
    const end = r.findEnd()
    ends.push(end)
    if (end < 0 && bareAt < 0 && r.bareLfEnd()) bareAt = r.size
  }
  return { ends, bareAt }
}

describe('HeadReader', () => {
  const head = 'GET / HTTP/1.1\r\nHost: a\r\nX-Long: ' + 'v'.repeat(3000) + '\r\n\r\nBODY'
  test.each([1, 2, 3, 7, 64, 5000])('the end of a head is found when it arrives, in pieces of %i bytes', (step) => {
    const { ends, bareAt } = feed(head, step)
    const at = head.indexOf('\r\n\r\n')
    // -1 until the read that completes the CRLFCRLF, then its offset.
    const first = ends.findIndex((e) => e >= 0)
    expect(ends[first]).toBe(at)
    expect(Math.min(head.length, (first + 1) * step)).toBeGreaterThanOrEqual(at + 4)
    expect(first === 0 || first * step < at + 4).toBe(true)
    expect(bareAt).toBe(-1)
  })

  test.each([
    ['LF LF', 'GET / HTTP/1.1\nHost: a\n\n', 'GET / HTTP/1.1\nHost: a\n\n'.length],
    ['a last line ended by LF, then CRLF', 'GET / HTTP/1.1\r\nHost: a\n\r\n', 'GET / HTTP/1.1\r\nHost: a\n\r\n'.length],
    ['CRLF then an empty line ended by LF', 'GET / HTTP/1.1\r\nHost: a\r\n\n', 'GET / HTTP/1.1\r\nHost: a\r\n\n'.length],
  ])('a head ended by bare LFs is told at its last byte (%s), in any pieces', (_, text, at) => {
    for (const step of [1, 2, 3, 100]) {
      const r = feed(text, step)
      expect(r.ends.every((e) => e < 0)).toBe(true)
      expect(r.bareAt).toBeGreaterThanOrEqual(at)
      expect(r.bareAt).toBeLessThan(at + step)
    }
  })

  test('an unfinished head with CRLF lines only is not taken for one ended by bare LFs', () => {
    for (const step of [1, 2, 3]) expect(feed('GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n', step).bareAt).toBe(-1)
  })

  test.each([1, 2, 3, 100])('findRequestEnd drops empty lines before a request head, in pieces of %i bytes', (step) => {
    const text = '\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'
    const r = new HeadReader()
    let end = -1
    for (let at = 0; at < text.length && end < 0; at += step) {
      r.append(Buffer.from(text.slice(at, at + step), 'latin1'))
      end = r.findRequestEnd()
    }
    expect(r.bytes.toString('latin1', 0, end)).toBe('GET / HTTP/1.1\r\nHost: a')
  })

  test.each([1, 2, 5, 100])('newFirstLineEnd tells where the first CRLF is once, when it arrives, in pieces of %i bytes', (step) => {
    const text = 'GET /x\r\nHost: a\r\n'
    const r = new HeadReader()
    const told: [number, number][] = []
    for (let at = 0; at < text.length; at += step) {
      r.append(Buffer.from(text.slice(at, at + step), 'latin1'))
      const end = r.newFirstLineEnd()
      if (end >= 0) told.push([r.size, end])
    }
    expect(told).toHaveLength(1)
    expect(told[0]![1]).toBe(6)
    expect(told[0]![0]).toBeGreaterThanOrEqual(8)
    // A new head (after consume) is looked at again.
    r.consume(r.size)
    r.append(Buffer.from('BAD\r\n', 'latin1'))
    expect(r.newFirstLineEnd()).toBe(3)
    expect(r.newFirstLineEnd()).toBe(-1)
  })
})
