/** The state directory's order lock (who may take it, when a lock left behind is stale) and its file writes. */
import { afterAll, describe, expect, test } from 'bun:test'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { StateStore } from '../../src/acme/store.ts'
import { testDir } from '../support/temp-dir.ts'

const root = testDir('proxy-acme-store-')
afterAll(() => rmSync(root, { recursive: true, force: true }))
let dirs = 0
const fresh = () => new StateStore(join(root, `state-${++dirs}`), 'https://ca.test/dir')

describe('order lock', () => {
  test('a lock with our pid and host from an earlier run (PID 1 in a restarted container) is stale', () => {
    const store = fresh()
    const lock = join(store.caDir, 'order.lock')
    const now = Date.now()
    for (const left of [{ pid: process.pid, host: hostname(), run: 'an-earlier-run', atMs: now }, { pid: process.pid, host: hostname(), atMs: now }]) {
      writeFileSync(lock, JSON.stringify(left))
      expect(store.tryLock(now)).toBe(true)
      expect(JSON.parse(readFileSync(lock, 'utf8')).run).not.toBe('an-earlier-run')
      store.unlock()
      expect(existsSync(lock)).toBe(false)
    }
  })

  test('a state directory removed while the proxy runs is made again at the next order, challenges/ and certs/ with it', () => {
    const store = fresh()
    rmSync(store.caDir, { recursive: true, force: true })
    // Every renewal failed on it until a restart ("cannot create the order lock ... ENOENT"; then "ENOENT ... challenges/<token>").
    expect(store.tryLock(Date.now())).toBe(true)
    expect(existsSync(join(store.caDir, 'challenges'))).toBe(true)
    expect(existsSync(join(store.caDir, 'certs'))).toBe(true)
    store.unlock()
  })

  test('a lock this process holds is not stale: a second manager of ours waits', () => {
    const a = fresh()
    const b = new StateStore(a.stateDir, 'https://ca.test/dir')
    const now = Date.now()
    expect(a.tryLock(now)).toBe(true)
    expect(b.tryLock(now)).toBe(false)
    a.unlock()
    expect(b.tryLock(now)).toBe(true)
    b.unlock()
  })

  test('a live lock of another process on this host is kept; unlock() leaves what is not ours', () => {
    const store = fresh()
    const lock = join(store.caDir, 'order.lock')
    // The parent of the test runner is alive and is not us.
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname(), run: 'other', atMs: Date.now() }))
    expect(store.tryLock(Date.now())).toBe(false)
    store.unlock()
    expect(existsSync(lock)).toBe(true)
  })
})

describe('saving a certificate', () => {
  test('a symlink left at the old temp-file name does not take the private key elsewhere', () => {
    const store = fresh()
    const dir = store.certDir('a.test')
    mkdirSync(dir, { recursive: true })
    const elsewhere = join(root, `elsewhere-${dirs}`)
    writeFileSync(elsewhere, 'not a key\n')
    // The name the temp file had: <file>.<pid>.tmp, guessable by anyone who can write the directory.
    symlinkSync(elsewhere, join(dir, `key.pem.${process.pid}.tmp`))
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    store.saveCert('a.test', { certPem: '-----BEGIN CERTIFICATE-----\n', keyPem: key })
    expect(readFileSync(elsewhere, 'utf8')).toBe('not a key\n')
    expect(lstatSync(join(dir, 'key.pem')).isFile()).toBe(true)
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe(key)
    expect(lstatSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600)
    // No temp files left behind but the planted link.
    expect(readdirSync(dir).sort()).toEqual(['cert.pem', 'key.pem', `key.pem.${process.pid}.tmp`])
  })
})

describe('account key', () => {
  test('an empty account.key (a write cut off by a crash or a full disk) is replaced, not a failure until someone deletes it', () => {
    const store = fresh()
    const file = join(store.caDir, 'account.key')
    writeFileSync(file, '')
    const key = store.accountKey()
    expect(key.asymmetricKeyType).toBe('ec')
    expect(readFileSync(file, 'utf8')).toStartWith('-----BEGIN PRIVATE KEY-----')
    expect(lstatSync(file).mode & 0o777).toBe(0o600)
    expect(readdirSync(store.caDir).filter((f) => f.startsWith('account.key'))).toEqual(['account.key'])
  })

  test('created whole, 0600, with no temp file left; a second store reads the same key', () => {
    const store = fresh()
    const key = store.accountKey()
    const file = join(store.caDir, 'account.key')
    expect(lstatSync(file).mode & 0o777).toBe(0o600)
    expect(readdirSync(store.caDir).filter((f) => f.startsWith('account.key'))).toEqual(['account.key'])
    const again = new StateStore(store.stateDir, 'https://ca.test/dir').accountKey()
    expect(again.export({ type: 'pkcs8', format: 'pem' })).toBe(key.export({ type: 'pkcs8', format: 'pem' }))
  })
})

describe('state files that are not regular files (third review of the nineteenth round: a FIFO blocked the start in open())', () => {
  test('a FIFO at cert.pem or account.key is reported, not opened; a FIFO lock is judged by its age', () => {
    const store = fresh()
    const dir = store.certDir('a.example')
    mkdirSync(dir, { recursive: true })
    Bun.spawnSync(['mkfifo', join(dir, 'cert.pem')])
    writeFileSync(join(dir, 'key.pem'), 'x')
    expect(store.loadCert('a.example')).toBeUndefined()
    expect(store.unusableBecause('a.example')).toBe(`cannot read ${dir}: ENOTREGULAR`)
    Bun.spawnSync(['mkfifo', store.accountKeyFile])
    expect(() => store.accountKey()).toThrow(`cannot read the ACME account key ${store.accountKeyFile}: ${store.accountKeyFile} is not a regular file of at most 1 MiB`)
    Bun.spawnSync(['mkfifo', join(store.caDir, 'order.lock')])
    expect(store.tryLock(Date.now())).toBe(false) // a fresh lock file of no readable holder: not stale yet
  })
})
