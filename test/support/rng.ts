/** A small deterministic generator (xorshift32) for generated test cases: rng(seed)(n) gives 0..n-1. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x % n
  }
}
