/** A deterministic generator for randomised tests (a failing seed replays exactly). */
export function rng(seed: number) {
  let s = seed >>> 0
  const next = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0
    s = (s ^ (s >>> 12)) >>> 0
    return s / 2 ** 32
  }
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!,
    chance: (p: number) => next() < p,
  }
}
