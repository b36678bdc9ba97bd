/** lib/clock.ts: the clocks held for one socket event, and read otherwise. */
import { describe, expect, test } from 'bun:test'
import { holdClocks, isoNow, monoNow, releaseClocks, wallNow } from '../../src/lib/clock.ts'

describe('held clocks', () => {
  test('outside a held event each read is the clock', () => {
    const a = monoNow()
    Bun.sleepSync(3)
    expect(monoNow()).toBeGreaterThan(a)
    const w = wallNow()
    Bun.sleepSync(3)
    expect(wallNow()).toBeGreaterThan(w)
  })

  test('inside one, every read gives the first reading; nested holds keep the outer one', () => {
    holdClocks()
    try {
      const mono = monoNow()
      const wall = wallNow()
      Bun.sleepSync(3)
      expect(monoNow()).toBe(mono)
      expect(wallNow()).toBe(wall)
      expect(isoNow()).toBe(new Date(wall).toISOString())
      holdClocks()
      try {
        Bun.sleepSync(3)
        expect(monoNow()).toBe(mono)
      } finally {
        releaseClocks()
      }
      // The inner release leaves the outer hold as it was.
      expect(monoNow()).toBe(mono)
      expect(wallNow()).toBe(wall)
    } finally {
      releaseClocks()
    }
    const after = monoNow()
    Bun.sleepSync(3)
    expect(monoNow()).toBeGreaterThan(after)
  })

  test('a hold released in finally after a throw leaves the clocks read again', () => {
    const run = () => {
      holdClocks()
      try {
        monoNow()
        throw new Error('handler failed')
      } finally {
        releaseClocks()
      }
    }
    expect(run).toThrow('handler failed')
    const a = monoNow()
    Bun.sleepSync(3)
    expect(monoNow()).toBeGreaterThan(a)
  })

  test('a new hold takes a new reading', () => {
    holdClocks()
    const first = monoNow()
    releaseClocks()
    Bun.sleepSync(3)
    holdClocks()
    try {
      expect(monoNow()).toBeGreaterThan(first)
    } finally {
      releaseClocks()
    }
  })
})
