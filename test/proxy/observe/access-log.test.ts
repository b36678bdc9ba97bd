/** The access log's writers: files, outages and their messages. */
import { afterEach, describe, expect, jest, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAccessLog, renderAccessLogMetrics } from '../../../src/proxy/observe/access-log.ts'
import type { RequestRecord } from '../../../src/proxy/observe/record.ts'

function record(path = '/a'): RequestRecord {
  return { ts: '2026-11-26T00:00:00.000Z', request_id: 'r1', client: '127.0.0.1', method: 'GET', host: 'h.test', path, protocol: 'HTTP/1.1', status: 200, bytes_in: 0, bytes_out: 5, duration_ms: 0.5, upstream: 'default', retries: 0 }
}

/** Lets queued file-system work finish: a fixed number of thread-pool round trips, no clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await stat('/')
}

afterEach(() => void jest.useRealTimers())

describe('a file keeps up', () => {
  test('100,000 lines in one burst are all written, in order, none dropped', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'proxy-log-')), 'access.log')
    const log = createAccessLog({ accessLog: file, format: 'json' }, () => {})
    for (let i = 0; i < 100_000; i++) log.write(record(`/n${i}`))
    await log.close()
    const lines = readFileSync(file, 'utf8').split('\n')
    expect(lines.pop()).toBe('')
    expect(lines).toHaveLength(100_000)
    expect(log.dropped).toBe(0)
    expect(JSON.parse(lines[0]!).path).toBe('/n0')
    expect(JSON.parse(lines[99_999]!).path).toBe('/n99999')
  })

  test('lines a file cannot take are counted, in proxy_access_log_dropped_total too', async () => {
    const stats = { dropped: 0 }
    const messages: string[] = []
    const log = createAccessLog({ accessLog: join(mkdtempSync(join(tmpdir(), 'proxy-log-')), 'missing', 'access.log'), format: 'json' }, (_level, msg) => messages.push(msg), undefined, stats)
    for (let i = 0; i < 10; i++) log.write(record())
    await log.close()
    expect(log.dropped).toBe(10)
    const out: string[] = []
    renderAccessLogMetrics(stats, out)
    expect(out).toContain('# TYPE proxy_access_log_dropped_total counter')
    expect(out).toContain('proxy_access_log_dropped_total 10')
    expect(messages).toEqual(['access log cannot be written; requests continue, lines are dropped'])
  })
})

describe('outages', () => {
  test('/dev/full: "cannot be written" once for the whole outage, through retries; never "writable again"', async () => {
    jest.useFakeTimers()
    const messages: string[] = []
    const log = createAccessLog({ accessLog: '/dev/full', format: 'json' }, (_level, msg) => messages.push(msg))
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 10; i++) log.write(record())
      await settle()
      jest.advanceTimersByTime(5_000) // the retry
      await settle()
    }
    await log.close()
    expect(messages.filter((m) => m.includes('cannot be written'))).toHaveLength(1)
    expect(messages.filter((m) => m.includes('writable again'))).toHaveLength(0)
    expect(log.dropped).toBeGreaterThan(0)
  })

  test('"writable again" is said after a line is written, not when the file opens', async () => {
    jest.useFakeTimers()
    const dir = mkdtempSync(join(tmpdir(), 'proxy-log-'))
    const file = join(dir, 'sub', 'access.log')
    const messages: string[] = []
    let bytesWhenSaid = -1
    const log = createAccessLog({ accessLog: file, format: 'json' }, (_level, msg) => {
      messages.push(msg)
      if (msg.includes('writable again')) bytesWhenSaid = statSync(file).size
    })
    log.write(record())
    await settle()
    expect(messages).toEqual(['access log cannot be written; requests continue, lines are dropped'])
    mkdirSync(join(dir, 'sub')) // the directory comes back
    jest.advanceTimersByTime(5_000)
    await settle()
    log.write(record('/after'))
    await settle()
    await log.close()
    expect(messages.filter((m) => m.includes('writable again'))).toHaveLength(1)
    expect(bytesWhenSaid).toBeGreaterThan(0)
  })
})
