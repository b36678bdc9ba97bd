/**
 * Colour is decided once, here: off for NO_COLOR, for a non-TTY stream, or when FORCE_COLOR=0;
 * on for FORCE_COLOR=1. Renderers take a `Colors` object and never test the environment themselves.
 */
import pc from 'picocolors'

export type Colors = ReturnType<typeof pc.createColors>

export function colorsFor(isTTY: boolean, env: Record<string, string | undefined>): Colors {
  return pc.createColors(colorEnabled(isTTY, env))
}

export function colorEnabled(isTTY: boolean, env: Record<string, string | undefined>): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0'
  if (env.TERM === 'dumb') return false
  return isTTY
}
