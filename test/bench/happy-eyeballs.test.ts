/**
 * The bench's connect race (src/bench/happy-eyeballs.ts, RFC 8305) with attempts of its own
 * making: no network, each attempt settled by hand.
 */
import { expect, test } from 'bun:test'
import { connectFirst, interleaveFamilies, type Attempt, type Candidate } from '../../src/bench/happy-eyeballs.ts'

/** Attempts that settle when told: started in order, each with its resolve/reject and whether it was cancelled. */
function manual() {
  const started: { c: Candidate; resolve(v: string): void; reject(e: unknown): void; cancelled: boolean }[] = []
  const attempt = (c: Candidate): Attempt<string> => {
    let resolve!: (v: string) => void
    let reject!: (e: unknown) => void
    const done = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)))
    const entry = { c, resolve, reject, cancelled: false }
    started.push(entry)
    return { done, cancel: () => void (entry.cancelled = true) }
  }
  return { started, attempt }
}

const refused = Object.assign(new Error('refused'), { kind: 'ECONNREFUSED' })
const moveOn = (err: unknown) => (err as { kind?: string }).kind === 'ECONNREFUSED'
const tick = () => new Promise((r) => setTimeout(r, 0))
const a4 = { address: '127.0.0.9', family: 4 as const }
const a6 = { address: '::1', family: 6 as const }

test('a first address still connecting after the delay has the next raced beside it; the first to connect wins, the other is cancelled (eighteenth round of review)', async () => {
  const m = manual()
  const race = connectFirst([a4, a6], m.attempt, moveOn, 20)
  await tick()
  expect(m.started.map((s) => s.c.address)).toEqual(['127.0.0.9'])
  for (let i = 0; i < 100 && m.started.length < 2; i++) await Bun.sleep(10)
  expect(m.started.map((s) => s.c.address)).toEqual(['127.0.0.9', '::1'])
  m.started[1]!.resolve('v6 socket')
  expect(await race).toEqual({ value: 'v6 socket', candidate: a6 })
  expect(m.started[0]!.cancelled).toBe(true)
})

test('a refusal starts the next address at once, without the delay', async () => {
  const m = manual()
  const race = connectFirst([a4, a6], m.attempt, moveOn, 60_000)
  m.started[0]!.reject(refused)
  await tick()
  expect(m.started.length).toBe(2)
  m.started[1]!.resolve('ok')
  expect((await race).candidate).toBe(a6)
})

test('every address refusing: the last refusal is the error; an error it does not move on for ends the race and cancels the rest', async () => {
  const m = manual()
  const race = connectFirst([a4, a6], m.attempt, moveOn, 60_000)
  m.started[0]!.reject(refused)
  await tick()
  const last = Object.assign(new Error('refused by ::1'), { kind: 'ECONNREFUSED' })
  m.started[1]!.reject(last)
  expect(await race.catch((e) => e)).toBe(last)

  const n = manual()
  const other = connectFirst([a4, a6, { address: '127.0.0.10', family: 4 as const }], n.attempt, moveOn, 0)
  for (let i = 0; i < 100 && n.started.length < 2; i++) await Bun.sleep(5)
  const emfile = Object.assign(new Error('no descriptor'), { kind: 'EMFILE' })
  n.started[1]!.reject(emfile)
  expect(await other.catch((e) => e)).toBe(emfile)
  expect(n.started[0]!.cancelled).toBe(true)
})

test('a timeout starts no further address: the time is spent', async () => {
  const m = manual()
  const race = connectFirst([a4, a6], m.attempt, moveOn, 60_000)
  const timeout = Object.assign(new Error('timed out'), { kind: 'timeout' })
  m.started[0]!.reject(timeout)
  expect(await race.catch((e) => e)).toBe(timeout)
  expect(m.started.length).toBe(1)
})

test('families interleaved, the first address\'s family first (RFC 8305 §4)', () => {
  const v4 = (n: number) => ({ address: `127.0.0.${n}`, family: 4 as const })
  const v6 = (n: number) => ({ address: `::${n}`, family: 6 as const })
  expect(interleaveFamilies([v4(1), v4(2), v4(3), v6(1), v6(2)]).map((c) => c.address)).toEqual(['127.0.0.1', '::1', '127.0.0.2', '::2', '127.0.0.3'])
  expect(interleaveFamilies([v6(1), v4(1)]).map((c) => c.address)).toEqual(['::1', '127.0.0.1'])
  expect(interleaveFamilies([v4(1)]).map((c) => c.address)).toEqual(['127.0.0.1'])
})
