/**
 * The admin token check (admin.ts tokenMatches): right answers for the same, another, a shorter
 * and a longer token, and every check made on fixed-size digests, so that its time does not tell
 * the token's length. No timing is measured (a test cannot do so honestly); what is checked is
 * that both sides always go through the digest, whatever the lengths.
 */
import { expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { tokenMatches } from '../../../src/proxy/observe/admin.ts'

const TOKEN = 's3cret-Token_0123456789'

/** SHA-256 that records what it was given. */
function recordingDigest(): { digest: (text: string) => Uint8Array; seen: string[] } {
  const seen: string[] = []
  return { seen, digest: (text) => (seen.push(text), createHash('sha256').update(text).digest()) }
}

test.each([
  ['the same token', `Bearer ${TOKEN}`, true],
  ['the scheme in another case', `bEARER ${TOKEN}`, true],
  ['another token of the same length', `Bearer ${TOKEN.slice(0, -1)}X`, false],
  ['a shorter token (a prefix of it)', `Bearer ${TOKEN.slice(0, 6)}`, false],
  ['a longer token (it, and more)', `Bearer ${TOKEN}0`, false],
  ['a much longer token', `Bearer ${TOKEN.repeat(100)}`, false],
  ['another scheme', `Basic ${TOKEN}`, false],
  ['no token after the scheme', 'Bearer ', false],
] as [string, string, boolean][])('%s', (_name, header, want) => {
  expect(tokenMatches(header, TOKEN)).toBe(want)
  const { digest, seen } = recordingDigest()
  expect(tokenMatches(header, TOKEN, digest)).toBe(want)
  // Both sides hashed on every check, whatever the presented token's length (or its absence).
  expect(seen.length).toBe(2)
  expect(seen[1]).toBe(TOKEN)
})

test('no Authorization at all: refused, through the digest as well', () => {
  const { digest, seen } = recordingDigest()
  expect(tokenMatches(null, TOKEN, digest)).toBe(false)
  expect(seen.length).toBe(2)
})
