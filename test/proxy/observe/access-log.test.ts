/** The access log's writers: files, outages and their messages. */
import { afterEach, describe, expect, jest, test } from 'bun:test'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccessLog, formatRecord, renderAccessLogMetrics } from '../../../src/proxy/observe/access-log.ts'
import type { RequestRecord } from '../../../src/proxy/observe/record.ts'
import { testDir } from '../../support/temp-dir.ts'

function record(path = '/a'): RequestRecord {
  return { ts: '2026-11-26T00:00:00.000Z', request_id: 'r1', client: '127.0.0.1', method: 'GET', host: 'h.test', path, protocol: 'HTTP/1.1', status: 200, bytes_in: 0, bytes_out: 5, duration_ms: 0.5, upstream: 'default', retries: 0 }
}

/** Lets queued file-system work finish: a fixed number of thread-pool round trips, no clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await stat('/')
}

afterEach(() => void jest.useRealTimers())

test('"/dev/stdout" is the process\'s stdout stream whatever it is (a journal socket cannot be opened by path), not a file opened by name', async () => {
  const written: string[] = []
  const stdout = {
    write(chunk: Uint8Array, done: (err?: Error | null) => void) {
      written.push(Buffer.from(chunk).toString())
      done()
      return true
    },
    on() {},
  }
  const log = createAccessLog({ accessLog: '/dev/stdout', format: 'json' }, () => {}, { stdout })
  log.write(record('/to-stdout'))
  await log.close()
  expect(written.join('')).toContain('"path":"/to-stdout"')
  expect(log.dropped).toBe(0)
})

describe('a file keeps up', () => {
  test('100,000 lines in one burst are all written, in order, none dropped', async () => {
    const file = join(testDir('proxy-log-'), 'access.log')
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
    const log = createAccessLog({ accessLog: join(testDir('proxy-log-'), 'missing', 'access.log'), format: 'json' }, (_level, msg) => messages.push(msg), { stats })
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

/** One event-loop turn: the log's batch of this turn has been handed on. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

const paths = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as RequestRecord).path)

describe('formats', () => {
  test('text: a `"` in the request is \\x22, as nginx writes it, so the quoted field ends where it should', () => {
    expect(formatRecord(record('/a"b'), 'text')).toContain(' "GET h.test/a\\x22b" 200 ')
  })

  test('text: backslash, controls, DEL, bytes beyond ASCII as \\xHH; a plain request as it was', () => {
    const line = (path: string) => formatRecord(record(path), 'text')
    expect(line('/x\\y\n\t\x7f')).toContain('"GET h.test/x\\x5Cy\\x0A\\x09\\x7F" ')
    // The own listener reads the target as latin1: one character per byte sent.
    expect(line('/caf\xc3\xa9')).toContain('"GET h.test/caf\\xC3\\xA9" ')
    // A path from HTTP/2 or the runtime listener may hold any character: its UTF-8 bytes.
    expect(line('/\u20ac\u{1f600}')).toContain('"GET h.test/\\xE2\\x82\\xAC\\xF0\\x9F\\x98\\x80" ')
    expect(line('/a/b?c=d&e=%22')).toBe('2026-11-26T00:00:00.000Z 127.0.0.1 "GET h.test/a/b?c=d&e=%22" 200 in=0 out=5 0.5ms id=r1\n')
    expect(line('/a"b').split('\n')).toHaveLength(2)
  })

  test('JSON: hostile values come back as they were, on one line', () => {
    const hostile = { ...record('/a"b\\c\n\r\u0000\x7f\xe9\u20ac\ud800'), host: 'h"\n', method: 'G"ET' }
    const line = formatRecord(hostile, 'json')
    expect(line.indexOf('\n')).toBe(line.length - 1)
    expect(/[\u0000-\u001f]/.test(line.slice(0, -1))).toBe(false)
    expect(JSON.parse(line)).toEqual(hostile)
  })

  test('JSON: DEL and the C1 controls (U+009B is CSI to a terminal) are \\u escapes, not raw; they parse back', () => {
    // An HTTP/2 :authority may carry bytes 0x80-0xFF (HPACK strings are read as latin1); the request is refused, and logged.
    const hostile = { ...record('/p'), host: 'x\x9b2J\x1b[31m\x85\x7f\x80y' }
    const line = formatRecord(hostile, 'json')
    expect(line).toContain('"host":"x\\u009b2J\\u001b[31m\\u0085\\u007f\\u0080y"')
    expect(/[\u0000-\u001f\u007f-\u009f]/.test(line.slice(0, -1))).toBe(false)
    expect(JSON.parse(line)).toEqual(hostile)
    // A line with none is JSON.stringify's, unchanged.
    expect(formatRecord(record('/a\xe9'), 'json')).toBe(`${JSON.stringify(record('/a\xe9'))}\n`)
  })
})

describe('rotation', () => {
  test('reopen(): once the file is moved away, the lines after go to a new file at the path', async () => {
    const file = join(testDir('proxy-log-'), 'access.log')
    const messages: string[] = []
    const log = createAccessLog({ accessLog: file, format: 'json' }, (_level, msg) => messages.push(msg))
    log.write(record('/before'))
    await turn()
    renameSync(file, `${file}.1`)
    log.write(record('/between')) // gathered before the reopen: written to the file it was meant for
    log.reopen()
    log.write(record('/after'))
    await log.close()
    expect(paths(`${file}.1`)).toEqual(['/before', '/between'])
    expect(paths(file)).toEqual(['/after'])
    expect(messages).toEqual(['access log reopened'])
  })

  test('reopen() after the directory is removed says the log cannot be written, not that it was reopened', async () => {
    const dir = testDir('proxy-log-')
    const file = join(dir, 'access.log')
    const messages: string[] = []
    const log = createAccessLog({ accessLog: file, format: 'json' }, (_level, msg) => messages.push(msg))
    log.write(record('/before'))
    await turn()
    rmSync(dir, { recursive: true })
    log.reopen()
    log.write(record('/after'))
    await log.close()
    // Before: the ENOENT message, then "access log reopened" as though it had worked.
    expect(messages).toEqual(['access log cannot be written; requests continue, lines are dropped'])
    expect(log.dropped).toBe(1)
  })
})

describe('a file that ends mid-line (outside review, thirteenth round)', () => {
  test('a record cut short by a full disk is not glued to the next one: the next batch after the reopen starts on a line of its own', async () => {
    const file = join(testDir('proxy-log-'), 'access.log')
    // What a write cut short by ENOSPC left: the start of a record, no newline.
    writeFileSync(file, '{"ts":"2026-11-26T00:00:00.000Z","request_id":"cut')
    const log = createAccessLog({ accessLog: file, format: 'json' }, () => {})
    log.write(record('/after'))
    await log.close()
    const lines = readFileSync(file, 'utf8').split('\n')
    expect(lines[0]).toBe('{"ts":"2026-11-26T00:00:00.000Z","request_id":"cut')
    expect(JSON.parse(lines[1]!).path).toBe('/after')
    expect(lines.length).toBe(3)
  })

  test('a file that ends with a newline, or is empty, gets no empty line', async () => {
    const file = join(testDir('proxy-log-'), 'access.log')
    writeFileSync(file, '{"path":"/before"}\n')
    const log = createAccessLog({ accessLog: file, format: 'json' }, () => {})
    log.write(record('/after'))
    await log.close()
    expect(readFileSync(file, 'utf8').split('\n').map((l) => (l ? JSON.parse(l).path : ''))).toEqual(['/before', '/after', ''])
  })
})

describe('stdout and stderr', () => {
  test('a reader that never reads: what waits stays under 8 MiB and a batch; the rest is counted, reported once', async () => {
    const realWrite = process.stdout.write
    let handedBytes = 0
    const callbacks: (() => void)[] = []
    // process.stdout itself, with a reader that never reads: nothing handed over is ever written.
    process.stdout.write = ((chunk: string | Uint8Array, done?: () => void) => {
      handedBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
      if (typeof done === 'function') callbacks.push(done)
      return false
    }) as typeof process.stdout.write
    const messages: string[] = []
    const log = createAccessLog({ accessLog: 'stdout', format: 'json' }, (_level, msg) => messages.push(msg))
    try {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 10_000; i++) log.write(record())
        await turn()
      }
      const lineBytes = formatRecord(record(), 'json').length
      expect(handedBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + 64 * 1024)
      expect(log.dropped + handedBytes / lineBytes).toBe(100_000)
      expect(messages).toEqual(['access log reader is not keeping up; requests continue, lines are dropped'])
      // The reader catches up: the outage ends, once.
      for (const done of callbacks.splice(0)) done()
      expect(messages.slice(1)).toEqual(['access log writable again'])
    } finally {
      await log.close()
      process.stdout.write = realWrite
    }
  })

  test('a FIFO path (/dev/stdout into a pipe) is written as a stream: a reader that never reads costs dropped lines, not a stalled process', async () => {
    const fifo = join(testDir('proxy-log-'), 'access.fifo')
    execFileSync('mkfifo', [fifo])
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK) // opened, never read
    const messages: string[] = []
    const log = createAccessLog({ accessLog: fifo, format: 'json' }, (_level, msg) => messages.push(msg))
    try {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 10_000; i++) log.write(record())
        await turn()
      }
      expect(log.dropped).toBeGreaterThan(50_000)
      expect(messages).toEqual(['access log reader is not keeping up; requests continue, lines are dropped'])
    } finally {
      closeSync(reader) // a write blocked on the full pipe ends (EPIPE)
      await log.close()
    }
  })

  test('a reader gone (EPIPE) stays gone: writes said to succeed after it (as Bun\'s stdout says them) are counted as dropped, with no "writable again" (outside review, thirteenth round)', async () => {
    const stats = { dropped: 0 }
    const messages: string[] = []
    let writes = 0
    const stream = {
      // The first write fails EPIPE; every later one "succeeds", though a pipe with no reader takes nothing.
      write: (_chunk: Uint8Array, done: (err?: Error | null) => void) => {
        const n = writes++
        queueMicrotask(() => done(n === 0 ? Object.assign(new Error('broken pipe'), { code: 'EPIPE' }) : null))
      },
      on: () => {},
    }
    const log = createAccessLog({ accessLog: 'stderr', format: 'text' }, (_level, msg) => messages.push(msg), { stats, stderr: stream })
    for (let i = 0; i < 3; i++) log.write(record())
    await turn()
    for (let i = 0; i < 4; i++) log.write(record())
    await turn()
    await log.close()
    expect(writes).toBe(1)
    expect(stats.dropped).toBe(7)
    expect(messages).toEqual(['access log cannot be written; requests continue, lines are dropped'])
  })

  test('a reader that is gone (EPIPE): lines are counted as dropped, the process goes on', async () => {
    const stats = { dropped: 0 }
    const messages: string[] = []
    let errorListeners = 0
    const gone = {
      write: (_chunk: Uint8Array, done: (err?: Error | null) => void) => queueMicrotask(() => done(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }))),
      on: (event: string) => void (event === 'error' && errorListeners++),
    }
    const log = createAccessLog({ accessLog: 'stderr', format: 'text' }, (_level, msg) => messages.push(msg), { stats, stderr: gone })
    for (let i = 0; i < 5; i++) log.write(record())
    await turn()
    await log.close()
    expect(errorListeners).toBe(1)
    expect(stats.dropped).toBe(5)
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
    const dir = testDir('proxy-log-')
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
