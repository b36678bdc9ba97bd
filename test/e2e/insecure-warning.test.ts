/**
 * insecure = true is the one way around the upstream's certificate checks, and it is loud: serve
 * warns at start, naming the upstreams, before "proxy listening". Runs `bun src/main.ts serve`
 * on loopback; nothing listens at the upstream's port (the warning is about the config).
 */
import { afterEach, expect, test } from 'bun:test'
import { spawn, type ChildProcess } from 'node:child_process'

const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
})

/** What serve writes on stderr up to and with "proxy listening"; then it is stopped. */
function startupLog(flags: string[]): Promise<string> {
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', 'off', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`no "proxy listening": ${text}`))), 15_000)
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString()
      if (!text.includes('proxy listening')) return
      clearTimeout(timer)
      child.kill('SIGTERM')
      resolve(text)
    })
  })
}

test('an https upstream with insecure = true is warned about at start, by name; a verified one, or an http one, is not', async () => {
  const insecure = await startupLog(['--upstream', 'https://127.0.0.1:1', '--upstream-insecure'])
  expect(insecure).toMatch(/warn +upstream TLS certificates are NOT verified \(insecure = true\).* upstreams=default\n/)
  expect(insecure.indexOf('NOT verified')).toBeLessThan(insecure.indexOf('proxy listening'))
  expect(await startupLog(['--upstream', 'https://127.0.0.1:1'])).not.toContain('NOT verified')
  expect(await startupLog(['--upstream', 'http://127.0.0.1:1', '--upstream-insecure'])).not.toContain('NOT verified')
})
