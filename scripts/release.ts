/**
 * Release binaries for the machines people rent: `npm run release` compiles the proxy for
 * Linux x64 and Linux arm64 (ARM VMs are common, and cheaper, in far regions) into
 * dist/release/, and writes dist/release/SHA256SUMS in the format `sha256sum -c` reads.
 * Each binary is the whole program with the Bun runtime inside (~110 MB); there is nothing
 * else to install. Do not run `strip` on them: it removes the embedded program.
 * test/e2e/release.test.ts checks the hashes, the architecture of each file, and runs the arm64
 * one under qemu-aarch64.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { compileBinary, sha256File } from './build.ts'

export const RELEASE_DIR = 'dist/release'

/**
 * File name -> Bun compile target. x64 uses Bun's baseline runtime (x86-64-v2: Nehalem, 2008, or
 * newer): the default one is built for Haswell (AVX2) and dies with "Illegal instruction" on a
 * VM whose CPU model hides AVX2, which cheap rented VMs sometimes do. Measured here through the
 * proxy (wrk -t1 -c64, 3 s, two interleaved rounds): 20.6k and 21.6k req/s with the default
 * runtime, 21.9k and 18.8k with baseline, a difference within the noise.
 */
export const RELEASE_TARGETS: Readonly<Record<string, string>> = {
  'proxy-linux-x64': 'bun-linux-x64-baseline',
  'proxy-linux-arm64': 'bun-linux-arm64',
}

export async function buildRelease(dir = RELEASE_DIR): Promise<{ file: string; sha256: string }[]> {
  // A fresh directory: SHA256SUMS must list exactly what is there.
  rmSync(dir, { recursive: true, force: true })
  const built: { file: string; sha256: string }[] = []
  for (const [file, target] of Object.entries(RELEASE_TARGETS)) {
    await compileBinary(join(dir, file), target)
    built.push({ file, sha256: sha256File(join(dir, file)) })
  }
  writeFileSync(join(dir, 'SHA256SUMS'), built.map((b) => `${b.sha256}  ${b.file}\n`).join(''))
  return built
}

if (import.meta.main) {
  for (const b of await buildRelease()) console.log(`${RELEASE_DIR}/${b.file}  sha256 ${b.sha256}`)
  console.log(`${RELEASE_DIR}/SHA256SUMS`)
}
