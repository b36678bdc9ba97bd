/**
 * The address lock among proxy processes (runtime/shared-port.ts): one process's listener shares
 * its port with SO_REUSEPORT (for reloads), so the lock, an abstract Unix socket named after the
 * address, is what keeps a second proxy off it, even one that starts at the same moment (the
 * momentary exclusive claim alone let both through in 1 of 80 tries in review). Let go at
 * close, after a move (settle), and when the process ends.
 */
import { afterEach, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AddressLocks, lockAddress } from '../../src/runtime/shared-port.ts'
import { freePort, waitFor } from '../support/harness.ts'
import { testDir } from '../support/temp-dir.ts'

const open: AddressLocks[] = []
afterEach(() => {
  for (const l of open.splice(0)) l.close()
})
const locks = () => {
  const l = new AddressLocks()
  open.push(l)
  return l
}

test.skipIf(process.platform !== 'linux')('a second claim of a held address is refused as address in use, by lock even before the port is listened on', async () => {
  const port = await freePort()
  const a = locks()
  expect(a.claim('127.0.0.1', port)).toBe(port)
  // Nothing listens on the port now (the claim let go of it): only the lock keeps the second out.
  let err: unknown
  try {
    locks().claim('127.0.0.1', port)
  } catch (e) {
    err = e
  }
  expect(err).toMatchObject({ code: 'EADDRINUSE', message: expect.stringContaining(`another proxy process listens on 127.0.0.1:${port}`) })
  // Another address is another lock; the same one is free again once let go.
  expect(locks().claim('127.0.0.2', port)).toBe(port)
  a.close()
  expect(locks().claim('127.0.0.1', port)).toBe(port)
})

test.skipIf(process.platform !== 'linux')('port 0 is locked once the kernel chose it; settle lets go of every address but the one listened on', async () => {
  const l = locks()
  const chosen = l.claim('127.0.0.1', 0)
  expect(chosen).toBeGreaterThan(0)
  expect(() => lockAddress('127.0.0.1', chosen)).toThrow()
  const other = await freePort()
  l.claim('127.0.0.1', other)
  l.settle('127.0.0.1', other)
  lockAddress('127.0.0.1', chosen)() // free again: taken and let go
  expect(() => lockAddress('127.0.0.1', other)).toThrow()
})

test.skipIf(process.platform !== 'linux')('a lock held by another process keeps this one out, and is let go when that process ends', async () => {
  const port = await freePort()
  const dir = testDir('proxy-lock-')
  const script = join(dir, 'hold.ts')
  writeFileSync(script, `import { lockAddress } from ${JSON.stringify(new URL('../../src/runtime/shared-port.ts', import.meta.url).pathname)}\nlockAddress('127.0.0.1', ${port})\nawait Bun.sleep(1500)\n`)
  const child = Bun.spawn([process.execPath, script], { stdout: 'ignore', stderr: 'ignore' })
  // Held once the child got that far (at most 5 s): a lock taken here now fails.
  const heldElsewhere = () => {
    try {
      lockAddress('127.0.0.1', port)()
      return false
    } catch {
      return true
    }
  }
  expect(await waitFor(heldElsewhere, 5000)).toBe(true)
  expect(() => locks().claim('127.0.0.1', port)).toThrow(/another proxy process/)
  await child.exited
  expect(locks().claim('127.0.0.1', port)).toBe(port)
})
