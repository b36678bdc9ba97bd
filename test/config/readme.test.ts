import { expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { readmeWithReference } from '../../scripts/config-doc.ts'

test('the README config reference matches the field tables (run: bun scripts/config-doc.ts --write)', () => {
  const readme = readFileSync('README.md', 'utf8')
  expect(readmeWithReference(readme)).toBe(readme)
})
