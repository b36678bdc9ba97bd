/**
 * How a failed connect is named (runtime/dial-errors.ts): a lack of file descriptors is told
 * apart from a refusal, whether the runtime says EMFILE/ENFILE (node:net on Deno) or, as Bun
 * does, ECONNREFUSED while the descriptor table is full. The full-table case runs in a child
 * process under `ulimit -n`.
 */
import { expect, test } from 'bun:test'
import { connectFailure } from '../../src/runtime/dial-errors.ts'

const withCode = (code: string) => Object.assign(new Error(`connect ${code}`), { code })

test.each([
  ['EMFILE', 'CONNECT_FAILED', 'NO_FILE_DESCRIPTORS'],
  ['ENFILE', 'CONNECT_FAILED', 'NO_FILE_DESCRIPTORS'],
  ['ECONNREFUSED', 'CONNECT_FAILED', 'CONNECT_REFUSED'], // descriptors to spare here: a real refusal
  ['ECONNRESET', 'CONNECT_FAILED', 'CONNECT_FAILED'],
  ['ECONNRESET', 'TLS_FAILED', 'TLS_FAILED'],
] as const)('%s (else %s) is %s', (code, otherwise, expected) => {
  expect(connectFailure(withCode(code), otherwise).code).toBe(expected)
})

test('Bun.connect under a full descriptor table says ECONNREFUSED; connectFailure names it NO_FILE_DESCRIPTORS, and a real refusal stays CONNECT_REFUSED', () => {
  const script = `
    import { openSync } from 'node:fs'
    import { connectFailure } from './src/runtime/dial-errors.ts'
    const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const held = []
    try { for (let i = 0; i < 4096; i++) held.push(openSync('/dev/null', 'r')) } catch {}
    const seen = []
    try { await Bun.connect({ hostname: '127.0.0.1', port: server.port, socket: { data() {} } }) } catch (err) { seen.push(err.code, connectFailure(err).code) }
    server.stop(true)
    // A port nobody listens on, with descriptors to spare.
    for (const fd of held.splice(0, 8)) require('node:fs').closeSync(fd)
    try { await Bun.connect({ hostname: '127.0.0.1', port: 1, socket: { data() {} } }) } catch (err) { seen.push(err.code, connectFailure(err).code) }
    console.log(JSON.stringify(seen))
  `
  const r = Bun.spawnSync(['sh', '-c', `ulimit -n 64; exec "${process.execPath}" -e "$0"`, script], { timeout: 20_000 })
  expect(JSON.parse(r.stdout.toString().trim())).toEqual(['ECONNREFUSED', 'NO_FILE_DESCRIPTORS', 'ECONNREFUSED', 'CONNECT_REFUSED'])
})
