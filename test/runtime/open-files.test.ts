import { describe, expect, test } from 'bun:test'
import { filesBudget, lowLimitWarning, openFilesLimit, reservedFiles } from '../../src/runtime/open-files.ts'

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
`

describe('the open-files budget of the client listener', () => {
  test('the soft limit is read from /proc/self/limits; none when the line says unlimited or is missing', () => {
    expect(openFilesLimit(LIMITS)).toBe(20000)
    expect(openFilesLimit(LIMITS.replace('20000                20000', 'unlimited            unlimited'))).toBeUndefined()
    expect(openFilesLimit('')).toBeUndefined()
    expect(filesBudget(undefined)).toBeUndefined()
  })

  test.each([
    [64, 32, 32],
    [256, 96, 160],
    [1024, 256, 768],
    [20000, 512, 19488],
    [1048576, 512, 1048064],
    [3, 1, 2],
  ])('limit %p: %p kept back, %p client and upstream connections', (limit, reserve, budget) => {
    expect(reservedFiles(limit)).toBe(reserve)
    expect(filesBudget(limit)?.budget).toBe(budget)
  })

  test('the sweep closes idle upstream connections on its own only halfway into the reserve', () => {
    expect(filesBudget(64)?.trimAt).toBe(48)
    expect(filesBudget(256)?.trimAt).toBe(208)
    expect(filesBudget(20000)?.trimAt).toBe(19744)
  })

  test("this process's limit is read (Linux, where the tests run)", () => {
    expect(openFilesLimit()).toBeGreaterThan(0)
  })
})

describe('the start-up warning for a low open-files limit', () => {
  test('said under 4,096 clients, with what to do; not at a systemd default', () => {
    expect(lowLimitWarning(undefined)).toBeUndefined()
    expect(lowLimitWarning(filesBudget(1024))).toBe('the open-files limit is 1024: the proxy takes about 384 client connections at once (each counted with an upstream one), then answers 503; raise LimitNOFILE= in the systemd unit or ulimit -n')
    expect(lowLimitWarning(filesBudget(20000))).toBeUndefined()
    expect(lowLimitWarning(filesBudget(524288))).toBeUndefined()
  })
})
